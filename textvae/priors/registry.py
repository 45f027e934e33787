from ..registry import Registry

PRIORS = Registry("prior", "textvae.priors", key_prefix="prior.")
