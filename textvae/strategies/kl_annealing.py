"""``kl-annealing``: the KL weight grows linearly from ``kl_start`` to 1 over ``warm_up`` epochs (He et
al.'s per-update schedule)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ranged
from ..types import StepContext
from .base import Strategy
from .registry import STRATEGIES


@dataclass
class KLAnnealingConfig:
    kl_start: float = ranged(0.1, ge=0, le=1)
    warm_up: float = ranged(10.0, ge=0)
    """Epochs over which the weight grows linearly from kl_start to 1."""


def linear_warmup(step: int, kl_start: float, warm_up: float, steps_per_epoch: int) -> float:
    """He et al.'s per-update schedule: before update t the weight is kl_start + t * increment.

    The increment uses the nominal N_train / batch_size updates per epoch, as the reference does,
    so with length buckets the weight reaches 1 a little before ``warm_up`` epochs have passed.
    """
    if warm_up <= 0:
        return 1.0
    increment = (1.0 - kl_start) / (warm_up * steps_per_epoch)
    return min(1.0, kl_start + (step + 1) * increment)


@STRATEGIES.register("kl-annealing", config=KLAnnealingConfig)
class KLAnnealing(Strategy):
    """Monotonic linear KL warm-up per iteration, from kl_start to 1 over warm_up epochs."""

    paper = "Bowman et al. 2016; schedule of He et al. 2019"

    def kl_weight(self, ctx: StepContext) -> float:
        return linear_warmup(ctx.step, self.config.kl_start, self.config.warm_up, ctx.steps_per_epoch)
