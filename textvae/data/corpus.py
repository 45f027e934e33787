"""A corpus: a directory of train/valid/test files, a vocabulary, and the encoded splits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import DataConfig
from ..errors import DataError
from .reader import read_lines
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


@dataclass
class Corpus:
    name: str
    root: Path
    vocab: Vocab
    splits: dict[str, Split]

    @property
    def label_set(self) -> list[str] | None:
        labels = self.splits["train"].labels
        return None if labels is None else sorted(set(labels))


def find_split_file(root: Path, split: str) -> Path:
    """``{split}.txt`` or ``<prefix>.{split}.txt`` (the published Yahoo/Yelp/short-Yelp names)."""
    exact = root / f"{split}.txt"
    if exact.is_file():
        return exact
    matches = sorted(root.glob(f"*.{split}.txt"))
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise DataError(f"{root}: several files could be the {split} split: {', '.join(m.name for m in matches)}")
    raise DataError(f"{root}: no {split} split (expected {split}.txt or <name>.{split}.txt)")


def encode_texts(vocab: Vocab, texts: list[str], labels: list[str] | None = None,
                 max_length: int | None = None) -> Split:
    """Encode whitespace-tokenised texts; ``max_length`` keeps the first N words of longer ones."""
    ids = []
    for text in texts:
        words = text.split()
        if max_length is not None:
            words = words[:max_length]
        ids.append(vocab.encode_words(words))
    return Split(list(texts), ids, labels)


def load_corpus_dir(root: Path, config: DataConfig, name: str | None = None,
                    vocab_file: Path | None = None) -> Corpus:
    """Read and encode a corpus directory; the vocabulary comes from ``vocab_file`` or the train split."""
    if not root.is_dir():
        raise DataError(f"{root}: corpus directory not found")
    raw = {}
    for split in SPLITS:
        limit = config.train_limit if split == "train" else None
        raw[split] = read_lines(find_split_file(root, split), limit=limit)
    if config.vocab_file is not None:
        vocab_file = Path(config.vocab_file)
    if vocab_file is not None:
        vocab = Vocab.load(vocab_file)
    else:
        vocab = Vocab.build(t.split() for t in raw["train"].texts)
    splits = {s: encode_texts(vocab, r.texts, r.labels, config.max_length) for s, r in raw.items()}
    return Corpus(name or root.name, root, vocab, splits)
