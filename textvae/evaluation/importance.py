"""Importance-weighted log-likelihood: log p(x) >= E[log (1/K) sum_k p(x, z_k) / q(z_k|x)].

Sentences are scored many at a time with many samples per forward pass. Batches of
:class:`~textvae.types.Batch` are re-cut into chunks of sentences sorted longest first (so the
LSTM decoder does no work on padding) whose size is set by a token budget; samples beyond the
budget are drawn in passes and combined with a streaming log-sum-exp in float64.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from ..progress import Progress
from ..types import Batch
from .protocol import CountTargets, LatentVariableModel, batch_targets, make_generator, model_device, to_device

log = logging.getLogger(__name__)

Precision = Literal["float32", "bfloat16"]

CPU_ROWS_PER_PASS = 512
"""Most sentence x sample rows in one pass on CPU: the matrix products are at full speed well
below 512 rows, and more rows push each step's rows x vocabulary logits out of the cache
(measured: 512-1024 rows fastest, 4096 about 30% slower, bfloat16, 7.7k words)."""
CPU_MAX_TOKENS = 200_000

GPU_MEMORY_SHARE = 0.5
"""Of the GPU memory free when evaluation starts, the share one pass may take: the allocator's
rounding and fragmentation, and tensors the caller holds on to, get the rest."""
GPU_MAX_ROWS = 1 << 17
"""Past this many rows a pass's products are long saturated on any GPU; more only costs memory."""
DEFAULT_PASS_MEMORY = {"row": 64 * 1024, "target": 8, "sentence_target": 64 * 1024}
"""Bytes per row, per row x target and per sentence x target for a model that does not say
(``pass_memory``): a decoder with about 10k words and 1k hidden units, the paper's size."""


