"""Raw texts -> posterior statistics of a trained model (the representation the probes read).

Texts get the run's own preprocessing, that of :func:`textvae.data.encode_texts`: for a word
vocabulary a whitespace split, words outside the vocabulary become ``<unk>`` (the benchmark corpora
are already lower-cased, so no case folding happens), and only the first ``max_length`` tokens of a
longer text are kept. An empty or all-whitespace string is the empty sentence ``<s> </s>``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from ..config import RunConfig
from ..data import Vocab, encode_texts, make_batches
from ..types import Posterior

DEFAULT_MAX_LENGTH = 200
"""Tokens kept per text when neither the caller nor the run's ``data.max_length`` says otherwise."""


def input_max_length(config: RunConfig) -> int:
    """Tokens kept of a user's text: the run's ``data.max_length``, else :data:`DEFAULT_MAX_LENGTH`."""
    return config.data.max_length or DEFAULT_MAX_LENGTH


def as_text_list(X: Any) -> list[str]:
    """Accept a list, tuple, 1-D array or Series of strings; anything else is a ``TypeError``/``ValueError``."""
    if isinstance(X, str):
        raise TypeError("expected a collection of strings, got a single str; wrap it in a list")
    if isinstance(X, np.ndarray) and X.ndim != 1:
        raise ValueError(f"expected a 1-D collection of strings, got an array of shape {X.shape}")
    if not isinstance(X, Iterable):
        raise TypeError(f"expected a collection of strings, got {type(X).__name__}")
    texts = list(X)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"expected strings, got {type(text).__name__} at position {i}")
    return texts


@torch.no_grad()
def encode_posteriors(model: torch.nn.Module, vocab: Vocab, texts: list[str], batch_size: int = 256,
                      max_length: int | None = DEFAULT_MAX_LENGTH) -> Posterior:
    """Eval-form q(z|x) of every text, in input order, on the CPU (means and log-variances [N, D]).

    The posterior is the one in the prior's space that the evaluator uses (``model.posterior``):
    after BN-VAE/DU-VAE transforms; for Scale-VAE as ``eval.scale_reading`` says (the scaled means
    f * mu under ``scaled-posterior``, the unscaled mu under ``scaled-prior``).
    """
    device = next(model.parameters()).device
    split = encode_texts(vocab, texts, max_length=max_length)
    dim = model.latent_dim
    mu = torch.zeros(len(texts), dim, device="cpu")
    logvar = torch.zeros(len(texts), dim, device="cpu")
    for batch in make_batches(split, batch_size, mode="padded"):
        post = model.posterior(batch.to(device))
        mu[batch.index] = post.mu.float().cpu()
        logvar[batch.index] = post.logvar.float().cpu()
    return Posterior(mu, logvar)
