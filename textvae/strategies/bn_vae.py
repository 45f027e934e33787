"""BN-VAE: batch normalisation of the posterior mean with a fixed scale (Zhu et al. 2020, ACL, "A Batch
Normalized Inference Network Keeps the KL Vanishing Away"; BN ``modules/encoders/enc_lstm.py``;
docs/methods/batchnorm.md). Hook: ``transform_posterior``.

mu' = gamma * (mu - mean_batch) / std_batch + shift, log-variance untouched. With the scale fixed,
each mu'_d has mean shift_d and variance gamma^2 over a batch, so the batch-expected KL to N(0, I) is
at least (latent_dim * gamma^2 + ||shift||^2) / 2. Training uses batch statistics (a batch of one
is passed through unnormalised, as DU-VAE does); evaluation uses the running statistics.

``shift`` = None is the paper's learnable shift (init 0). A number fixes the shift: with
``gamma = 0, shift = 0.7`` every posterior mean is the constant 0.7, so KL = latent_dim * 0.49 / 2
(7.84 nats for 32 dims) with zero MI and AU — the "BN-VAE (0.0, 0.7)" row of the Scale-VAE paper's
Table 1 (KL 7.8, MI 0.0, AU 0 on both corpora), which shows the KL floor can be paid by the shift alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ranged
from ..types import Posterior, StepContext
from .base import Strategy
from .registry import STRATEGIES


@dataclass
class BNVAEConfig:
    gamma: float = ranged(0.6, ge=0)
    """Fixed BatchNorm scale of every mean dimension (Table 1: 0.6)."""
    shift: float | None = None
    """None: learnable shift initialised to 0 (the paper); a number: the shift fixed to that value."""



def normalise_mean(stats: nn.BatchNorm1d, mu: Tensor, weight: Tensor, bias: Tensor, batch_stats: bool) -> Tensor:
    """weight * BN(mu) + bias with the running statistics of ``stats`` (an affine-free BatchNorm1d).

    ``batch_stats`` says whether to normalise with this batch (and update the running statistics)
    or with the running statistics; a single-example batch cannot be normalised with its own
    statistics and passes through unchanged (DU-VAE's rule).
    """
    if batch_stats and mu.size(0) == 1:
        return mu
    if batch_stats and stats.num_batches_tracked is not None:
        stats.num_batches_tracked.add_(1)
    return F.batch_norm(mu, stats.running_mean, stats.running_var, weight, bias, batch_stats,
                        stats.momentum, stats.eps)


@STRATEGIES.register("bn-vae", config=BNVAEConfig)
class BNVAE(Strategy):
    """BN-VAE: BatchNorm on the posterior mean with a fixed scale gamma and a learnable shift (Zhu et al. 2020)."""

    paper = "Zhu et al. 2020, A Batch Normalized Inference Network Keeps the KL Vanishing Away"

    def __init__(self, config: BNVAEConfig, latent_dim: int):
        super().__init__(config, latent_dim)
        self.stats = nn.BatchNorm1d(latent_dim, affine=False)
        self.register_buffer("scale", torch.full((latent_dim,), config.gamma))
        if config.shift is None:
            self.shift = nn.Parameter(torch.zeros(latent_dim))
        else:
            self.register_buffer("shift", torch.full((latent_dim,), config.shift))

    def transform_posterior(self, posterior: Posterior, ctx: StepContext) -> Posterior:
        batch_stats = self.training and ctx.training
        mu = normalise_mean(self.stats, posterior.mu, self.scale, self.shift, batch_stats)
        return Posterior(mu, posterior.logvar)
