"""Cyclical KL annealing (Fu et al. 2019, NAACL, "Cyclical Annealing Schedule"). Hook: ``kl_weight``.

Two ways to lay the cycles out (docs/methods/kl-weighting.md):

* ``cycle_epochs`` unset (Fu et al.'s README and schedule notebook): the run's nominal ``total_steps``
  updates are split into ``n_cycles`` periods; within each the weight ramps from ``start`` to ``stop``
  over the first ``ratio`` of the period and then stays at ``stop``.
* ``cycle_epochs`` = C (Fu et al.'s language-model script, and BN-VAE's ``--cycle``, which copies its
  restart rule): the weight restarts at ``start`` at the beginning of every C-th epoch and ramps to
  ``stop`` over ``ratio * C`` nominal epochs of updates, counted from the restart; cycles go on for
  as long as the run trains. ``restart_offset`` shifts the restarts (BN-VAE's code restarts at epoch 1,
  1 + C, ... after the run's start at epoch 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from ..config import ranged
from ..errors import ConfigError
from ..types import StepContext
from .base import Strategy
from .registry import STRATEGIES


@dataclass
class CyclicalConfig:
    n_cycles: int = ranged(4, ge=1)
    """M: number of annealing cycles over the nominal run length (paper default 4; unused with ``cycle_epochs``)."""
    ratio: float = ranged(0.5, gt=0, le=1)
    """R: fraction of each cycle spent increasing the weight (paper default 0.5)."""
    shape: Literal["linear", "sigmoid", "cosine"] = "linear"
    start: float = ranged(0.0, ge=0)
    stop: float = ranged(1.0, ge=0)
    cycle_epochs: int | None = ranged(None, ge=1)
    """A cycle every this many epochs, restarting at epoch boundaries; None: ``n_cycles`` over the run."""
    restart_offset: int = ranged(0, ge=0)
    """With ``cycle_epochs``: restarts at the start of epochs offset + k * cycle_epochs (0-based) besides
    the run's start; BN-VAE's ``--cycle`` uses 1, which makes epoch 0 a cycle of its own."""

    def __post_init__(self) -> None:
        if self.cycle_epochs is None and self.restart_offset:
            raise ConfigError("strategies.cyclical: restart_offset needs cycle_epochs")
        if self.cycle_epochs is not None and self.restart_offset >= self.cycle_epochs:
            raise ConfigError(f"strategies.cyclical: restart_offset must be below cycle_epochs "
                              f"({self.cycle_epochs}), got {self.restart_offset}")


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


def epoch_cycle_weight(epoch: int, epoch_step: int, epoch_updates: int, steps_per_epoch: float,
                       cycle_epochs: int, ratio: float, shape: str = "linear", start: float = 0.0,
                       stop: float = 1.0, restart_offset: int = 0) -> float:
    """KL weight before update ``epoch_step`` of ``epoch`` (0-based) with cycles restarting every
    ``cycle_epochs`` epochs; ``epoch_updates`` is the actual number of updates per epoch.

    The ramp counts the updates made since the restart and reaches ``stop`` after ``ratio *
    cycle_epochs`` nominal epochs (``steps_per_epoch`` = N_train / batch_size updates each), as the
    reference scripts' per-update increments do; before update j the ramp is at (j + 1) / length.
    """
    restart = 0
    if epoch >= restart_offset:
        restart = epoch - (epoch - restart_offset) % cycle_epochs
    done = (epoch - restart) * epoch_updates + epoch_step
    length = ratio * cycle_epochs * steps_per_epoch
    u = min(1.0, (done + 1) / length)
    if u >= 1.0:
        return stop
    return start + (stop - start) * ramp(u, shape)


@STRATEGIES.register("cyclical", config=CyclicalConfig)
class Cyclical(Strategy):
    """Cyclical KL annealing: M cycles, each ramping the weight over a fraction R of the cycle (Fu et al. 2019)."""

    paper = "Fu et al. 2019, Cyclical Annealing Schedule: A Simple Approach to Mitigating KL Vanishing"

    def kl_weight(self, ctx: StepContext) -> float:
        c = self.config
        if c.cycle_epochs is not None:
            return epoch_cycle_weight(ctx.epoch, ctx.epoch_step, ctx.epoch_updates, ctx.steps_per_epoch,
                                      c.cycle_epochs, c.ratio, c.shape, c.start, c.stop, c.restart_offset)
        return cyclical_weight(ctx.step, ctx.total_steps, c.n_cycles, c.ratio, c.shape, c.start, c.stop)
