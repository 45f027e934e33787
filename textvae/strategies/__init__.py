"""Anti-collapse strategies. Each lives in its own module and registers itself on import."""

# ruff: noqa: I001 - the import order is the registration order (`textvae recipe --list` shows it)

from typing import Any

from . import beta_vae, kl_annealing, vae  # noqa: F401
from . import beta_tcvae  # noqa: F401
from . import beta_vae_b  # noqa: F401
from . import factor_vae  # noqa: F401
from . import cyclical  # noqa: F401
from . import free_bits  # noqa: F401
from . import delta_vae  # noqa: F401
from . import bn_vae  # noqa: F401
from . import du_vae  # noqa: F401
from . import scale_vae  # noqa: F401
from . import infovae_mmd  # noqa: F401
from . import sa_vae  # noqa: F401
from . import encoder_pretraining  # noqa: F401
from . import mae  # noqa: F401
from .base import Strategy, StrategyStack
from .registry import STRATEGIES


def build_stack(spec: dict[str, Any], latent_dim: int, where: str = "config") -> StrategyStack:
    """The stack of a config's ``strategies`` table: typed configs (a resolved config) or plain tables."""
    return StrategyStack(
        [STRATEGIES.build(name, params, where=where, latent_dim=latent_dim) for name, params in spec.items()]
    )


__all__ = ["STRATEGIES", "Strategy", "StrategyStack", "build_stack"]