def gpu_free_bytes(device: torch.device) -> int:
    """Free device memory plus what PyTorch's allocator holds cached but unused (free to this process)."""
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def gpu_pass_limits(free_bytes: int, memory: dict[str, int], samples: int,
                    max_tokens: int | None = None) -> tuple[int, int]:
    """(most rows, most sentence x sample x target tokens) of one pass on a GPU with ``free_bytes``.

    ``memory`` is what the model's eval pass holds per row (a sentence x sample: LSTM state, gates,
    the vocabulary logits of a step), per row x target (the repeated targets) and per sentence x
    target (input projections shared by a sentence's samples, spread here over ``samples``). Half
    of the budget bounds the rows, half the tokens; ``max_tokens`` caps the tokens when given.
    """
    budget = GPU_MEMORY_SHARE * free_bytes / 2
    per_token = memory["target"] + math.ceil(memory["sentence_target"] / max(samples, 1))
    rows = int(min(max(budget // memory["row"], CPU_ROWS_PER_PASS), GPU_MAX_ROWS))
    tokens = int(max(budget // per_token, rows))
    return rows, tokens if max_tokens is None else min(tokens, max_tokens)


def pass_limits(model: Any, device: torch.device, samples: int, max_tokens: int | None) -> tuple[int, int]:
    """(most rows, token budget) of one IW pass on ``device``."""
    if device.type != "cuda":
        return CPU_ROWS_PER_PASS, CPU_MAX_TOKENS if max_tokens is None else max_tokens
    memory = model.pass_memory() if callable(getattr(model, "pass_memory", None)) else DEFAULT_PASS_MEMORY
    return gpu_pass_limits(gpu_free_bytes(device), memory, samples, max_tokens)


@dataclass
class Chunk:
    batch: Any
    positions: Tensor  # where its sentences go in the output, in input order
    samples_per_pass: int


def plan_chunks(batches: list[Any], samples: int, max_tokens: int, count_targets: CountTargets,
                max_rows: int = CPU_ROWS_PER_PASS) -> list[Chunk]:
    """Cut the work into passes of at most ``max_tokens`` = sentences x samples x targets and
    ``max_rows`` = sentences x samples.

    Batches of :class:`Batch` are pooled, sorted by length (longest first) and re-cut; other batch
    objects are kept whole and only their samples are split.
    """
    if batches and all(isinstance(b, Batch) for b in batches):
        return _length_sorted_chunks(batches, samples, max_tokens, max_rows)
    chunks, offset = [], 0
    for batch in batches:
        size = _opaque_size(batch)
        per_pass = max(1, min(samples, max_tokens // max(1, count_targets(batch)), max_rows // max(1, size)))
        chunks.append(Chunk(batch, torch.arange(offset, offset + size, device="cpu"), per_pass))
        offset += size
    return chunks


def _opaque_size(batch: Any) -> int:
    size = getattr(batch, "size", None)
    if isinstance(size, int):
        return size
    return len(batch)


def _length_sorted_chunks(batches: list[Batch], samples: int, max_tokens: int, max_rows: int) -> list[Chunk]:
    # Planned on the host (one copy per batch, not one per sentence); each chunk moves to the device when run.
    host = [(b.tokens.cpu(), b.lengths.tolist()) for b in batches]
    sentences = [tokens[i, :length] for tokens, lengths in host for i, length in enumerate(lengths)]
    order = sorted(range(len(sentences)), key=lambda s: -len(sentences[s]))
    chunks, start = [], 0
    while start < len(order):
        per_pass = max(1, min(samples, max_tokens // max(1, len(sentences[order[start]]) - 1), max_rows))
        end, tokens = start + 1, len(sentences[order[start]]) - 1
        while end < len(order):
            targets = len(sentences[order[end]]) - 1
            if (tokens + targets) * per_pass > max_tokens or (end - start + 1) * per_pass > max_rows:
                break
            tokens += targets
            end += 1
        members = order[start:end]
        lengths = torch.tensor([len(sentences[m]) for m in members], device="cpu")
        padded = torch.zeros(len(members), int(lengths[0]), dtype=torch.long, device="cpu")
        for row, m in enumerate(members):
            padded[row, : len(sentences[m])] = sentences[m]
        chunks.append(Chunk(Batch(padded, lengths), torch.tensor(members, device="cpu"), per_pass))
        start = end
    return chunks


def iw_log_likelihood(
    model: LatentVariableModel,
    batches: Iterable[Any],
    *,
    samples: int = 500,
    max_tokens: int | None = None,
    seed: int = 0,
    count_targets: CountTargets = batch_targets,
    precision: Precision = "float32",
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> Tensor:
    """Importance-weighted estimate of log p(x) per sentence, float64 [N], in the order of ``batches``.

    Proposal: ``model.posterior``; ``samples`` = K (a model with ``latent_dim == 0`` uses one
    sample: its weights are all log p(x)). ``precision="bfloat16"`` runs the model's
    ``log_likelihood`` under bfloat16 autocast; it must still return float32 or wider, and the
    log-sum-exp is always float64. A ``generator`` replaces ``seed`` (to continue a random stream).
    Call inside :func:`~textvae.evaluation.evaluate` or with the
    model in eval mode under ``torch.inference_mode()``.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    samples = samples if model.latent_dim else 1
    device = model_device(model)
    generator = generator or make_generator(seed, device)
    max_rows, max_tokens = pass_limits(model, device, samples, max_tokens)
    chunks = plan_chunks(list(batches), samples, max_tokens, count_targets, max_rows)
    total = sum(len(c.positions) for c in chunks)
    out = torch.empty(total, dtype=torch.float64, device="cpu")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bfloat16" else nullcontext()
    with Progress(f"IW-NLL (K={samples})", total, "sentence", log, progress) as bar:
        for chunk in chunks:
            batch = to_device(chunk.batch, device)
            log_px = _log_marginal(model, batch, samples, chunk.samples_per_pass, generator, autocast)
            out[chunk.positions] = log_px.cpu()
            bar.update(len(chunk.positions))
    return out


def _log_marginal(model: LatentVariableModel, batch: Any, samples: int, per_pass: int,
                  generator: torch.Generator, autocast) -> Tensor:
    posterior = model.posterior(batch)
    running: Tensor | None = None
    for start in range(0, samples, per_pass):
        z = posterior.sample(min(per_pass, samples - start), generator=generator)
        with autocast:
            log_lik = model.log_likelihood(batch, z)
        if torch.finfo(log_lik.dtype).bits < 32:
            raise TypeError(f"log_likelihood returned {log_lik.dtype}; the evaluator needs float32 or wider")
        log_w = log_lik.double() + (model.log_prior(z) - posterior.log_prob(z)).double()
        lse = torch.logsumexp(log_w, dim=1)
        running = lse if running is None else torch.logaddexp(running, lse)
    return running - math.log(samples)
