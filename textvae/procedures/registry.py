"""The training-procedure registry (``[procedure] name = ...``)."""

from ..registry import Registry

PROCEDURES = Registry("procedure", "textvae.procedures", key_prefix="procedure.")
