"""Checkpoints: one file with everything needed to resume exactly, written atomically.

Loading uses ``torch.load(weights_only=True)``: a checkpoint is data, never code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig
from ..errors import CheckpointError
from ..formats import check_format
from ..resolution import normalized, resolve_config
from ..rundir import atomic_write


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    atomic_write(path, lambda f: torch.save(state, f))


CHECKPOINT_FORMAT = 2
"""1: one list of optimisers; 2: optimiser groups by name, procedure state, stages. A checkpoint
without the key is format 1; one of a later format (a newer textvae's) is refused."""

MODEL_KEYS = ("config", "model")
RESUME_KEYS = MODEL_KEYS + ("vocab_size", "optimizers", "state", "rng")


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu",
                    require: tuple[str, ...] = MODEL_KEYS) -> dict[str, Any]:
    """A textvae checkpoint; a missing, truncated or foreign file (any other ``.pt``) is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or foreign file: one line, no traceback
        message = f"{path}: not a readable textvae checkpoint ({type(e).__name__}: {e})"
        raise CheckpointError(message.splitlines()[0]) from None
    missing = [k for k in require if k not in ckpt] if isinstance(ckpt, dict) else list(require)
    if missing:
        raise CheckpointError(f"{path}: not a textvae checkpoint" + (" one can resume from" if ckpt_like(ckpt) else "")
                              + f" (no {', '.join(repr(k) for k in missing)} entry)")
    check_format(ckpt.setdefault("format", 1), CHECKPOINT_FORMAT, path, "checkpoint", CheckpointError,
                 label="checkpoint 'format'", use="use")
    return ckpt


def ckpt_like(ckpt: Any) -> bool:
    return isinstance(ckpt, dict) and all(k in ckpt for k in MODEL_KEYS)


# Config sections that must match for a checkpoint to load into a model.
ARCHITECTURE_KEYS = ("model", "prior", "strategies")


def check_compatible(saved: dict[str, Any], current: RunConfig, path: Path) -> None:
    """The architecture of a checkpoint's (or run folder's) saved config matches ``current``'s."""
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: the checkpoint's 'config' entry is not a table (got {type(saved).__name__})")
    saved, current = normalized(saved), resolve_config(current).to_dict()
    for section in ARCHITECTURE_KEYS:
        a, b = saved.get(section), current.get(section)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    raise CheckpointError(
                        f"{path}: checkpoint from an incompatible config: {section}.{key} is "
                        f"{a.get(key)!r} in the checkpoint but {b.get(key)!r} in the config"
                    )
        raise CheckpointError(f"{path}: checkpoint from an incompatible config: '{section}' differs")


def load_model_state(model: torch.nn.Module, state: dict[str, Any], path: Path) -> None:
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: checkpoint's 'model' entry is not a table of weights "
                              f"(got {type(state).__name__})")
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise CheckpointError(f"{path}: checkpoint does not fit the model: {detail}") from None
