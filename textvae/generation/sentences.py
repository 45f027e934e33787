"""Sentences from a trained model: samples from the prior, reconstructions and interpolations.

All functions expect the model in eval mode and decode in batches of ``batch_size`` sentences.
Latents follow the model's generation rule: ``model.sample_latent`` for prior samples (flow prior
and Scale-VAE's f * z included), ``model.to_decoder_space`` for posterior means.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..data import Vocab
from ..errors import ArgumentTypeError, ConfigError, check_int, check_str
from ..probing.features import DEFAULT_MAX_LENGTH, as_text_list, encode_posteriors
from .decoding import DecodingConfig, decode


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def decode_latents(model: torch.nn.Module, vocab: Vocab, z: Tensor, config: DecodingConfig,
                   batch_size: int = 256, generator: torch.Generator | None = None) -> list[str]:
    """Decode decoder-space latents [N, D] into texts."""
    texts: list[str] = []
    for start in range(0, z.size(0), batch_size):
        chunk = z[start : start + batch_size]
        ids = decode(model.decoder, chunk, chunk.size(0), vocab.bos_id, vocab.eos_id, config, generator)
        texts.extend(vocab.decode(words) for words in ids)
    return texts


@torch.no_grad()
def sample_texts(model: torch.nn.Module, vocab: Vocab, n: int, config: DecodingConfig | None = None,
                 seed: int = 0, batch_size: int = 256) -> list[str]:
    """``n`` sentences from the model's prior (an LSTM-LM samples without a latent).

    All ``n`` latents are drawn first, so greedy and beam outputs do not depend on ``batch_size``;
    sampled words do (same seed and batch size -> same texts).
    """
    check_int(n, "sample_texts: n", 0)
    check_int(batch_size, "sample_texts: batch_size", 1)
    config = config or DecodingConfig()
    generator = make_generator(seed, _device(model))
    if model.latent_dim:
        z = model.sample_latent(n, generator=generator)
    else:
        z = torch.zeros(n, 0, device=_device(model))
    return decode_latents(model, vocab, z, config, batch_size, generator)


def posterior_means(model: torch.nn.Module, vocab: Vocab, texts: list[str], batch_size: int,
                    max_length: int | None) -> Tensor:
    """Posterior means in the prior's space, on the model's device."""
    return encode_posteriors(model, vocab, texts, batch_size, max_length).mu.to(_device(model))


@torch.no_grad()
def reconstruct_texts(model: torch.nn.Module, vocab: Vocab, texts: list[str], config: DecodingConfig | None = None,
                      seed: int = 0, batch_size: int = 256, max_length: int | None = DEFAULT_MAX_LENGTH) -> list[str]:
    """Decode each text from its posterior mean (mapped to the decoder's space)."""
    _require_latent(model, "reconstruct")
    try:
        texts = as_text_list(texts)
    except (TypeError, ValueError) as e:
        raise ArgumentTypeError(f"reconstruct_texts: texts: {e}") from None
    check_int(batch_size, "reconstruct_texts: batch_size", 1)
    mu = posterior_means(model, vocab, texts, batch_size, max_length)
    generator = make_generator(seed, _device(model))
    return decode_latents(model, vocab, model.to_decoder_space(mu), config or DecodingConfig(), batch_size, generator)


@torch.no_grad()
def interpolate_texts(model: torch.nn.Module, vocab: Vocab, text_a: str, text_b: str, steps: int = 5,
                      config: DecodingConfig | None = None, seed: int = 0,
                      max_length: int | None = DEFAULT_MAX_LENGTH) -> list[str]:
    """``steps`` sentences (both ends included) along the line between two posterior means.

    The line is drawn in the prior's base space: z0 = prior.to_base(mu) (identity for N(0, I), the
    inverse flow for a flow prior), then mapped back with ``from_base`` and ``to_decoder_space``.
    """
    _require_latent(model, "interpolate")
    check_str(text_a, "interpolate_texts: text_a")
    check_str(text_b, "interpolate_texts: text_b")
    check_int(steps, "interpolate_texts: steps", 1)
    if steps < 2:
        raise ConfigError(f"interpolation needs steps >= 2 (both ends included), got {steps}")
    mu = posterior_means(model, vocab, [text_a, text_b], 2, max_length)
    z0, _ = model.prior.to_base(mu)
    t = torch.linspace(0.0, 1.0, steps, device=mu.device).unsqueeze(1)
    path = (1 - t) * z0[0] + t * z0[1]
    z = model.to_decoder_space(model.prior.from_base(path))
    generator = make_generator(seed, _device(model))
    return decode_latents(model, vocab, z, config or DecodingConfig(), steps, generator)


def _require_latent(model: torch.nn.Module, what: str) -> None:
    if not model.latent_dim:
        raise ConfigError(f"cannot {what} with a model without a latent variable (an LSTM-LM)")
