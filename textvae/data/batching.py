"""Batches: identical-length buckets (the reference code's, no padding) or padded with masking."""

from __future__ import annotations

import random
from collections import defaultdict

import torch

from ..errors import DataError
from ..types import Batch
from .corpus import Split
from .introsort import argsort_order


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


SPLITS = ("reshuffle", "fixed", "by-label")
BUCKET_ORDERS = ("random", "argsort")


def make_batches(split: Split, batch_size: int, mode: str = "bucket", shuffle: bool = False,
                 seed: int = 0, label_ids: dict[str, int] | None = None, split_mode: str = "reshuffle",
                 split_seed: int = 0, bucket_order: str = "random", order: list[int] | None = None) -> list[Batch]:
    """Cut a split into batches.

    ``bucket``: sort by length and cut each length into chunks of at most ``batch_size`` sentences,
    so no batch has padding (He et al.'s ``create_data_batch``); with ``shuffle`` the fixed buckets
    come in a seeded random order. In training, ``bucket_order`` says which sentences of one length
    share a bucket: ``random`` puts them in a random order (from ``split_seed``) before they are cut;
    ``argsort`` cuts them in the tie order of the published programs' unstable length sort
    (:mod:`.introsort`), the same for every seed. Cut in corpus order instead, a bucket of an
    unshuffled corpus such as PTB would hold neighbouring sentences of the same articles.
    ``padded``: sentences shuffled (when asked) then cut into batches of exactly ``batch_size`` (the
    last may be smaller), sorted by length inside each.

    With ``shuffle`` (training), ``split_mode`` says which sentences share a batch: ``reshuffle``
    as above; ``fixed``: a random split drawn once from ``split_seed``, the same every epoch;
    ``by-label``: each label's sentences shuffled once from ``split_seed`` and cut into batches of
    that label alone (with ``bucket``, of one label and one length). ``seed`` orders the batches,
    unless ``order`` gives the order: positions in the list of batches as cut (:mod:`.schedule`).
    """
    rng = random.Random(seed)
    groups, label_ids = _cut(split, batch_size, mode, shuffle, rng, label_ids, split_mode, split_seed, bucket_order)
    if order is not None:
        _require_fixed_batches(mode, split_mode, shuffle)
        if sorted(order) != list(range(len(groups))):
            raise DataError(f"the batch order lists {len(order)} batches; the training split is cut into {len(groups)}")
        groups = [groups[i] for i in order]
    elif shuffle and (mode == "bucket" or split_mode != "reshuffle"):
        rng.shuffle(groups)
    return [_to_batch(split, rows, label_ids) for rows in groups]


def cut_batches(split: Split, batch_size: int, mode: str = "bucket", label_ids: dict[str, int] | None = None,
                split_mode: str = "reshuffle", split_seed: int = 0, bucket_order: str = "random") -> list[Batch]:
    """The training batches of :func:`make_batches` in the order they are cut, before an epoch's shuffle:
    the list whose positions a batch order (``order``, :mod:`.schedule`) names."""
    _require_fixed_batches(mode, split_mode, True)
    groups, label_ids = _cut(split, batch_size, mode, True, random.Random(0), label_ids, split_mode, split_seed,
                             bucket_order)
    return [_to_batch(split, rows, label_ids) for rows in groups]


def _require_fixed_batches(mode: str, split_mode: str, shuffle: bool) -> None:
    if not shuffle or (mode == "padded" and split_mode == "reshuffle"):
        raise ValueError("a batch order needs training batches that are cut the same way every epoch")


def _cut(split: Split, batch_size: int, mode: str, shuffle: bool, rng: random.Random,
         label_ids: dict[str, int] | None, split_mode: str, split_seed: int, bucket_order: str
         ) -> tuple[list[list[int]], dict[str, int] | None]:
    """The row groups of the batches, in the order they are cut, and the label ids; ``rng`` shuffles the
    sentences of padded batches that are re-split every epoch."""
    if mode not in ("bucket", "padded"):
        raise ValueError(f"unknown batching mode {mode!r}")
    if split_mode not in SPLITS:
        raise ValueError(f"unknown batch split {split_mode!r}; choose one of {', '.join(SPLITS)}")
    if label_ids is None and split.labels is not None:
        label_ids = {label: i for i, label in enumerate(sorted(set(split.labels)))}
    if not shuffle:
        split_mode = "reshuffle"
    if split_mode == "by-label" and split.labels is None:
        raise DataError("data.batch_split = 'by-label' needs a labeled training split (label<TAB>text lines)")
    if bucket_order not in BUCKET_ORDERS:
        raise ValueError(f"unknown bucket order {bucket_order!r}; choose one of {', '.join(BUCKET_ORDERS)}")
    pools = _pools(split, split_mode, split_seed, scatter=shuffle and mode == "bucket", bucket_order=bucket_order)
    groups: list[list[int]] = []
    for pool in pools:
        if mode == "bucket":
            by_length: dict[int, list[int]] = defaultdict(list)
            for i in pool:
                by_length[len(split.ids[i])].append(i)
            for length in sorted(by_length):
                rows = by_length[length]
                groups.extend(rows[j : j + batch_size] for j in range(0, len(rows), batch_size))
        else:
            pooled = list(pool)
            if shuffle and split_mode == "reshuffle":
                rng.shuffle(pooled)
            for j in range(0, len(pooled), batch_size):
                groups.append(sorted(pooled[j : j + batch_size], key=lambda i: -len(split.ids[i])))
    return groups, label_ids


def _pools(split: Split, split_mode: str, split_seed: int, scatter: bool = False,
           bucket_order: str = "random") -> list[list[int]]:
    """Sentence indices to cut into batches, one list per pool, in the order they are cut; ``scatter``
    orders a reshuffled split once for the fixed buckets of training: drawn from ``split_seed``, or
    with ``bucket_order = "argsort"`` in the reference programs' length-sort order."""
    if scatter and split_mode == "reshuffle" and bucket_order == "argsort":
        return [argsort_order([len(ids) for ids in split.ids])]
    rows = list(range(len(split.ids)))
    fixed = random.Random(split_seed)
    if split_mode == "reshuffle":
        if scatter:
            fixed.shuffle(rows)
        return [rows]
    if split_mode == "fixed":
        fixed.shuffle(rows)
        return [rows]
    by_label: dict[str, list[int]] = defaultdict(list)
    for i in rows:
        by_label[split.labels[i]].append(i)
    pools = [by_label[label] for label in sorted(by_label)]
    for pool in pools:
        fixed.shuffle(pool)
    return pools
