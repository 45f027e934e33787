"""Splits read through the ``datasets`` library: local CSV/JSON tables and hub datasets.

Both give a text column (and optionally a label column; ``data.text_column``/``data.label_column``,
by default ``text`` and ``label``); each row is checked as strictly as a line of a ``.txt`` split,
and errors name the file (or dataset) and the row.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from .reader import RawSplit, read_text

HUB_PREFIX = "hf:"
VALID_SPLIT_NAMES = ("validation", "valid", "dev")


@contextmanager
def quiet_datasets() -> Iterator[Any]:
    """Import ``datasets`` without its progress bars and error logs: our errors say what went wrong."""
    import datasets
    from datasets.utils import logging as ds_logging

    verbosity, bars = ds_logging.get_verbosity(), ds_logging.is_progress_bar_enabled()
    ds_logging.set_verbosity(ds_logging.CRITICAL)
    ds_logging.disable_progress_bar()
    try:
        yield datasets
    finally:
        ds_logging.set_verbosity(verbosity)
        if bars:
            ds_logging.enable_progress_bar()


@dataclass(frozen=True)
class Columns:
    text: str = "text"
    label: str = "label"


def read_table(path: Path, limit: int | None = None, cache_dir: Path | None = None,
               columns: Columns = Columns()) -> RawSplit:
    """A ``.csv`` (with a header row) or ``.json``/``.jsonl`` split with a text and optional label column."""
    text = read_text(path)  # missing, empty and non-UTF-8 files get the same line-naming errors as .txt
    with quiet_datasets() as datasets:
        kwargs: dict[str, Any] = {}
        if path.suffix == ".csv":
            header_line, _, rows = text.lstrip("\ufeff").partition("\n")
            if not rows.strip():
                raise DataError(f"{path}: no examples after the header row")
            # Every column as a string, and empty cells as "", so "123" stays text and a blank label is caught.
            header = next(csv.reader([header_line]))
            kwargs = {"features": datasets.Features({c: datasets.Value("string") for c in header}),
                      "keep_default_na": False}
        builder = "csv" if path.suffix == ".csv" else "json"
        try:
            table = datasets.load_dataset(builder, data_files=str(path), split="train",
                                          cache_dir=str(cache_dir) if cache_dir else None, **kwargs)
        except (datasets.exceptions.DatasetsError, ValueError, OSError) as e:
            cause = e.__cause__ or e
            raise DataError(f"{path}: cannot be read as {builder.upper()}: {first_line(cause)}") from None
        if limit is not None:
            table = table.select(range(min(limit, len(table))))
        return table_split(table.to_dict(), str(path), columns)


def load_hub_splits(spec: str, cache_dir: Path | None = None, columns: Columns = Columns(),
                    split_names: dict[str, str | None] | None = None) -> dict[str, RawSplit]:
    """``datasets.load_dataset(NAME)`` for ``data.corpus = "hf:NAME"`` (or ``"hf:NAME:CONFIG"``).

    NAME is a hub dataset id or a local dataset folder (``save_to_disk``'s, or data files).
    ``split_names`` maps train/valid/test to the dataset's split names; by default its ``train``,
    ``validation`` (or ``valid``/``dev``) and ``test`` splits.
    """
    name, _, config_name = spec.partition(":")
    where = f"{HUB_PREFIX}{spec}"
    with quiet_datasets() as datasets:
        try:
            if not config_name and (Path(name) / "dataset_dict.json").is_file():
                loaded = datasets.load_from_disk(name)  # a DatasetDict saved with save_to_disk
            else:
                loaded = datasets.load_dataset(name, config_name or None,
                                               cache_dir=str(cache_dir) if cache_dir else None)
        except (datasets.exceptions.DatasetsError, ValueError, OSError, RuntimeError) as e:  # RuntimeError: a script
            raise DataError(f"data.corpus '{where}': cannot load the dataset: {first_line(e)}") from None
        available = list(loaded)
        names = {"train": "train", "valid": None, "test": "test", **(split_names or {})}
        if names["valid"] is None:
            names["valid"] = next((s for s in VALID_SPLIT_NAMES if s in available), "validation")
        splits = {}
        for split, source in names.items():
            if source not in available:
                raise DataError(f"data.corpus '{where}': no '{source}' split for {split} (it has "
                                f"{', '.join(available)}; set data.{split}_split)")
            splits[split] = table_split(loaded[source].to_dict(), f"{where}[{source}]", columns)
        return splits


def table_split(table: dict[str, list], where: str, columns: Columns = Columns()) -> RawSplit:
    """Check a text/label table row by row (``where`` names it in errors; rows count from 1)."""
    if columns.text not in table:
        raise DataError(f"{where}: no '{columns.text}' column (columns: {', '.join(table) or 'none'}; "
                        "set data.text_column)")
    labels = table.get(columns.label)
    if not table[columns.text]:
        raise DataError(f"{where}: no examples")
    texts = []
    for row, text in enumerate(table[columns.text], start=1):
        if not isinstance(text, str):
            raise DataError(f"{where}: row {row}: '{columns.text}' is {type(text).__name__}, not a string")
        if not text.split():
            raise DataError(f"{where}: row {row}: empty example")
        texts.append(" ".join(text.split()))  # a cell may span lines; an example is one line of words
        if labels is not None and (labels[row - 1] is None or not str(labels[row - 1]).strip()):
            raise DataError(f"{where}: row {row}: labeled table, but this row has no label")
    return RawSplit(texts, None if labels is None else [str(label).strip() for label in labels])


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
