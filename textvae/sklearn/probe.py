"""``linear_probe``: a text classifier = frozen text-VAE features + logistic regression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .encoder import TextVAEEncoder


def linear_probe(run_dir: str | Path | None = None, encoder: TextVAEEncoder | None = None, C: float = 1.0,
                 scale: bool = False, max_iter: int = 1000, **encoder_params: Any) -> Pipeline:
    """``Pipeline([("vae", encoder), ("clf", LogisticRegression(C=C))])``, fitted on raw texts.

    Pass a configured ``encoder`` or ``run_dir`` plus any :class:`TextVAEEncoder` parameters.
    ``scale=True`` inserts a ``StandardScaler`` between them. Tune with ``GridSearchCV`` on e.g.
    ``clf__C`` or ``vae__features``.
    """
    if encoder is None:
        encoder = TextVAEEncoder(run_dir=run_dir, **encoder_params)
    elif run_dir is not None or encoder_params:
        raise TypeError("linear_probe: pass either encoder or run_dir/encoder parameters, not both")
    steps: list[tuple[str, Any]] = [("vae", encoder)]
    if scale:
        steps.append(("scale", StandardScaler()))
    steps.append(("clf", LogisticRegression(C=C, max_iter=max_iter)))
    return Pipeline(steps)
