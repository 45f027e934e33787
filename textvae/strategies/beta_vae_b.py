"""``beta-vae-b``: gamma * |KL - C| with a capacity C that grows linearly (Burgess et al. 2018)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ranged
from ..types import Batch, LossTerms, Objective, StepContext
from .base import Strategy
from .registry import STRATEGIES


@dataclass
class BetaVAEBConfig:
    gamma: float = ranged(10.0, ge=0)
    """Weight on |KL - C|."""
    c_start: float = ranged(0.0, ge=0)
    """Capacity C (nats per sentence) before the first update."""
    c_max: float = ranged(10.0, ge=0)
    """Capacity reached after ``anneal_epochs`` and kept afterwards (and in evaluation)."""
    anneal_epochs: float = ranged(10.0, ge=0)
    """Epochs over which C grows linearly from c_start to c_max (nominal N_train / batch_size updates each)."""


def capacity(step: int, c_start: float, c_max: float, anneal_steps: float) -> float:
    """C before update ``step``: linear from c_start to c_max, then constant."""
    if anneal_steps <= 0:
        return c_max
    return c_start + (c_max - c_start) * min(1.0, (step + 1) / anneal_steps)


@STRATEGIES.register("beta-vae-b", config=BetaVAEBConfig)
class BetaVAEB(Strategy):
    """Controlled capacity increase: the KL term becomes gamma * |mean KL - C| with C annealed (Burgess et al. 2018)."""

    paper = "Burgess et al. 2018, Understanding disentangling in beta-VAE"

    def current_capacity(self, ctx: StepContext) -> float:
        if not ctx.training:
            return self.config.c_max
        return capacity(ctx.step, self.config.c_start, self.config.c_max,
                        self.config.anneal_epochs * ctx.steps_per_epoch)

    def adjust(self, objective: Objective, terms: LossTerms, batch: Batch, ctx: StepContext) -> None:
        c = self.current_capacity(ctx)
        # The KL weight other strategies set (annealing, beta) scales the capacity term it replaces.
        weight = self.config.gamma * objective.kl_weight
        objective.extras["capacity"] = (weight, (objective.kl.mean() - c).abs())
        objective.kl_weight = 0.0
        objective.logs["capacity"] = c
