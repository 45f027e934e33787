"""The prior registry (``[prior] name = ...``; third-party priors through ``textvae.priors`` entry points)."""

from ..registry import Registry

PRIORS = Registry("prior", "textvae.priors", key_prefix="prior.")
