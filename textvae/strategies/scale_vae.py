"""Scale-VAE: scale up the posterior means fed to the decoder (Song et al. 2024, LREC-COLING,
"Scale-VAE: Preventing Posterior Collapse in Variational Autoencoder"; method page:
docs/methods/scale-vae.md). Hooks: ``decoder_posterior``, ``prior_space_scale``/``prior_space_shift``,
``selection_loss``, ``on_epoch_sample``, ``on_epoch_end``, ``log_scalars``.

Per dimension, f_d = des_std / std_batch(mu_d). The decoder gets z ~ N(f * mu, sigma^2) while the
KL uses the unscaled q(z|x) = N(mu, sigma^2). For the first ``f_epo`` epochs every training batch uses
its own f; afterwards the factor f_bar estimated over the previous epoch (the slides: the arithmetic
mean of that epoch's per-batch f).

Decisions the paper leaves open, as options (defaults in brackets, the slides' behaviour first):
* ``detach_f`` [true]: f is a constant for the gradient, as f_bar is after ``f_epo`` anyway.
* ``std_estimator`` ["sample"]: unbiased (torch's default) or population std over the batch.
* ``eps`` [1e-8] added to the std and ``f_max`` [1e5] cap f for dimensions whose means do not vary.
  The cap must sit well above the factors of a healthy start: with He et al.'s initialisation the
  means' batch std is about 1e-4, i.e. f of several thousand, which a cap of 1e3 would cut.
* ``f_bar`` ["batch-mean"]: how an epoch's factor is estimated. ``batch-mean`` averages the per-batch
  f (Algorithm 1); ``batch-median`` takes their per-dimension median (two-sentence batches give a
  heavy-tailed 1/std); ``batch-ema`` is an exponential moving average of the per-batch f carried
  across epochs (``ema_momentum`` = the newest batch's weight); ``epoch-std`` is des_std over the
  std of all the epoch's means pooled, so f no longer measures the spread within length buckets;
  ``sample-std`` is des_std over the std of the means the encoder gives, as it stands at the
  epoch's end, to a fixed random sample of ``sample_size`` training sentences: neither the length
  buckets nor the drift of the means during the epoch (which inflates the pooled std of
  ``epoch-std`` and so shrinks f) enter it. With ``centre`` the same sample gives the mean.
* ``centre`` [false]: scale only the deviation from the mean, m + f * (mu - m), with m the batch mean
  while a batch uses its own f and the previous epoch's mean of mu afterwards; the scaled means keep
  the encoder's mean instead of an offset f * m.
* A training batch of one sentence has no std: it uses the evaluation factor and is not recorded.

The evaluation factor is f_bar once an epoch has ended; before that, this epoch's running estimate;
before any training, 1. How the evaluator reads the scaled model (``eval.scale_reading``) is the
model's business: this strategy only exposes the affine map z_decoder = f * z + (1 - f) * m.
Model selection uses the training objective (reconstruction + unscaled KL) on validation data,
which, unlike the -ELBO of either reading, carries no sum log f_bar or f_bar^2 term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ..config import ranged
from ..types import Batch, Posterior, StepContext
from .base import Strategy
from .registry import STRATEGIES


@dataclass
class ScaleVAEConfig:
    des_std: float = ranged(0.7, gt=0)
    """Desired std over the batch of every scaled mean dimension."""
    f_epo: int = ranged(1, ge=1)
    """Epochs during which each batch uses its own factor; later epochs use the previous epoch's estimate."""
    detach_f: bool = True
    std_estimator: Literal["sample", "population"] = "sample"
    eps: float = ranged(1e-8, gt=0)
    f_max: float = ranged(1e5, gt=0)
    f_bar: Literal["batch-mean", "batch-median", "batch-ema", "epoch-std", "sample-std"] = "batch-mean"
    """How the factor of the next epoch is estimated from this one (the slides: ``batch-mean``)."""
    sample_size: int = ranged(2000, ge=2)
    """``f_bar = "sample-std"``: training sentences encoded at each epoch's end (the same ones every epoch)."""
    ema_momentum: float = ranged(0.05, gt=0, le=1)
    """``f_bar = "batch-ema"``: weight of the newest batch's f in the moving average."""
    centre: bool = False
    """Scale the deviation from the mean (m + f * (mu - m)) instead of mu itself (the slides: false)."""


