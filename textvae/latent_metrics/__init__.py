"""Latent-space diagnostics of the dpVAE paper: sKL, leakage, low/high-posterior samples."""

from .aggregate import AggregatePosterior
from .divergence import symmetric_kl
from .extremes import high_posterior_latents, low_posterior_latents
from .leakage import (
    LeakagePoint,
    default_thresholds,
    generation_log_density,
    leakage_scores,
    leakage_table,
    plot_leakage,
)

__all__ = [
    "AggregatePosterior",
    "LeakagePoint",
    "default_thresholds",
    "generation_log_density",
    "high_posterior_latents",
    "leakage_scores",
    "leakage_table",
    "low_posterior_latents",
    "plot_leakage",
    "symmetric_kl",
]
