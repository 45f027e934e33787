from ..registry import Registry

STRATEGIES = Registry("strategy", "textvae.strategies")
