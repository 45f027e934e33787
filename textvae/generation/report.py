"""One Table-5-style measurement of a run: sample from the prior, reconstruct, and score both.

Reconstruction BLEU compares with the inputs as the model sees them (its vocabulary's ``<unk>``
and truncation applied), so words it could never produce do not count against it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..data import Vocab, encode_texts
from ..probing.features import DEFAULT_MAX_LENGTH
from ..progress import Progress
from .decoding import DecodingConfig
from .metrics import DEFINITIONS, diversity_metrics, gram_metrics, lm_perplexity, reconstruction_bleu
from .sentences import reconstruct_texts, sample_texts

log = logging.getLogger(__name__)


def model_view(vocab: Vocab, texts: list[str], max_length: int | None) -> list[str]:
    return [vocab.decode(ids) for ids in encode_texts(vocab, texts, max_length=max_length).ids]


def generation_report(model: torch.nn.Module, vocab: Vocab, n: int, decoding: DecodingConfig, seed: int = 0,
                      batch_size: int = 256, train_texts: list[str] | None = None,
                      lm: tuple[torch.nn.Module, Vocab] | None = None, reconstruct: list[str] | None = None,
                      max_length: int | None = DEFAULT_MAX_LENGTH) -> dict[str, Any]:
    """Metrics of ``n`` prior samples (+ Gram-n if ``train_texts``, + LM PPL if ``lm``) and the BLEU
    of greedy reconstructions of ``reconstruct``; returns metrics, the settings and the definitions."""
    model.eval()
    steps = 2 + (train_texts is not None) + (lm is not None) + bool(reconstruct)
    with Progress(f"generation ({n} samples)", steps, "step", log, every=True) as bar:
        samples = sample_texts(model, vocab, n, decoding, seed=seed, batch_size=batch_size)
        bar.update(note="sampled")
        metrics: dict[str, float] = diversity_metrics(samples)
        bar.update(note="distinct-n, entropy, self-BLEU")
        if train_texts is not None:
            metrics.update(gram_metrics(samples, train_texts))
            bar.update(note="Gram-n")
        if lm is not None:
            lm_model, lm_vocab = lm
            lm_model.eval()
            metrics.update(lm_perplexity(lm_model, lm_vocab, samples, batch_size))
            bar.update(note="LM perplexity")
        if reconstruct:
            outputs = reconstruct_texts(model, vocab, reconstruct, DecodingConfig(max_length=decoding.max_length),
                                        seed=seed, batch_size=batch_size, max_length=max_length)
            metrics["rec-bleu"] = reconstruction_bleu(outputs, model_view(vocab, reconstruct, max_length))
            bar.update(note="reconstruction BLEU")
    return {
        "metrics": metrics,
        "settings": {"n": n, "seed": seed, "decoding": asdict(decoding), "reconstructed": len(reconstruct or []),
                     "gram_reference": "train split" if train_texts is not None else None,
                     "lm": lm is not None},
        "definitions": DEFINITIONS,
        "samples": samples,
    }


def check_generation_record(record: Any, path: Path) -> dict[str, Any]:
    """A generation record a report can read: ``{"metrics": {name: number}, "settings": ...}``."""
    from ..errors import RunFolderError

    metrics = record.get("metrics") if isinstance(record, dict) else None
    if not isinstance(metrics, dict):
        raise RunFolderError(f"{path}: not a generation record (expected a JSON object with 'metrics')")
    for name, value in metrics.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise RunFolderError(f"{path}: metrics.{name} must be a number, got {value!r}")
    return record
