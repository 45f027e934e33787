"""Train a SentencePiece model on the training split (``data.tokenizer = "sentencepiece"``)."""

from __future__ import annotations

import io
import logging

import sentencepiece as spm

from ..errors import ConfigError
from .vocab import SPECIALS, Vocab

log = logging.getLogger(__name__)

SEED = 783435
"""SentencePiece samples training sentences; a fixed seed makes the same corpus give the same model."""


def train_sentencepiece(texts: list[str], vocab_size: int) -> Vocab:
    """A unigram model whose ids match :class:`Vocab`'s specials, so the rest of the code is unchanged.

    ``vocab_size`` is an upper bound: a small corpus yields fewer pieces instead of failing, with a
    warning that says how many.
    """
    model = io.BytesIO()
    spm.set_random_generator_seed(SEED)
    pad, bos, eos, unk = SPECIALS
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, vocab_size=vocab_size, model_type="unigram",
            pad_id=0, bos_id=1, eos_id=2, unk_id=3, pad_piece=pad, bos_piece=bos, eos_piece=eos, unk_piece=unk,
            character_coverage=1.0, hard_vocab_limit=False, num_threads=1, minloglevel=2,
        )
    except RuntimeError as e:  # e.g. fewer pieces than the train split has characters
        reason = str(e).split("] ", 1)[-1].splitlines()[0]
        raise ConfigError(f"data.sp_vocab_size = {vocab_size}: sentencepiece training failed: {reason}") from None
    vocab = Vocab.from_sentencepiece(model.getvalue())
    if len(vocab) < vocab_size:
        log.warning(f"data.sp_vocab_size = {vocab_size}: the training split yields only {len(vocab)} "
                    f"sentencepiece pieces; the vocabulary has {len(vocab)}")
    return vocab
