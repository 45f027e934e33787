from ..registry import Registry

PROCEDURES = Registry("procedure", "textvae.procedures", key_prefix="procedure.")
