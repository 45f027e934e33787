"""Registered corpora and where their files live.

The data root is ``--data-dir``, else ``$TEXTVAE_DATA``, else ``~/.cache/textvae`` (or
``$XDG_CACHE_HOME/textvae``). ``demo`` ships inside the repository under ``data/demo``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import DataConfig
from ..errors import DataError, suggest
from .corpus import Corpus, load_corpus_dir

REPO_DATA = Path(__file__).resolve().parents[2] / "data"


@dataclass(frozen=True)
class CorpusInfo:
    name: str
    description: str
    obtain: str
    """How a user gets the files (printed when the corpus is missing)."""
    vocab_file: str | None = None
    sha256: dict[str, str] = field(default_factory=dict)
    """Published sha256 of files, keyed by file name, verified by ``textvae data prepare``."""
    embedded: bool = False


CATALOG: dict[str, CorpusInfo] = {
    info.name: info
    for info in [
        CorpusInfo(
            "demo",
            "Embedded default: 10k labeled short-Yelp sentences (train), 1k valid, 1k test",
            "ships with textvae under data/demo",
            embedded=True,
        ),
        CorpusInfo(
            "ptb",
            "Penn Treebank, Mikolov LM version (42k/3.4k/3.8k sentences, 10k vocab)",
            "textvae data prepare ptb --from DIR  (DIR holds train.txt valid.txt test.txt or ptb.*.txt)",
            sha256={
                "train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
                "valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
                "test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
            },
        ),
        CorpusInfo(
            "yahoo",
            "Yahoo Answers (Yang et al. 2017 / He et al. 2019): 100k/10k/10k documents, 20k vocab",
            "textvae data download yahoo, or textvae data prepare yahoo --from DIR "
            "(DIR holds yahoo.train.txt yahoo.valid.txt yahoo.test.txt)",
            sha256={
                "valid.txt": "3247ac3ffcc4d4bfd6216f2aaa617f6706cdc4081874da39245fe156825898d1",
                "test.txt": "ad843c4363adbdd07d8055d9bf121e5f23c285760df43a0031b89d8538293075",
            },
        ),
        CorpusInfo(
            "yelp",
            "Yelp reviews (Yang et al. 2017 / He et al. 2019): 100k/10k/10k, 20k vocab, labeled",
            "textvae data download yelp, or textvae data prepare yelp --from DIR "
            "(DIR holds yelp.train.txt yelp.valid.txt yelp.test.txt)",
        ),
        CorpusInfo(
            "short-yelp",
            "Short Yelp sentiment (Li et al. 2019): 100k/10k/10k labeled sentences, vocab 8,411",
            "textvae data prepare short-yelp --from DIR "
            "(DIR holds short_yelp.{train,valid,test}.txt or train/valid/test.txt, and vocab.txt)",
            vocab_file="vocab.txt",
            sha256={
                "valid.txt": "34240114bd7b8b8b016c2ea033aaf7efefbc4e5be5aa7c53f95e03260c631521",
                "test.txt": "56dc9c763128e315b167870ba6714c0f528b335855b7cc469ab3018457daddeb",
                "vocab.txt": "552cad81f06191dd85b10f820e8ff142846b5d594e591cf709edba7a88c7bcac",
            },
        ),
        CorpusInfo(
            "synthetic",
            "He et al. synthetic sequences (early release: 10k x 10 tokens, vocab 1000)",
            "textvae data prepare synthetic --from DIR  (DIR holds synthetic_data.txt, split 8k/1k/1k)",
        ),
    ]
}


def resolve_data_root(data_dir: str | Path | None = None) -> Path:
    if data_dir is not None:
        return Path(data_dir)
    if os.environ.get("TEXTVAE_DATA"):
        return Path(os.environ["TEXTVAE_DATA"])
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "textvae"


def corpus_dir(name: str, data_dir: str | Path | None = None) -> Path:
    info = CATALOG[name]
    if info.embedded:
        return REPO_DATA / name
    return resolve_data_root(data_dir) / name


def load_corpus(config: DataConfig, data_dir: str | Path | None = None) -> Corpus:
    """Load a registered corpus by name, or any directory of train/valid/test files by path."""
    name = config.corpus
    if name in CATALOG:
        root = corpus_dir(name, data_dir)
        if not root.is_dir():
            raise DataError(f"corpus '{name}' is not in {root.parent}: get it with: {CATALOG[name].obtain}")
        info = CATALOG[name]
        vocab = root / info.vocab_file if info.vocab_file and (root / info.vocab_file).is_file() else None
        return load_corpus_dir(root, config, name=name, vocab_file=vocab)
    path = Path(name).expanduser()
    if path.is_dir():
        vocab = path / "vocab.txt"
        return load_corpus_dir(path, config, vocab_file=vocab if vocab.is_file() else None)
    raise DataError(f"data.corpus: unknown corpus '{name}'" + suggest(name, CATALOG)
                    + f"; registered: {', '.join(CATALOG)}; or give a directory")
