"""Cyclical KL annealing (Fu et al. 2019, NAACL, "Cyclical Annealing Schedule"). Hook: ``kl_weight``.

The run's nominal ``total_steps`` updates are split into ``n_cycles`` periods; within each period the
weight ramps from ``start`` to ``stop`` over the first ``ratio`` of the period and then stays at
``stop`` (docs/methods/kl-weighting.md; the reference notebook ``plot/plot_schedules.ipynb``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..config import ranged
from ..types import StepContext
from .base import Strategy
from .registry import STRATEGIES


@dataclass
class CyclicalConfig:
    n_cycles: int = ranged(4, ge=1)
    """M: number of annealing cycles over the nominal run length (paper default 4)."""
    ratio: float = ranged(0.5, gt=0, le=1)
    """R: fraction of each cycle spent increasing the weight (paper default 0.5)."""
    shape: Literal["linear", "sigmoid", "cosine"] = "linear"
    start: float = ranged(0.0, ge=0)
    stop: float = ranged(1.0, ge=0)


def ramp(u: float, shape: str) -> float:
    """The increasing part of a cycle at progress u in [0, 1] (Fu et al.'s three shapes)."""
    if shape == "linear":
        return u
    if shape == "sigmoid":
        return 1.0 / (1.0 + math.exp(-(12.0 * u - 6.0)))
    return 0.5 - 0.5 * math.cos(math.pi * u)


def cyclical_weight(step: float, total_steps: float, n_cycles: int, ratio: float, shape: str = "linear",
                    start: float = 0.0, stop: float = 1.0) -> float:
    """KL weight before update ``step`` (0-based): a pure function of the step and the run length.

    Updates past the nominal total (length buckets give a few more batches per epoch than
    N/batch_size) keep the final value ``stop`` instead of starting a partial extra cycle.
    """
    if step >= total_steps:
        return stop
    period = total_steps / n_cycles
    tau = (step % period) / period
    if tau >= ratio:
        return stop
    return start + (stop - start) * ramp(tau / ratio, shape)


@STRATEGIES.register("cyclical", config=CyclicalConfig)
class Cyclical(Strategy):
    """Cyclical KL annealing: M cycles, each ramping the weight over a fraction R of the cycle (Fu et al. 2019)."""

    paper = "Fu et al. 2019, Cyclical Annealing Schedule: A Simple Approach to Mitigating KL Vanishing"

    def kl_weight(self, ctx: StepContext) -> float:
        c = self.config
        return cyclical_weight(ctx.step, ctx.total_steps, c.n_cycles, c.ratio, c.shape, c.start, c.stop)
