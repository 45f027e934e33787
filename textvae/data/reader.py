"""Strict reading of corpus files: one example per line, optionally ``label<TAB>text``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError


@dataclass
class RawSplit:
    texts: list[str]
    labels: list[str] | None


def read_lines(path: Path, labeled: bool | None = None, limit: int | None = None) -> RawSplit:
    """Read a split file; ``labeled=None`` detects ``label<TAB>text`` from the first line.

    Errors name the file and line: missing or empty file, a line that is not UTF-8, a labeled line
    without its label, an empty example.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: file is empty")
    texts: list[str] = []
    labels: list[str] = []
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for lineno, line in enumerate(lines, start=1):
        if limit is not None and len(texts) >= limit:
            break
        try:
            s = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}:{lineno}: line is not valid UTF-8 (byte {e.start})") from None
        if labeled is None:
            labeled = "\t" in s
        if labeled:
            label, sep, text = s.partition("\t")
            if not sep or not label.strip():
                raise DataError(f"{path}:{lineno}: labeled file, but this line has no 'label<TAB>text' label")
            labels.append(label.strip())
        else:
            text = s
        if not text.split():
            raise DataError(f"{path}:{lineno}: empty example")
        texts.append(text.strip())
    return RawSplit(texts, labels if labeled else None)
