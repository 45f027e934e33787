"""Batched decoding from latents: greedy, sampling (temperature, top-k, top-p) and beam search.

Every function decodes many sentences at once from ``z`` [N, D] in the decoder's space (``None``
or [N, 0] for the LSTM-LM) and returns word ids without ``<s>``/``</s>``. A sentence stops at
``</s>`` or after ``max_length`` words (100, as in He et al.'s ``greedy_decode``/``sample``).
Models must be in eval mode: decoding never applies dropout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ..errors import ConfigError
from ..models.decoder import LSTMDecoder

DecodeMode = Literal["greedy", "sample", "beam"]


@dataclass
class DecodingConfig:
    mode: DecodeMode = "greedy"
    temperature: float = 1.0
    """Divides the logits before sampling (``sample`` mode only)."""
    top_k: int = 0
    """Sample among the k most likely words; 0 keeps all."""
    top_p: float = 1.0
    """Sample among the smallest set of words whose probability reaches p (nucleus); 1 keeps all."""
    beam_size: int = 5
    max_length: int = 100
    """Most words per sentence, ``</s>`` not counted."""

    def validate(self) -> None:
        if self.mode not in ("greedy", "sample", "beam"):
            raise ConfigError(f"decoding mode must be greedy, sample or beam, got {self.mode!r}")
        if not 0 < self.temperature < math.inf:  # NaN and inf would decode NaN probabilities
            raise ConfigError(f"decoding temperature must be a finite number > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ConfigError(f"decoding top_k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"decoding top_p must be in (0, 1], got {self.top_p}")
        if self.beam_size < 1:
            raise ConfigError(f"decoding beam_size must be >= 1, got {self.beam_size}")
        if self.max_length < 1:
            raise ConfigError(f"decoding max_length must be >= 1, got {self.max_length}")


def filter_logits(logits: Tensor, top_k: int, top_p: float) -> Tensor:
    """Set the logits outside the top-k and outside the top-p nucleus to -inf ([N, V])."""
    if top_k and top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # Drop a word when the words ranked above it already reach p; the top word always stays.
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _latent(z: Tensor | None, decoder: LSTMDecoder) -> Tensor | None:
    return z if decoder.latent_dim else None


@torch.no_grad()
def decode_stepwise(decoder: LSTMDecoder, z: Tensor | None, n: int, bos_id: int, eos_id: int,
                    config: DecodingConfig, generator: torch.Generator | None = None) -> list[list[int]]:
    """Greedy or sampled decoding of ``n`` sentences in one batch."""
    device = decoder.out.weight.device
    zs = _latent(z, decoder)
    state = decoder.initial_state(zs)
    inputs = torch.full((n, 1), bos_id, dtype=torch.long, device=device)
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    steps: list[Tensor] = []
    for _ in range(config.max_length + 1):  # + 1: room for </s> after max_length words
        hidden, state = decoder.hidden_states(inputs, zs, state)
        logits = decoder.logits(hidden[:, -1])
        if config.mode == "greedy":
            words = logits.argmax(-1)
        else:
            logits = filter_logits(logits / config.temperature, config.top_k, config.top_p)
            words = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)
        words = words.masked_fill(finished, eos_id)
        steps.append(words)
        finished |= words == eos_id
        if bool(finished.all()):
            break
        inputs = words.unsqueeze(1)
    return _trim(torch.stack(steps, 1), eos_id, config.max_length)


@torch.no_grad()
def decode_beam(decoder: LSTMDecoder, z: Tensor | None, n: int, bos_id: int, eos_id: int,
                config: DecodingConfig) -> list[list[int]]:
    """Beam search for ``n`` sentences at once (n x beam_size hypotheses in one LSTM batch).

    Hypotheses are ranked by their summed log-probability with ``</s>`` included and no length
    normalisation, like He et al.'s ``beam_search_decode``.
    """
    device = decoder.out.weight.device
    k = config.beam_size
    zs = _latent(z, decoder)
    zs = None if zs is None else zs.repeat_interleave(k, dim=0)
    state = decoder.initial_state(zs)
    inputs = torch.full((n * k, 1), bos_id, dtype=torch.long, device=device)
    scores = torch.full((n, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: keep one so the first step does not pick duplicates
    finished = torch.zeros(n, k, dtype=torch.bool, device=device)
    history = torch.zeros(n, k, 0, dtype=torch.long, device=device)
    offsets = (torch.arange(n, device=device) * k).unsqueeze(1)
    for _ in range(config.max_length + 1):
        hidden, state = decoder.hidden_states(inputs, zs, state)
        logp = decoder.logits(hidden[:, -1]).log_softmax(-1).view(n, k, -1)
        vocab = logp.size(-1)
        # A finished hypothesis can only be extended by </s> at no cost, so it keeps its score.
        ended = torch.full_like(logp, float("-inf"))
        ended[..., eos_id] = 0.0
        logp = torch.where(finished.unsqueeze(-1), ended, logp)
        top_scores, top = (scores.unsqueeze(-1) + logp).view(n, k * vocab).topk(k, dim=-1)
        parent, words = top // vocab, top % vocab
        scores = top_scores
        history = torch.cat([history.gather(1, parent.unsqueeze(-1).expand_as(history)), words.unsqueeze(-1)], -1)
        finished = finished.gather(1, parent) | (words == eos_id)
        rows = (offsets + parent).view(-1)
        state = (state[0][:, rows], state[1][:, rows])
        if bool(finished.all()):
            break
        inputs = words.view(-1, 1)
    best = scores.argmax(-1)
    return _trim(history[torch.arange(n, device=device), best], eos_id, config.max_length)


def _trim(steps: Tensor, eos_id: int, max_length: int) -> list[list[int]]:
    out = []
    for row in steps.tolist():
        words = row[: row.index(eos_id)] if eos_id in row else row
        out.append(words[:max_length])
    return out


def decode(decoder: LSTMDecoder, z: Tensor | None, n: int, bos_id: int, eos_id: int, config: DecodingConfig,
           generator: torch.Generator | None = None) -> list[list[int]]:
    """Decode ``n`` sentences from ``z`` [n, D] with the configured strategy."""
    config.validate()
    if config.mode == "beam":
        return decode_beam(decoder, z, n, bos_id, eos_id, config)
    return decode_stepwise(decoder, z, n, bos_id, eos_id, config, generator)
