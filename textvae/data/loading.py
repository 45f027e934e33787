"""Read, tokenize and encode a corpus (a directory of split files, or a hub dataset), through the cache."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..config import DataConfig
from ..errors import DataError
from .cache import cache_key, cached
from .corpus import SPLITS, Corpus, Split, encode_texts, find_split_file
from .files import file_digest
from .reader import RawSplit
from .splits import read_split
from .subword import train_sentencepiece
from .tables import HUB_PREFIX, Columns, load_hub_splits
from .vocab import TOKENIZER_FILE, Vocab


def load_corpus_dir(root: Path, config: DataConfig, name: str | None = None,
                    vocab_file: Path | None = None, cache_dir: Path | None = None) -> Corpus:
    """Read and encode a corpus directory; the vocabulary comes from ``vocab_file`` or the train split.

    ``config.vocab_file`` overrides ``vocab_file``. With ``cache_dir`` the encoded corpus is cached
    there (see :mod:`textvae.data.cache`).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: corpus directory not found")
    name = name or root.name
    files = {split: find_split_file(root, split) for split in SPLITS}
    vocab_file = configured_vocab(config) or vocab_file
    sources = {split: [path.suffix, file_digest(path)] for split, path in files.items()}
    sources["vocab"] = vocab_digest(vocab_file)
    tables = cache_dir / "datasets" if cache_dir is not None else None

    def build() -> tuple[Vocab, dict[str, Split]]:
        raw = {split: read_split(path, config.train_limit if split == "train" else None, tables, columns(config))
               for split, path in files.items()}
        check_labels(raw, files)
        return encode_corpus(raw, config, vocab_file)

    vocab, splits = cached(entry(cache_dir, name, config, sources), build)
    vocab.lowercase = config.lowercase
    return Corpus(name, root, vocab, splits)


def load_hub_corpus(spec: str, config: DataConfig, cache_dir: Path | None = None) -> Corpus:
    """``data.corpus = "hf:NAME[:CONFIG]"``: a ``datasets`` hub dataset (or local dataset folder/script)."""
    tables = cache_dir / "datasets" if cache_dir is not None else None
    raw = load_hub_splits(spec, tables, columns(config), {"train": config.train_split,
                                                          "valid": config.valid_split, "test": config.test_split})
    if config.train_limit is not None:
        train = raw["train"]
        raw["train"] = RawSplit(train.texts[: config.train_limit],
                                None if train.labels is None else train.labels[: config.train_limit])
    check_labels(raw, {split: f"{HUB_PREFIX}{spec}[{split}]" for split in raw})
    vocab_file = configured_vocab(config)
    sources = {split: raw_digest(r) for split, r in raw.items()}
    sources["vocab"] = vocab_digest(vocab_file)
    name = HUB_PREFIX + spec
    vocab, splits = cached(entry(cache_dir, name, config, sources), lambda: encode_corpus(raw, config, vocab_file))
    vocab.lowercase = config.lowercase
    return Corpus(name, Path(spec), vocab, splits)


def configured_vocab(config: DataConfig) -> Path | None:
    """``data.vocab_file``, which must exist: a warm cache would otherwise hide a wrong path."""
    if config.vocab_file is None:
        return None
    path = Path(config.vocab_file).expanduser()
    if not path.is_file():
        raise DataError(f"data.vocab_file: {path}: file not found")
    return path


def columns(config: DataConfig) -> Columns:
    return Columns(config.text_column, config.label_column)


def encode_corpus(raw: dict[str, RawSplit], config: DataConfig,
                  vocab_file: Path | None) -> tuple[Vocab, dict[str, Split]]:
    vocab = build_vocab(raw["train"].texts, config, vocab_file)
    vocab.lowercase = config.lowercase
    return vocab, {s: encode_texts(vocab, r.texts, r.labels, config.max_length) for s, r in raw.items()}


def build_vocab(train_texts: list[str], config: DataConfig, vocab_file: Path | None) -> Vocab:
    """Word vocabulary from ``vocab_file`` or train; sentencepiece trained on train, or reused from
    ``vocab_file`` when a ``tokenizer.model`` sits beside it (a run folder's ``vocab.txt``)."""
    if vocab_file is not None:
        return load_vocab_file(vocab_file, config)
    if config.lowercase:
        train_texts = [t.lower() for t in train_texts]
    if config.tokenizer == "sentencepiece":
        return train_sentencepiece(train_texts, config.sp_vocab_size)
    return Vocab.build(t.split() for t in train_texts)


def load_vocab_file(vocab_file: Path, config: DataConfig) -> Vocab:
    """A vocabulary file, checked against ``data.tokenizer`` (a sweep checks it before any run starts)."""
    vocab = Vocab.load(vocab_file)
    if vocab.tokenizer != config.tokenizer:
        raise DataError(f"{vocab_file}: a {vocab.tokenizer} vocabulary, but data.tokenizer is "
                        f"'{config.tokenizer}'" + (f" (no {TOKENIZER_FILE} beside it)"
                                                   if config.tokenizer == "sentencepiece" else ""))
    return vocab


def check_labels(raw: dict[str, RawSplit], where: dict) -> None:
    """All splits labeled, or none: a classifier or probe needs labels on every split it reads."""
    train_labeled = raw["train"].labels is not None
    for split, r in raw.items():
        if (r.labels is not None) != train_labeled:
            mine, train = ("labeled", "unlabeled") if r.labels is not None else ("unlabeled", "labeled")
            raise DataError(f"{where[split]}: {mine}, but the train split {where['train']} is {train}")


def entry(cache_dir: Path | None, name: str, config: DataConfig, sources: dict) -> Path | None:
    if cache_dir is None:
        return None
    readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(name).name)
    return cache_dir / f"{readable}-{cache_key(config, sources)}"


def vocab_digest(vocab_file: Path | None) -> list[str] | None:
    if vocab_file is None or not vocab_file.is_file():
        return None
    model = vocab_file.with_name(TOKENIZER_FILE)
    return [file_digest(vocab_file)] + ([file_digest(model)] if model.is_file() else [])


def raw_digest(raw: RawSplit) -> str:
    return hashlib.sha256(json.dumps([raw.texts, raw.labels]).encode()).hexdigest()
