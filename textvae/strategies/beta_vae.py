"""``beta-vae``: a constant KL weight beta (Higgins et al. 2017)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import ranged
from ..types import StepContext
from .base import Strategy
from .registry import STRATEGIES


@dataclass
class BetaVAEConfig:
    beta: float = ranged(0.4, ge=0)
    selection: Literal["elbo", "weighted"] = "elbo"
    """The validation number that picks ``best.pt`` and drives the decays: ``elbo`` the -ELBO;
    ``weighted`` rec + beta * KL, the objective being trained (Li et al.'s ``text_beta.py``)."""


@STRATEGIES.register("beta-vae", config=BetaVAEConfig)
class BetaVAE(Strategy):
    """Constant KL weight beta for the whole run (Higgins et al. 2017); beta = 0 is the 'AE'."""

    paper = "Higgins et al. 2017, beta-VAE"

    def kl_weight(self, ctx: StepContext) -> float:
        return self.config.beta

    def selection_loss(self, metrics: dict, ctx: StepContext) -> float | None:
        if self.config.selection == "weighted":
            return metrics["rec"] + self.config.beta * metrics["kl"]
        return None
