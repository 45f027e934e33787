from __future__ import annotations

from dataclasses import dataclass

from ..types import StepContext
from ..config import ranged
from .base import Strategy
from .registry import STRATEGIES


@dataclass
class BetaVAEConfig:
    beta: float = ranged(0.4, ge=0)


@STRATEGIES.register("beta-vae", config=BetaVAEConfig)
class BetaVAE(Strategy):
    """Constant KL weight beta for the whole run (Higgins et al. 2017); beta = 0 is the 'AE'."""

    paper = "Higgins et al. 2017, beta-VAE"

    def kl_weight(self, ctx: StepContext) -> float:
        return self.config.beta
