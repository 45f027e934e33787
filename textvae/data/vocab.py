"""Word vocabulary with He et al.'s conventions: <pad>=0, <s>=1, </s>=2, <unk>=3."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..errors import DataError

SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")


class Vocab:
    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __init__(self, itos: list[str]):
        if list(itos[:4]) != list(SPECIALS):
            raise DataError(f"vocabulary must start with {' '.join(SPECIALS)}, got {' '.join(itos[:4])}")
        self.itos = list(itos)
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise DataError("vocabulary has duplicate entries")

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    @classmethod
    def build(cls, sentences: Iterable[list[str]]) -> "Vocab":
        """Words in order of first appearance in the training split, as the reference code does."""
        itos = list(SPECIALS)
        seen = set(itos)
        for words in sentences:
            for w in words:
                if w not in seen:
                    seen.add(w)
                    itos.append(w)
        return cls(itos)

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        """One token per line, line index = id (DU/LI ``vocab.txt``); the specials are put first if absent."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: vocabulary file not found")
        tokens = [line.rstrip("\n").split("\t")[0] for line in path.read_text(encoding="utf-8").splitlines()]
        tokens = [t for t in tokens if t]
        if "<unk>" not in tokens:
            raise DataError(f"{path}: vocabulary file has no '<unk>' entry")
        if tokens[:4] != list(SPECIALS):
            tokens = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        return cls(tokens)

    def save(self, path: str | Path) -> None:
        Path(path).write_text("\n".join(self.itos) + "\n", encoding="utf-8")

    def encode_words(self, words: list[str]) -> list[int]:
        """``<s> w1 .. wT </s>`` as ids; unknown words map to <unk>."""
        unk = self.unk_id
        return [self.bos_id] + [self.stoi.get(w, unk) for w in words] + [self.eos_id]

    def encode(self, text: str) -> list[int]:
        return self.encode_words(text.split())

    def decode(self, ids: Iterable[int]) -> str:
        """Ids to text, dropping <s>/<pad> and stopping at </s>."""
        words = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.bos_id, self.pad_id):
                continue
            words.append(self.itos[i])
        return " ".join(words)
