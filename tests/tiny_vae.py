"""Tiny untrained run folders for the generation, scikit-learn and probe tests (no trainer needed)."""

from __future__ import annotations

from pathlib import Path

import torch

from textvae.config import RunConfig
from textvae.data import load_corpus
from textvae.models import build_model
from textvae.rundir import RunDir


def save_run(config: RunConfig, run_dir: Path, seed: int = 0) -> Path:
    """Build the config's model with random weights and save it as a run folder ``load_run`` reads."""
    corpus = load_corpus(config.data)
    torch.manual_seed(seed)
    model = build_model(config, len(corpus.vocab))
    with RunDir(run_dir) as run:
        run.claim(fresh=True)
        run.write_config(config.to_dict())
        run.write_vocab(corpus.vocab)
        run.save_checkpoint("best", {"format": 1, "config": config.to_dict(), "vocab_size": len(corpus.vocab),
                                     "model": model.state_dict()})
    return run_dir
