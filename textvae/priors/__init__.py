"""Priors p(z): import each module so it registers itself."""

# ruff: noqa: I001 - the import order is the registration order (`textvae recipe --list` shows it)

from . import decoupled  # noqa: F401
from . import standard_normal  # noqa: F401
from .base import Prior, standard_normal_log_prob
from .registry import PRIORS


def build_prior(spec: dict, latent_dim: int, where: str = "config") -> Prior:
    params = dict(spec)
    name = params.pop("name")
    return PRIORS.build(name, params, where=where, latent_dim=latent_dim)


__all__ = ["PRIORS", "Prior", "build_prior", "standard_normal_log_prob"]
