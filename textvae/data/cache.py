"""Encoded corpora cached as ``datasets`` folders, so a second load skips reading and tokenizing.

An entry is ``<data root>/cache/<name>-<key>/`` holding ``splits/`` (a ``DatasetDict`` saved with
``save_to_disk``: columns ``text``, ``ids`` and ``label`` when labeled), ``vocab.txt`` and, for
sentencepiece, the trained ``tokenizer.model``. The key hashes the split files' contents, the
vocabulary file and every setting that changes the encoding, so any change makes a new entry.
Entries are written to a temporary folder and renamed into place: concurrent loads never see a
half-written entry. A cache folder that cannot be written is skipped silently (e.g. a read-only data root).
A damaged entry is deleted and rebuilt only when it holds nothing but an entry's files; a folder
holding anything else under that name is left alone (the corpus is then built in memory).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import DataConfig
from ..errors import DataError
from .corpus import Split
from .files import temp_dir
from .tables import quiet_datasets
from .vocab import Vocab

FORMAT = 1
"""Bump when the cached layout or the encoding code changes, to invalidate old entries."""

CACHE_DIR = "cache"
ENTRY_FILES = ("splits", "vocab.txt", "tokenizer.model")
"""What :func:`store` writes into an entry (``splits/`` is ``datasets``' own folder)."""


def cache_key(config: DataConfig, sources: dict[str, Any]) -> str:
    """``sources`` identifies the raw data (file digests, or a digest of loaded texts)."""
    settings = {
        "format": FORMAT,
        "tokenizer": config.tokenizer,
        "sp_vocab_size": config.sp_vocab_size if config.tokenizer == "sentencepiece" else None,
        "max_length": config.max_length,
        "train_limit": config.train_limit,
        "lowercase": config.lowercase,
        "columns": [config.text_column, config.label_column],
        "hub_splits": [config.train_split, config.valid_split, config.test_split],
        "sources": sources,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]


def cached(entry: Path | None, build: Callable[[], tuple[Vocab, dict[str, Split]]]) -> tuple[Vocab, dict[str, Split]]:
    """The (vocab, splits) stored in ``entry``, else ``build()``'s, stored there for next time."""
    if entry is not None and (entry / "vocab.txt").is_file():
        try:
            return load_entry(entry)
        except (OSError, ValueError, KeyError, DataError):
            # Damaged, or written by an incompatible version: rebuilt, if it is only an entry.
            if not is_entry(entry):
                entry = None
            else:
                shutil.rmtree(entry, ignore_errors=True)
    vocab, splits = build()
    if entry is not None:
        store(entry, vocab, splits)
    return vocab, splits


def is_entry(entry: Path) -> bool:
    """``entry`` is a cache entry's folder and holds nothing else (no link, no user's file)."""
    if entry.is_symlink() or not entry.is_dir():
        return False
    return all(p.name in ENTRY_FILES and not p.is_symlink() for p in entry.iterdir())


def load_entry(entry: Path) -> tuple[Vocab, dict[str, Split]]:
    with quiet_datasets() as datasets:
        stored = datasets.load_from_disk(str(entry / "splits"))
        splits = {}
        for name, table in stored.items():
            columns = table.to_dict()
            splits[name] = Split(columns["text"], columns["ids"], columns.get("label"))
    return Vocab.load(entry / "vocab.txt"), splits


def store(entry: Path, vocab: Vocab, splits: dict[str, Split]) -> None:
    try:
        tmp = temp_dir(entry.parent, entry.name)
    except OSError:
        return
    try:
        with quiet_datasets() as datasets:
            tables = {}
            for name, split in splits.items():
                columns = {"text": split.texts, "ids": split.ids}
                features = {"text": datasets.Value("string"), "ids": datasets.Sequence(datasets.Value("int32"))}
                if split.labels is not None:
                    columns["label"] = split.labels
                    features["label"] = datasets.Value("string")
                tables[name] = datasets.Dataset.from_dict(columns, features=datasets.Features(features))
            datasets.DatasetDict(tables).save_to_disk(str(tmp / "splits"))
        vocab.save(tmp / "vocab.txt")
        os.rename(tmp, entry)
    except OSError:
        pass  # another process stored the same entry first, or the disk is full: the data is in memory
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
