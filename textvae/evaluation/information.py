"""Mutual information I_q(x; z) and active units, from the posteriors of an evaluation set.

Both MI estimators follow the reference code (docs/evaluation.md, "Mutual information"):
MI = E_x E_q(z|x)[log q(z|x)] - E_x E_q(z|x)[log q(z)], the first term in closed form (minus the
entropy), the second with one sample z_i ~ q(z|x_i) per sentence and the aggregate posterior
q(z) ~ (1/M) sum_j q(z|x_j) over a set of M posteriors that includes x_i's own.

* ``whole-set`` (Li et al., BN-VAE, DU-VAE ``calc_mi_v3``): M = all N sentences; at most log N.
* ``per-batch`` (He et al. ``calc_mi``): M = the sentences of x_i's batch, batch values averaged
  weighted by batch size; at most log M (log 32 with the reference batches) and biased by
  length-homogeneous batches.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from ..types import LOG_2PI, Posterior

MIEstimator = Literal["whole-set", "per-batch"]
MI_ESTIMATORS: tuple[str, ...] = ("whole-set", "per-batch")

PAIRS_PER_BLOCK = 1 << 22
"""Sample x component pairs of the aggregate-posterior density held in memory at once."""


def mutual_information(posteriors: list[Posterior], estimator: MIEstimator, generator: torch.Generator) -> float:
    """I_q(x; z) in nats from the per-batch posteriors of an evaluation set (see module docstring)."""
    check_estimator(estimator)
    if estimator == "whole-set":
        mu = torch.cat([p.mu for p in posteriors])
        logvar = torch.cat([p.logvar for p in posteriors])
        return _mi_terms(mu, logvar, generator).mean().item()
    return torch.cat([_mi_terms(p.mu, p.logvar, generator) for p in posteriors]).mean().item()


def check_estimator(estimator: str) -> None:
    if estimator not in MI_ESTIMATORS:
        raise ValueError(f"unknown MI estimator {estimator!r}; choose one of {', '.join(MI_ESTIMATORS)}")


def _mi_terms(mu: Tensor, logvar: Tensor, generator: torch.Generator) -> Tensor:
    """log q(z_i|x_i) (closed-form expectation) - log q_agg(z_i) per sentence, float64 [M]."""
    posterior = Posterior(mu, logvar)
    z = posterior.sample(generator=generator).double()
    mu, logvar = mu.double(), logvar.double()
    neg_entropy = -posterior.entropy().double()
    m, d = mu.shape
    inv_var = torch.exp(-logvar)
    # log N(z_i; mu_j, var_j) for all pairs, expanded into matrix products so no [M, M, D] tensor exists.
    const_j = -0.5 * ((mu.pow(2) * inv_var).sum(1) + logvar.sum(1) + d * LOG_2PI)
    log_agg = torch.empty(m, dtype=torch.float64, device=mu.device)
    block = max(1, PAIRS_PER_BLOCK // max(1, m))
    for start in range(0, m, block):
        zi = z[start : start + block]
        log_pairs = const_j - 0.5 * (zi.pow(2) @ inv_var.T) + zi @ (mu * inv_var).T
        log_agg[start : start + block] = torch.logsumexp(log_pairs, dim=1) - math.log(m)
    return neg_entropy - log_agg


def active_units(mu: Tensor, threshold: float = 0.01) -> tuple[int, Tensor]:
    """AU = #{d : Var_x(E_q[z_d|x]) >= threshold} with the unbiased variance of the posterior means.

    Returns the count and the per-dimension variances (float64; NaN with fewer than 2 sentences).
    """
    if mu.size(0) < 2 or mu.size(1) == 0:
        variances = torch.full((mu.size(1),), math.nan, dtype=torch.float64)
    else:
        variances = mu.double().var(dim=0, correction=1).cpu()
    return int((variances >= threshold).sum()), variances
