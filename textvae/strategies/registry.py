from ..registry import Registry

STRATEGIES = Registry("strategy", "textvae.strategies", key_prefix="strategies.{name}.")
