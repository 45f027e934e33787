"""Batches: identical-length buckets (the reference code's, no padding) or padded with masking."""

from __future__ import annotations

import random
from collections import defaultdict

import torch

from ..types import Batch
from .corpus import Split


def _to_batch(split: Split, rows: list[int], label_ids: dict[str, int] | None) -> Batch:
    seqs = [split.ids[i] for i in rows]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    tokens = torch.zeros(len(seqs), int(lengths.max()), dtype=torch.long)
    for r, s in enumerate(seqs):
        tokens[r, : len(s)] = torch.tensor(s, dtype=torch.long)
    labels = None
    if split.labels is not None and label_ids is not None:
        labels = torch.tensor([label_ids[split.labels[i]] for i in rows], dtype=torch.long)
    return Batch(tokens, lengths, labels, torch.tensor(rows, dtype=torch.long))


def make_batches(split: Split, batch_size: int, mode: str = "bucket", shuffle: bool = False,
                 seed: int = 0, label_ids: dict[str, int] | None = None) -> list[Batch]:
    """Cut a split into batches.

    ``bucket``: sort by length and cut each length into chunks of at most ``batch_size`` sentences,
    so no batch has padding (He et al.'s ``create_data_batch``); with ``shuffle`` the fixed buckets
    come in a seeded random order. ``padded``: sentences shuffled (when asked) then cut into
    batches of exactly ``batch_size`` (the last may be smaller), sorted by length inside each.
    """
    if mode not in ("bucket", "padded"):
        raise ValueError(f"unknown batching mode {mode!r}")
    if label_ids is None and split.labels is not None:
        label_ids = {label: i for i, label in enumerate(sorted(set(split.labels)))}
    rng = random.Random(seed)
    groups: list[list[int]] = []
    if mode == "bucket":
        by_length: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(split.ids):
            by_length[len(s)].append(i)
        for length in sorted(by_length):
            rows = by_length[length]
            groups.extend(rows[j : j + batch_size] for j in range(0, len(rows), batch_size))
    else:
        order = list(range(len(split.ids)))
        if shuffle:
            rng.shuffle(order)
        for j in range(0, len(order), batch_size):
            groups.append(sorted(order[j : j + batch_size], key=lambda i: -len(split.ids[i])))
    if shuffle and mode == "bucket":
        rng.shuffle(groups)
    return [_to_batch(split, rows, label_ids) for rows in groups]
