from ..registry import Registry

PRIORS = Registry("prior", "textvae.priors")
