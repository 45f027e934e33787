"""The strategy registry (``[strategies.NAME]``; third-party strategies through ``textvae.strategies``
entry points)."""

from ..registry import Registry

STRATEGIES = Registry("strategy", "textvae.strategies", key_prefix="strategies.{name}.")
