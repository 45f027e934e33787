"""Encoder pretraining and decoder reset (Li et al. 2019, "A Surprisingly Effective Fix for Deep
Latent Variable Modeling of Text").

The run has two stages in one run folder. Stage ``pretrain`` trains the model as an autoencoder
with a stochastic latent (KL weight 0) under the usual schedule (early stopping and learning-rate
decays, at most ``pretrain_epochs`` epochs). Stage ``vae`` starts from the pretraining's best
checkpoint (kept as ``checkpoints/pretrain-best.pt``), re-initialises the decoder only and trains the
VAE with the rest of the stack (Li et al.: KL annealing from 0 over 10 epochs and per-dimension free
bits); schedules, learning rate and early stopping start afresh, and ``best.pt`` only ever holds a
``vae``-stage model. See docs/methods/pretraining.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ranged
from ..initialization import init_he2019
from ..types import Stage, StepContext
from .base import Strategy
from .registry import STRATEGIES


@dataclass
class EncoderPretrainingConfig:
    pretrain_epochs: int | None = ranged(None, ge=1)
    """Epoch budget of the autoencoder stage (None: ``train.epochs``, as Li et al. run both stages
    with the same script settings); it may end earlier, after its last learning-rate decay."""



@STRATEGIES.register("encoder-pretraining", config=EncoderPretrainingConfig)
class EncoderPretraining(Strategy):
    """Pretrain as an autoencoder (KL weight 0), reset the decoder, then train the VAE (Li et al. 2019)."""

    paper = "Li et al. 2019, A Surprisingly Effective Fix for Deep Latent Variable Modeling of Text"

    def stages(self) -> list[Stage]:
        return [Stage("pretrain", self.config.pretrain_epochs), Stage("vae")]

    def kl_weight(self, ctx: StepContext) -> float:
        return 0.0 if ctx.stage == 0 else 1.0

    def selection_loss(self, metrics: dict, ctx: StepContext) -> float | None:
        # The autoencoder stage is selected on its own objective, reconstruction (KL weight 0).
        return metrics["rec"] if ctx.stage == 0 else None

    def on_stage_start(self, stage: int, ctx: StepContext) -> None:
        if stage == 1:
            init_he2019(self.model.decoder)
