"""Aggressive inference-network training (He et al. 2019, "Lagging inference networks and
posterior collapse in variational autoencoders").

While aggressive mode is on, every training batch first gets an inner loop of encoder-only updates
(the batch itself, then uniformly drawn training batches) and then one decoder-only update on the
batch. The inner loop stops after ``max_inner_steps`` updates, or as soon as the summed loss per
predicted word over the last ``window`` updates is higher than over the window before (the first
window is compared with ``initial_loss``, so at least two windows run). Aggressive mode ends for
good after the first validation whose mutual information is lower than the previous one's, estimated
with fresh noise at every check
(``mi_estimator``: He et al. use the per-batch estimator; the first comparison is against 0, as in
their code). The gradient norm is clipped over all VAE parameters in every update, the encoder-only
ones included, as the reference does. See docs/methods/agg-vae.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..config import ranged
from ..errors import ConfigError
from ..evaluation.information import mutual_information
from ..evaluation.posterior_pass import posterior_pass
from ..evaluation.protocol import evaluation_mode, make_generator, model_device
from ..types import Batch, LossTerms
from .base import Procedure, TrainingLoop
from .registry import PROCEDURES


@dataclass
class AggressiveConfig:
    max_inner_steps: int = ranged(99, ge=1)
    window: int = ranged(15, ge=1)
    """Encoder updates per window of the stop rule."""
    initial_loss: float = 1e4
    """Loss per word the first window is compared with (the reference's sentinel)."""
    mi_estimator: Literal["per-batch", "whole-set"] = "per-batch"


@PROCEDURES.register("aggressive", config=AggressiveConfig)
class Aggressive(Procedure):
    """Agg-VAE: encoder-only inner loops until the encoder catches up, then a decoder step (He et al. 2019)."""

    paper = "He et al. 2019, Lagging inference networks and posterior collapse in VAEs"

    def __init__(self, config: AggressiveConfig):
        super().__init__(config)
        self.aggressive = True
        self.previous_mi = 0.0
        self.last_mi = float("nan")
        self.inner_steps = 0
        self.outer_steps = 0

    def check(self, model, where: str) -> None:
        if getattr(model, "latent_dim", 0) == 0:
            raise ConfigError(f"{where}: procedure 'aggressive' trains an inference network; model.kind "
                              "'lstm-lm' has none")

    def step(self, loop: TrainingLoop, batch: Batch) -> LossTerms:
        if self.aggressive:
            self._encoder_loop(loop, batch)
        terms, objective = loop.compute(batch)
        groups = [g for g in loop.groups.main if g != "encoder"] if self.aggressive else loop.groups.main
        loop.backward_step(objective.total(), groups)
        return terms

    def _encoder_loop(self, loop: TrainingLoop, batch: Batch) -> None:
        c = self.config
        previous, total, words = c.initial_loss, 0.0, 0
        current = batch
        for step in range(1, c.max_inner_steps + 1):
            terms, objective = loop.compute(current)
            total += float((terms.rec + loop.ctx.kl_weight * terms.kl).detach().sum())
            words += current.n_targets()
            loop.backward_step(objective.total(), ["encoder"])
            self.inner_steps += 1
            current = loop.random_batch()
            if step % c.window == 0:
                now = total / words
                if previous - now < 0:
                    break
                previous, total, words = now, 0.0, 0
        self.outer_steps += 1

    def on_validation(self, loop: TrainingLoop, metrics: dict[str, Any]) -> None:
        if not self.aggressive:
            return
        model = loop.model
        # Fresh noise at every check, as the reference: a fixed draw would bias every run's switch the
        # same way. Taken from the global generator, which checkpoints carry, so resume stays exact.
        seed = int(torch.randint(2**62, ()))
        with evaluation_mode(model):
            generator = make_generator(seed, model_device(model))
            stats = posterior_pass(model, loop.valid_batches, generator=generator, reconstruct=False,
                                   kl_samples=1)
            mi = mutual_information(stats.posteriors, self.config.mi_estimator, generator)
        self.last_mi = mi
        if mi - self.previous_mi < 0:
            self.aggressive = False
        self.previous_mi = mi

    def log_scalars(self) -> dict[str, float]:
        mean_inner = self.inner_steps / self.outer_steps if self.outer_steps else 0.0
        self.inner_steps = self.outer_steps = 0
        return {"aggressive": float(self.aggressive), "mi": self.last_mi, "inner_steps_per_batch": mean_inner}

    def state_dict(self) -> dict[str, Any]:
        return {"aggressive": self.aggressive, "previous_mi": self.previous_mi, "last_mi": self.last_mi}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.aggressive = bool(state["aggressive"])
        self.previous_mi = float(state["previous_mi"])
        self.last_mi = float(state["last_mi"])
