"""Latent leakage (dpVAE §5.1, Fig. 4): how much aggregate-posterior mass sits where generation rarely samples.

A sample z ~ q(z) is in the leakage region at threshold tau when log N(f(z); 0, I) < tau, with f the
map to the generation space (identity for N(0, I), g for the decoupled prior). The score at tau is
the mean of log q(z) - log N(f(z)) over the samples in the region (the dpVAE reference code's
average): low means the regions generation misses also carry little posterior mass.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..priors import Prior, standard_normal_log_prob
from .aggregate import AggregatePosterior


@dataclass
class LeakagePoint:
    threshold: float
    fraction: float
    """Share of the q(z) samples inside the leakage region."""
    score: float | None
    """Mean log q(z) - log N(f(z)) over the region; None when no sample falls in it."""


def generation_log_density(prior: Prior, z: Tensor) -> Tensor:
    """log N(f(z); 0, I): the base density at z's image in the generation space (no Jacobian)."""
    z0, _ = prior.to_base(z)
    return standard_normal_log_prob(z0)


def default_thresholds(latent_dim: int) -> list[float]:
    """From the typical base log-density down into its tail, in standard deviations of log N(z0).

    For z0 ~ N(0, I_D), log N(z0) has mean -D/2 (1 + log 2 pi) and standard deviation sqrt(D / 2),
    so these thresholds mean the same thing whatever the latent size.
    """
    mean = -0.5 * latent_dim * (1.0 + math.log(2 * math.pi))
    std = math.sqrt(latent_dim / 2)
    return [mean - k * std for k in (16, 12, 8, 6, 4, 3, 2, 1, 0)]


@torch.no_grad()
def leakage_scores(model, aggregate: AggregatePosterior, thresholds: list[float] | None = None,
                   n_samples: int = 5000, generator: torch.Generator | None = None) -> list[LeakagePoint]:
    thresholds = sorted(thresholds if thresholds is not None else default_thresholds(aggregate.mu.size(1)))
    z = aggregate.sample(n_samples, generator=generator)
    log_base = generation_log_density(model.prior, z)
    gap = aggregate.log_prob(z) - log_base
    points = []
    for tau in thresholds:
        inside = log_base < tau
        count = int(inside.sum())
        score = gap[inside].mean().item() if count else None
        points.append(LeakagePoint(float(tau), count / n_samples, score))
    return points


def leakage_table(points: list[LeakagePoint]) -> list[dict]:
    return [asdict(p) for p in points]


def plot_leakage(curves: dict[str, list[LeakagePoint]], path: str | Path, title: str = "Latent leakage",
                 styles: dict[str, dict] | None = None) -> Path:
    """One line per model (label -> points) of score against threshold, written as an image file.

    ``styles`` maps a label to extra matplotlib line properties (colour, linestyle).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, points in curves.items():
        shown = [p for p in points if p.score is not None]
        style = {"marker": "o", **(styles or {}).get(label, {})}
        ax.plot([p.threshold for p in shown], [p.score for p in shown], label=label, **style)
    ax.set_xlabel("threshold tau on log N(f(z); 0, I)")
    ax.set_ylabel("leakage score (mean log q(z) - log N(f(z)))")
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
