"""One split file of any supported format, read by the reader its suffix calls for."""

from __future__ import annotations

from pathlib import Path

from .reader import TABLE_SUFFIXES, RawSplit, read_lines
from .tables import Columns, read_table


def read_split(path: Path, limit: int | None = None, cache_dir: Path | None = None,
               columns: Columns = Columns()) -> RawSplit:
    """A ``.txt`` split file, or a CSV/JSON table (``cache_dir``: where ``datasets`` keeps its copy)."""
    if path.suffix in TABLE_SUFFIXES:
        return read_table(path, limit, cache_dir, columns)
    return read_lines(path, limit=limit)
