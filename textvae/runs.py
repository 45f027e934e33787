"""Load a finished or interrupted run folder for evaluation, probing and generation.

The folder's layout and files belong to :mod:`textvae.rundir`; this module rebuilds the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from . import resolution
from .config import RunConfig
from .data import Vocab
from .errors import CheckpointError
from .models import build_model
from .rundir import RunDir
from .training.checkpoint import check_compatible, load_checkpoint, load_model_state
from .training.environment import pick_device


@dataclass
class LoadedRun:
    run_dir: Path
    config: RunConfig
    vocab: Vocab
    model: torch.nn.Module
    checkpoint: Path


def load_run(run_dir: str | Path, checkpoint: str | Path = "best", device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild the model of ``run_dir`` from its config.json and vocab.txt and load a checkpoint.

    ``checkpoint`` is ``best``, ``last`` or a path to a ``.pt`` file; ``device`` a torch device or its
    name, ``auto`` for CUDA when available. The model is in eval mode.
    A checkpoint whose weights are not all finite (a diverged model) is refused.
    """
    if not isinstance(run_dir, (str, os.PathLike)):
        raise CheckpointError(f"load_run: run_dir must be a path, got {type(run_dir).__name__}")
    if isinstance(device, str):
        device = pick_device(device, "device")
    run = RunDir(run_dir)
    path = run.checkpoint(checkpoint)
    run.require_run()
    config = resolution.load(run.config)
    vocab = Vocab.load(run.vocab)
    vocab.lowercase = config.data.lowercase
    ckpt = load_checkpoint(path, device)
    check_compatible(ckpt["config"], config, path)
    model = build_model(config, len(vocab))
    load_model_state(model, ckpt["model"], path)
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: weights are not finite ({name}); the model diverged, "
                                  "use an earlier checkpoint")
    model.to(device).eval()
    return LoadedRun(run.path, config, vocab, model, path)
