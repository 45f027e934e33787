"""File helpers shared by the cache, ``prepare`` and ``download``."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path


def file_digest(path: Path) -> str:
    """sha256 of a file, read in chunks (corpora can be larger than memory allows to copy twice)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def temp_dir(parent: Path, prefix: str) -> Path:
    """A new hidden folder in ``parent``, to assemble something renamed into place when complete.

    Unlike ``tempfile.mkdtemp`` (mode 0700) it gets the umask's permissions, so a data root shared
    by several users stays readable once the folder is renamed.
    """
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / f".{prefix}.{uuid.uuid4().hex[:12]}.tmp"
    path.mkdir()
    return path
