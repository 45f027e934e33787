"""A corpus: a vocabulary and the encoded train/valid/test splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .reader import SPLIT_SUFFIXES
from .vocab import Vocab

SPLITS = ("train", "valid", "test")


@dataclass
class Split:
    texts: list[str]
    ids: list[list[int]]
    labels: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def n_targets(self) -> int:
        return sum(len(s) - 1 for s in self.ids)

    def head(self, n: int | None) -> "Split":
        """The first ``n`` examples (all of them when ``n`` is None)."""
        if n is None:
            return self
        return Split(self.texts[:n], self.ids[:n], None if self.labels is None else self.labels[:n])


@dataclass
class Corpus:
    name: str
    root: Path
    """The corpus directory (for a hub corpus, the dataset's name)."""
    vocab: Vocab
    splits: dict[str, Split]

    @property
    def label_set(self) -> list[str] | None:
        labels = self.splits["train"].labels
        return None if labels is None else sorted(set(labels))


def find_split_file(root: Path, split: str) -> Path:
    """``{split}.EXT`` or ``<prefix>.{split}.EXT`` (the published Yahoo/Yelp/short-Yelp names).

    EXT is ``txt`` (one example per line) or a ``csv``/``jsonl``/``json`` table.
    """
    for pattern in (f"{split}{{}}", f"*.{split}{{}}"):
        matches = sorted(m for suffix in SPLIT_SUFFIXES for m in root.glob(pattern.format(suffix)))
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise DataError(f"{root}: several files could be the {split} split: {', '.join(m.name for m in matches)}")
    raise DataError(f"{root}: no {split} split (expected {split}.txt or <name>.{split}.txt; .csv/.jsonl also work)")


def encode_texts(vocab: Vocab, texts: list[str], labels: list[str] | None = None,
                 max_length: int | None = None) -> Split:
    """Encode texts with the vocabulary's tokenizer; ``max_length`` keeps the first N words (or pieces)."""
    ids = []
    for text in texts:
        tokens = vocab.tokenize(text)
        if max_length is not None:
            tokens = tokens[:max_length]
        ids.append(vocab.encode_words(tokens))
    return Split(list(texts), ids, labels)
