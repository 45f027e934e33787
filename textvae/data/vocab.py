"""Vocabulary with He et al.'s conventions: <pad>=0, <s>=1, </s>=2, <unk>=3.

Two tokenizers share this class: whitespace-separated words (the benchmark corpora), or a
SentencePiece model whose pieces are the vocabulary (ids identical to the model's own). A
sentencepiece vocabulary is saved as ``vocab.txt`` plus ``tokenizer.model`` beside it, and
:meth:`Vocab.load` picks that file up, so a run folder can re-tokenize raw text at inference.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm

from ..errors import DataError
from .reader import read_text, split_lines

SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
TOKENIZER_FILE = "tokenizer.model"


class Vocab:
    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __init__(self, itos: list[str], sp_model: bytes | None = None):
        if list(itos[:4]) != list(SPECIALS):
            raise DataError(f"vocabulary must start with {' '.join(SPECIALS)}, got {' '.join(itos[:4])}")
        self.itos = list(itos)
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise DataError("vocabulary has duplicate entries")
        self.sp_model = sp_model
        """Serialized SentencePiece model, or None for a word vocabulary."""
        self.lowercase = False
        """Lower-case text before tokenizing (``data.lowercase``; set from the run's config, which
        records it, rather than stored in vocab.txt)."""
        self._sp = None
        if sp_model is not None:
            self._sp = spm.SentencePieceProcessor(model_proto=sp_model)
            if sentencepiece_pieces(self._sp) != self.itos:
                raise DataError("vocabulary does not match the pieces of its sentencepiece model")

    @property
    def tokenizer(self) -> str:
        return "word" if self._sp is None else "sentencepiece"

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos and self.sp_model == other.sp_model

    def __getstate__(self) -> dict:
        return {"itos": self.itos, "sp_model": self.sp_model, "lowercase": self.lowercase}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["itos"], state["sp_model"])
        self.lowercase = state.get("lowercase", False)

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
    def from_sentencepiece(cls, sp_model: bytes) -> "Vocab":
        return cls(sentencepiece_pieces(spm.SentencePieceProcessor(model_proto=sp_model)), sp_model)

    @classmethod
    def load(cls, path: str | Path) -> "Vocab":
        """One token per line, line index = id (DU/LI ``vocab.txt``); the specials are put first if absent.

        With a ``tokenizer.model`` beside the file the vocabulary is that sentencepiece model's,
        and the file must list exactly its pieces.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: vocabulary file not found")
        lines = split_lines(read_text(path))
        tokens, first_line = [], {}
        for lineno, line in enumerate(lines, start=1):
            token = line.split("\t")[0]
            if not token.strip():
                raise DataError(f"{path}:{lineno}: blank vocabulary entry "
                                "(line index = id, so every line needs a token)")
            if token in first_line:
                raise DataError(f"{path}:{lineno}: duplicate vocabulary entry {token!r} "
                                f"(first on line {first_line[token]})")
            first_line[token] = lineno
            tokens.append(token)
        model = path.with_name(TOKENIZER_FILE)
        if model.is_file():
            vocab = cls.from_sentencepiece(model.read_bytes())
            if tokens != vocab.itos:
                raise DataError(f"{path}: does not list the pieces of {model.name} beside it")
            return vocab
        if "<unk>" not in tokens:
            raise DataError(f"{path}: vocabulary file has no '<unk>' entry")
        if tokens[:4] != list(SPECIALS):
            tokens = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        return cls(tokens)

    def save(self, path: str | Path) -> None:
        """Write ``vocab.txt``; a sentencepiece vocabulary also writes ``tokenizer.model`` beside it."""
        path = Path(path)
        path.write_text("\n".join(self.itos) + "\n", encoding="utf-8")
        if self.sp_model is not None:
            path.with_name(TOKENIZER_FILE).write_bytes(self.sp_model)

    def tokenize(self, text: str) -> list[str]:
        """Whitespace-separated words, or sentencepiece pieces."""
        if self.lowercase:
            text = text.lower()
        if self._sp is None:
            return text.split()
        return self._sp.encode(text, out_type=str)

    def encode_words(self, words: list[str]) -> list[int]:
        """``<s> w1 .. wT </s>`` as ids for already tokenized words or pieces; unknown ones map to <unk>."""
        unk = self.unk_id
        return [self.bos_id] + [self.stoi.get(w, unk) for w in words] + [self.eos_id]

    def encode(self, text: str) -> list[int]:
        return self.encode_words(self.tokenize(text))

    def decode(self, ids: Iterable[int]) -> str:
        """Ids to text, dropping <s>/<pad> and stopping at </s>."""
        kept = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i in (self.bos_id, self.pad_id):
                continue
            kept.append(i)
        if self._sp is not None:
            return self._sp.decode(kept)
        return " ".join(self.itos[i] for i in kept)


def sentencepiece_pieces(sp: spm.SentencePieceProcessor) -> list[str]:
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
