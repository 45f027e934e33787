"""Corpora, vocabularies and batching."""

from .batching import cut_batches, make_batches
from .catalog import CATALOG, load_corpus, resolve_data_root
from .corpus import Corpus, Split, encode_texts
from .loading import load_corpus_dir
from .vocab import Vocab

__all__ = ["CATALOG", "Corpus", "Split", "Vocab", "cut_batches", "encode_texts", "load_corpus", "load_corpus_dir",
           "make_batches", "resolve_data_root"]
