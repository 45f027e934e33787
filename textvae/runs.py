"""Load a finished or interrupted run folder for evaluation, probing and generation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .config import RunConfig
from .data import Vocab
from .errors import CheckpointError
from .models import build_model
from .training.checkpoint import check_compatible, load_checkpoint, load_model_state


@dataclass
class LoadedRun:
    run_dir: Path
    config: RunConfig
    vocab: Vocab
    model: torch.nn.Module
    checkpoint: Path


def load_run(run_dir: str | Path, checkpoint: str = "best", device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild the model of ``run_dir`` from its config.json and vocab.txt and load a checkpoint.

    ``checkpoint`` is ``best``, ``last`` or a path to a ``.pt`` file. The model is in eval mode.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise CheckpointError(f"{run_dir}: not a textvae run folder (no config.json)")
    config = RunConfig.load(run_dir / "config.json")
    vocab = Vocab.load(run_dir / "vocab.txt")
    path = Path(checkpoint) if checkpoint.endswith(".pt") else run_dir / "checkpoints" / f"{checkpoint}.pt"
    ckpt = load_checkpoint(path, device)
    check_compatible(ckpt["config"], config.to_dict(), path)
    model = build_model(config, len(vocab))
    load_model_state(model, ckpt["model"], path)
    model.to(device).eval()
    return LoadedRun(run_dir, config, vocab, model, path)
