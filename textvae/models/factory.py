""":func:`build_model`: a run config -> its model, with the prior and strategies from their registries."""

from __future__ import annotations

from ..config import RunConfig
from ..priors import build_prior
from ..strategies import build_stack
from .vae import LSTMLanguageModel, TextVAE


def build_model(config: RunConfig, vocab_size: int) -> TextVAE | LSTMLanguageModel:
    """Build the model a run config describes (strategies and prior resolved from the registries)."""
    if config.model.kind == "lstm-lm":
        return LSTMLanguageModel(config.model, vocab_size)
    prior = build_prior(config.prior, config.model.latent_dim)
    strategy = build_stack(config.strategies, config.model.latent_dim)
    return TextVAE(config.model, vocab_size, prior, strategy, scale_reading=config.eval.scale_reading)
