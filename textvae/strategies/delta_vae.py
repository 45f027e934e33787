"""delta-VAE: a committed rate of delta nats per dimension (Razavi et al. 2019, ICLR, "Preventing
Posterior Collapse with delta-VAEs"), as the text baselines of Zhu et al. 2020 implement it
(BN ``modules/encoders/enc_lstm.py::DeltaGaussianLSTMEncoder``; docs/methods/kl-floors.md).
Hook: ``transform_posterior`` (on the raw encoder output).

Every dimension's variance is confined to [var_lo, var_hi], the two roots of ln x - x + 2 delta + 1 = 0,
and the mean is then chosen so that KL(q_d || N(0, 1)) = delta + relu(raw_mu_d) / 2: the KL is at least
latent_dim * delta whatever the input, so a positive KL is no evidence of an informative latent.
As in the reference, the mean is never negative. Razavi et al.'s AR(1) prior is not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..config import ranged
from ..types import Posterior, StepContext
from .base import Strategy
from .registry import STRATEGIES

# The reference keeps sigmoid(raw_logvar) >= 1/50 (a clamp of its denominator to [1, 50]).
MIN_SIGMOID = 1.0 / 50.0
SQRT_GUARD = 1e-6


@dataclass
class DeltaVAEConfig:
    delta: float = ranged(0.1, gt=0)
    """Committed rate in nats per latent dimension (Table 1 uses 0.1; BN's default is 0.15)."""



def _bisect(g, lo: float, hi: float, iterations: int = 200) -> float:
    """Root of g in [lo, hi] where g(lo) and g(hi) have opposite signs; float64 bisection."""
    g_lo = g(lo)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if (g(mid) > 0) == (g_lo > 0):
            lo, g_lo = mid, g(mid)
        else:
            hi = mid
    return 0.5 * (lo + hi)


def variance_bounds(delta: float) -> tuple[float, float]:
    """The roots var_lo < 1 < var_hi of ln x - x + 2 delta + 1 = 0.

    g(x) = ln x - x + c (c = 2 delta + 1) is concave with its maximum g(1) = 2 delta > 0 at x = 1;
    g -> -inf at 0, and g(2c + 2) = ln(2c + 2) - c - 2 < 0, so each bracket holds exactly one root.
    """
    c = 2.0 * delta + 1.0

    def g(x: float) -> float:
        return math.log(x) - x + c

    return _bisect(g, 1e-300, 1.0), _bisect(g, 1.0, 2.0 * c + 2.0)


@STRATEGIES.register("delta-vae", config=DeltaVAEConfig)
class DeltaVAE(Strategy):
    """delta-VAE: posterior family constrained so every dimension's KL is at least delta (Razavi et al. 2019)."""

    paper = "Razavi et al. 2019, Preventing Posterior Collapse with delta-VAEs (text version of Zhu et al. 2020)"
    # The committed rate is a KL to N(0, I): other priors would void the guarantee.
    requires_analytic_kl = True

    def __init__(self, config: DeltaVAEConfig, latent_dim: int):
        super().__init__(config, latent_dim)
        var_lo, var_hi = variance_bounds(config.delta)
        self.std_lo, self.std_hi = math.sqrt(var_lo), math.sqrt(var_hi)

    def transform_posterior(self, posterior: Posterior, ctx: StepContext) -> Posterior:
        gate = torch.sigmoid(posterior.logvar).clamp(min=MIN_SIGMOID)
        std = self.std_lo + (self.std_hi - self.std_lo) * gate
        logvar = 2.0 * torch.log(std)
        # 2 delta + 1 + log var - var >= 0 inside the bounds; the clamp absorbs rounding at the edges.
        slack = (2.0 * self.config.delta + 1.0 + logvar - logvar.exp()).clamp(min=0.0)
        mu = torch.sqrt(slack + F.relu(posterior.mu) + SQRT_GUARD)
        return Posterior(mu, logvar)
