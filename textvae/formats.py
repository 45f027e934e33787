"""File-format versions: every versioned file textvae writes (run config, results, latents,
checkpoints) carries a ``format`` integer, and every reader checks it the same way, so that a file
written by a newer textvae is refused by name instead of misread."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def check_format(version: Any, newest: int, path: Path, kind: str, error: type[Exception],
                 label: str = "'format'", use: str = "read") -> int:
    """A file's ``format`` entry: a positive integer no newer than ``newest``, else ``error`` naming ``path``."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise error(f"{path}: {label} must be a positive integer, got {version!r}")
    if version > newest:
        raise error(f"{path}: written by a newer textvae ({kind} format {version}; this textvae "
                    f"reads formats up to {newest}): upgrade textvae to {use} it")
    return version
