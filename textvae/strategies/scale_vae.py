"""Scale-VAE: scale up the posterior means fed to the decoder (Song et al. 2024, LREC-COLING,
"Scale-VAE: Preventing Posterior Collapse in Variational Autoencoder"; spec from the slides, no
reference code exists: docs/methods/scale-vae.md). Hooks: ``decoder_posterior``,
``prior_space_scale``, ``on_epoch_end``, ``log_scalars``.

Per dimension, f_d = des_std / std_batch(mu_d). The decoder gets z ~ N(f * mu, sigma^2) while the
KL uses the unscaled q(z|x) = N(mu, sigma^2). For the first ``f_epo`` epochs every training batch uses
its own f; afterwards the arithmetic mean of the previous epoch's per-batch f (f_bar; Algorithm 1
records f for every batch of every epoch). Generation samples f_bar * z with z ~ p(z).

Decisions the paper leaves open, as options (defaults in brackets):
* ``detach_f`` [true]: f is a constant for the gradient, as f_bar is after ``f_epo`` anyway.
* ``std_estimator`` ["sample"]: unbiased (torch's default) or population std over the batch.
* ``eps`` [1e-8] added to the std and ``f_max`` [1e5] cap f for dimensions whose means do not vary.
  The cap must sit well above the factors of a healthy start: with He et al.'s initialisation the
  means' batch std is about 1e-4 (measured: 5e-5 to 2.5e-4 for the PTB to Yahoo architectures), i.e.
  f of several thousand, which a cap of 1e3 would cut.
* A training batch of one sentence has no std: it uses the evaluation factor and is not recorded.

Evaluation uses the evaluation factor: f_bar, the mean f of the last completed epoch (a buffer saved
in checkpoints); before the first epoch has ended, the mean f of the batches seen so far; before any
training, 1. The evaluator's NLL/KL/MI/AU are those of the consistent generative model
p(z') = N(0, diag f_bar^2), p(x | z'): ``TextVAE.posterior`` maps q to the prior's space,
N(mu, sigma^2 / f_bar^2). The training KL, on the unscaled posterior, is ``LossTerms.kl``: the
trainer logs it per epoch as ``train.kl`` (while ``valid.kl`` comes from the evaluator's pass), and
``model(batch, StepContext(training=False)).kl`` gives it on any held-out batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ..errors import ConfigError
from ..types import Posterior, StepContext
from .base import Strategy
from .registry import STRATEGIES


@dataclass
class ScaleVAEConfig:
    des_std: float = 0.7
    """Desired std over the batch of every scaled mean dimension."""
    f_epo: int = 1
    """Epochs during which each batch uses its own factor; later epochs use the previous epoch's mean."""
    detach_f: bool = True
    std_estimator: Literal["sample", "population"] = "sample"
    eps: float = 1e-8
    f_max: float = 1e5

    def __post_init__(self) -> None:
        if self.des_std <= 0:
            raise ConfigError(f"strategies.scale-vae: des_std must be > 0, got {self.des_std}")
        if self.f_epo < 1:
            raise ConfigError(f"strategies.scale-vae: f_epo must be >= 1 epoch, got {self.f_epo}")
        if self.eps <= 0 or self.f_max <= 0:
            raise ConfigError("strategies.scale-vae: eps and f_max must be > 0")


@STRATEGIES.register("scale-vae", config=ScaleVAEConfig)
class ScaleVAE(Strategy):
    """Scale-VAE: the decoder sees means scaled to a desired batch std, the KL the unscaled posterior (Song et al. 2024)."""

    paper = "Song et al. 2024, Scale-VAE: Preventing Posterior Collapse in Variational Autoencoder"

    def __init__(self, config: ScaleVAEConfig, latent_dim: int):
        super().__init__(config, latent_dim)
        self.register_buffer("f_bar", torch.ones(latent_dim))
        self.register_buffer("f_sum", torch.zeros(latent_dim))
        self.register_buffer("f_count", torch.zeros((), dtype=torch.long))
        self.register_buffer("epochs_averaged", torch.zeros((), dtype=torch.long))

    def batch_factor(self, mu: Tensor) -> Tensor:
        c = self.config
        if c.detach_f:
            mu = mu.detach()
        std = mu.std(0, correction=1 if c.std_estimator == "sample" else 0)
        return (c.des_std / (std + c.eps)).clamp(max=c.f_max)

    def eval_factor(self) -> Tensor:
        """f_bar once an epoch has ended, else the running mean of this epoch's factors, else 1."""
        running = torch.where(self.f_count > 0, self.f_sum / self.f_count.clamp(min=1), self.f_bar)
        return torch.where(self.epochs_averaged > 0, self.f_bar, running)

    def decoder_posterior(self, posterior: Posterior, ctx: StepContext) -> Posterior:
        if self.training and ctx.training and posterior.mu.size(0) > 1:
            own = self.batch_factor(posterior.mu)
            with torch.no_grad():
                self.f_sum += own.detach()
                self.f_count += 1
            if ctx.epoch < self.config.f_epo:
                return Posterior(own * posterior.mu, posterior.logvar)
        return Posterior(self.eval_factor() * posterior.mu, posterior.logvar)

    def prior_space_scale(self) -> Tensor:
        return self.eval_factor()

    def on_epoch_end(self, ctx: StepContext) -> None:
        if int(self.f_count) == 0:
            return
        self.f_bar.copy_(self.f_sum / self.f_count)
        self.epochs_averaged += 1
        self.f_sum.zero_()
        self.f_count.zero_()

    def log_scalars(self) -> dict[str, float | list[float]]:
        f = self.eval_factor()
        return {"f_mean": float(f.mean()), "f": f.tolist()}
