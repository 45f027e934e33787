"""Strict reading of ``.txt`` corpus files: one example per line, optionally ``label<TAB>text``.

CSV and JSON(-lines) tables are read through ``datasets`` by :mod:`textvae.data.tables`, which
builds on this module; :func:`textvae.data.splits.read_split` picks the reader by suffix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

TABLE_SUFFIXES = (".csv", ".jsonl", ".json")
SPLIT_SUFFIXES = (".txt",) + TABLE_SUFFIXES


@dataclass
class RawSplit:
    texts: list[str]
    labels: list[str] | None


def read_text(path: Path) -> str:
    """The file's text without a UTF-8 byte-order mark; a missing or empty file, or bytes that are not
    UTF-8, are errors naming the line."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: file is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = raw.rfind(b"\n", 0, e.start) + 1
        lineno = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}:{lineno}: line is not valid UTF-8 (byte {e.start - line_start})") from None
    return text[1:] if text.startswith("\ufeff") else text  # editors on Windows write one


def split_lines(text: str) -> list[str]:
    """The lines of ``text`` as every textvae reader counts them: a line ends at ``\\n`` only, a
    ``\\r`` before it (Windows line ends) is dropped, and a final ``\\n`` ends the last line rather
    than starting an empty one. Unlike ``str.splitlines``, U+2028, U+2029, U+0085, form feeds and a
    lone ``\\r`` are characters inside a line, so one line of a file is one example everywhere."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_lines(path: Path, labeled: bool | None = None, limit: int | None = None) -> RawSplit:
    """Read a split file; ``labeled=None`` detects ``label<TAB>text`` from the first line.

    Errors name the file and line: missing or empty file, a line that is not UTF-8, a labeled line
    without its label, an empty example.
    """
    lines = split_lines(read_text(path))
    texts: list[str] = []
    labels: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        if limit is not None and len(texts) >= limit:
            break
        if labeled is None:
            labeled = "\t" in line
        if labeled:
            label, sep, text = line.partition("\t")
            if not sep or not label.strip():
                raise DataError(f"{path}:{lineno}: labeled file, but this line has no 'label<TAB>text' label")
            labels.append(label.strip())
        else:
            text = line
        if not text.split():
            raise DataError(f"{path}:{lineno}: empty example")
        texts.append(text.strip())
    return RawSplit(texts, labels if labeled else None)
