"""MAE: mutual posterior-divergence regularisation (Ma, Zhou and Hovy 2019, ICLR, "MAE: Mutual
Posterior-Divergence Regularization for Variational AutoEncoders"; code XuezheMax/mae). Hook: ``adjust``.

For the batch's posteriors q_i = N(mu_i, diag sigma_i^2), the per-dimension divergence of every
ordered pair i != j is PD_ij,d = KL(q_i,d || q_j,d). With M_d the mean of PD_ij,d over the
B(B - 1) pairs and S the (unbiased) standard deviation over pairs of PD_ij = sum_d PD_ij,d,

    loss = mean(rec) + w * max(free_bits, mean KL) - eta * sum_d log sigmoid(M_d) + gamma * S

where w is the KL weight of the rest of the stack (annealing). The diversity term (eta) pushes the
posteriors of different sentences apart, dimension by dimension, with a push that fades once
M_d is a few nats; the smoothness term (gamma) keeps those distances even, so no pair is pushed
far while others stay together. Reported KL and -ELBO are the unmodified ones.
See docs/methods/mae.md for the choices this module makes where the paper leaves them open.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import ranged
from ..types import Batch, LossTerms, Objective, Posterior, StepContext
from .base import Strategy
from .registry import STRATEGIES


@dataclass
class MAEConfig:
    eta: float = ranged(1.0, ge=0)
    """Weight of the diversity term -sum_d log sigmoid(M_d)."""
    gamma: float = ranged(0.2, ge=0)
    """Weight of the smoothness term, the standard deviation of the pairwise divergences."""
    free_bits: float = ranged(0.0, ge=0)
    """Nats per sentence: the KL term is max(free_bits, batch-mean KL), as in the MAE code."""


def pairwise_divergence(posterior: Posterior) -> Tensor:
    """KL(q_i,d || q_j,d) for every pair of the batch's diagonal Gaussians: [B, B, D] (zero diagonal).

    In at least float32: under autocast the encoder's outputs may be bfloat16, whose 3 significant
    digits would swamp the differences of nearby posteriors.
    """
    dtype = torch.promote_types(posterior.mu.dtype, torch.float32)
    mu, logvar = posterior.mu.to(dtype), posterior.logvar.to(dtype)
    log_ratio = logvar.unsqueeze(1) - logvar.unsqueeze(0)  # log sigma_i^2 / sigma_j^2
    gap = (mu.unsqueeze(1) - mu.unsqueeze(0)).pow(2) * torch.exp(-logvar).unsqueeze(0)
    return 0.5 * (log_ratio.exp() + gap - log_ratio - 1.0)


def mutual_divergence_terms(posterior: Posterior) -> tuple[Tensor, Tensor]:
    """(M [D], S []) of the module docstring, over the B(B - 1) ordered pairs; needs B >= 2."""
    b = posterior.mu.size(0)
    pairs = pairwise_divergence(posterior)
    off_diagonal = ~torch.eye(b, dtype=torch.bool, device=pairs.device)
    per_pair = pairs[off_diagonal]  # [B(B - 1), D]
    return per_pair.mean(0), per_pair.sum(-1).std()


@STRATEGIES.register("mae", config=MAEConfig)
class MAE(Strategy):
    """MAE: diversity and smoothness of the pairwise posterior KLs, plus free bits on the batch KL (Ma et al. 2019)."""

    paper = "Ma, Zhou and Hovy 2019, MAE: Mutual Posterior-Divergence Regularization for Variational AutoEncoders"

    def __init__(self, config: MAEConfig, latent_dim: int):
        super().__init__(config, latent_dim)
        self._sums: dict[str, Tensor] = {}
        self._batches = 0

    def adjust(self, objective: Objective, terms: LossTerms, batch: Batch, ctx: StepContext) -> None:
        c = self.config
        if c.free_bits > 0:
            kl = objective.kl
            objective.kl = torch.where(kl.mean() >= c.free_bits, kl, torch.full_like(kl, c.free_bits))
        if terms.posterior.mu.size(0) < 2:
            return  # a single sentence has no pairs
        mean_d, std = mutual_divergence_terms(terms.posterior)
        diversity = -F.logsigmoid(mean_d).sum()
        objective.extras["mae_diversity"] = (c.eta, diversity)
        objective.extras["mae_smoothness"] = (c.gamma, std)
        if ctx.training:
            # Kept as tensors: a float() per step would synchronise a GPU.
            for key, value in (("pairwise_kl_mean", mean_d.sum()), ("pairwise_kl_std", std)):
                self._sums[key] = self._sums.get(key, 0.0) + value.detach().float()
            self._batches += 1

    def on_epoch_start(self, ctx: StepContext) -> None:
        self._sums, self._batches = {}, 0

    def log_scalars(self) -> dict[str, float]:
        """Training-epoch means of sum_d M_d and of S (nats)."""
        return {key: float(value) / self._batches for key, value in self._sums.items()}