@STRATEGIES.register("scale-vae", config=ScaleVAEConfig)
class ScaleVAE(Strategy):
    """Scale-VAE: the decoder sees means scaled to a desired batch std, the KL the unscaled posterior
    (Song et al. 2024)."""

    paper = "Song et al. 2024, Scale-VAE: Preventing Posterior Collapse in Variational Autoencoder"

    def __init__(self, config: ScaleVAEConfig, latent_dim: int):
        super().__init__(config, latent_dim)
        self.register_buffer("f_bar", torch.ones(latent_dim))
        self.register_buffer("m_bar", torch.zeros(latent_dim))
        self.register_buffer("f_sum", torch.zeros(latent_dim))
        self.register_buffer("f_count", torch.zeros((), dtype=torch.long))
        self.register_buffer("epochs_averaged", torch.zeros((), dtype=torch.long))
        # First and second moments of this epoch's means (epoch-std and centring), float64.
        self.register_buffer("mu_sum", torch.zeros(latent_dim, dtype=torch.float64))
        self.register_buffer("mu_sq_sum", torch.zeros(latent_dim, dtype=torch.float64))
        self.register_buffer("mu_count", torch.zeros((), dtype=torch.long))
        self.register_buffer("f_ema", torch.ones(latent_dim))
        # Per-batch factors of the current epoch for the median. Checkpoints are written between
        # epochs, after ``on_epoch_end`` has emptied it, so it need not be saved.
        self._epoch_factors: list[Tensor] = []
        # (f, m) measured on the epoch-end sample; consumed by on_epoch_end in the same call chain.
        self._sample_estimate: tuple[Tensor, Tensor] | None = None

    def batch_factor(self, mu: Tensor) -> Tensor:
        c = self.config
        if c.detach_f:
            mu = mu.detach()
        std = mu.std(0, correction=1 if c.std_estimator == "sample" else 0)
        return (c.des_std / (std + c.eps)).clamp(max=c.f_max)

    # ---- the epoch's estimate -------------------------------------------------------------------
    def _record(self, mu: Tensor, own: Tensor) -> None:
        with torch.no_grad():
            own = own.detach()
            self.f_sum += own
            self.f_count += 1
            mu = mu.detach().double()
            self.mu_sum += mu.sum(0)
            self.mu_sq_sum += mu.pow(2).sum(0)
            self.mu_count += mu.size(0)
            if self.config.f_bar == "batch-median":
                self._epoch_factors.append(own.cpu())
            if self.config.f_bar == "batch-ema":
                first = int(self.epochs_averaged) == 0 and int(self.f_count) == 1
                m = self.config.ema_momentum
                self.f_ema.copy_(own if first else (1 - m) * self.f_ema + m * own)

    def _factor_from_std(self, std: Tensor) -> Tensor:
        c = self.config
        return (c.des_std / (std + c.eps)).clamp(max=c.f_max).to(self.f_bar.dtype)

    def _epoch_estimate(self) -> tuple[Tensor, Tensor]:
        """(f, m) from what this epoch has recorded so far (call only when ``f_count`` > 0).

        ``sample-std`` before its first epoch-end sample falls back to the pooled epoch std."""
        c = self.config
        if c.f_bar == "sample-std" and self._sample_estimate is not None:
            return self._sample_estimate
        n = self.mu_count.clamp(min=1).double()
        mean = self.mu_sum / n
        if c.f_bar in ("epoch-std", "sample-std"):
            correction = 1 if c.std_estimator == "sample" else 0
            var = (self.mu_sq_sum - n * mean.pow(2)).clamp(min=0) / (n - correction).clamp(min=1)
            f = self._factor_from_std(var.sqrt())
        elif c.f_bar == "batch-median":
            f = torch.stack(self._epoch_factors).median(0).values.to(self.f_bar.device)
        elif c.f_bar == "batch-ema":
            f = self.f_ema.clone()
        else:
            f = self.f_sum / self.f_count
        return f, mean.to(self.m_bar.dtype)

    def eval_map(self) -> tuple[Tensor, Tensor]:
        """(f, m) for evaluation: the last epoch's, else this epoch's so far, else (1, 0)."""
        if int(self.epochs_averaged) > 0 or int(self.f_count) == 0:
            return self.f_bar, self.m_bar
        return self._epoch_estimate()

    def eval_factor(self) -> Tensor:
        return self.eval_map()[0]

    # ---- hooks ------------------------------------------------------------------------------------
    def decoder_posterior(self, posterior: Posterior, ctx: StepContext) -> Posterior:
        mu = posterior.mu
        if self.training and ctx.training and mu.size(0) > 1:
            own = self.batch_factor(mu)
            self._record(mu, own)
            if ctx.epoch < self.config.f_epo:
                m = mu.mean(0)
                if self.config.detach_f:
                    m = m.detach()
                return Posterior(self._scale(mu, own, m), posterior.logvar)
        f, m = self.eval_map()
        return Posterior(self._scale(mu, f, m), posterior.logvar)

    def _scale(self, mu: Tensor, f: Tensor, m: Tensor) -> Tensor:
        return m + f * (mu - m) if self.config.centre else f * mu

    def prior_space_scale(self) -> Tensor:
        return self.eval_factor()

    def prior_space_shift(self) -> Tensor | None:
        if not self.config.centre:
            return None
        f, m = self.eval_map()
        return (1 - f) * m

    def selection_loss(self, metrics: dict, ctx: StepContext) -> float:
        # The -ELBO of either reading carries sum log f_bar (scaled-prior) or f_bar^2 mu^2 terms
        # (scaled-posterior), so it would favour epochs by their f_bar; the training objective
        # (reconstruction + unscaled KL) is the same quantity in every epoch.
        return metrics["objective"]

    def epoch_sample_size(self) -> int:
        return self.config.sample_size if self.config.f_bar == "sample-std" else 0

    def on_epoch_sample(self, batches: list[Batch], ctx: StepContext) -> None:
        mu = torch.cat([self.model.trained_posterior(b).mu.detach() for b in batches]).double()
        std = mu.std(0, correction=1 if self.config.std_estimator == "sample" else 0)
        self._sample_estimate = (self._factor_from_std(std), mu.mean(0).to(self.m_bar.dtype))

    def on_epoch_end(self, ctx: StepContext) -> None:
        if int(self.f_count) == 0:
            self._sample_estimate = None
            return
        f, m = self._epoch_estimate()
        self.f_bar.copy_(f)
        self.m_bar.copy_(m)
        self.epochs_averaged += 1
        for buffer in (self.f_sum, self.f_count, self.mu_sum, self.mu_sq_sum, self.mu_count):
            buffer.zero_()
        self._epoch_factors.clear()
        self._sample_estimate = None

    def log_scalars(self) -> dict[str, float | list[float]]:
        f, m = self.eval_map()
        out: dict[str, float | list[float]] = {"f_mean": float(f.mean()), "f_median": float(f.median()),
                                               "f_max": float(f.max()), "sum_log_f": float(f.log().sum()),
                                               "f": f.tolist()}
        if self.config.centre:
            out["m_abs_mean"] = float(m.abs().mean())
        return out
