"""Registered corpora: where their files live and how a user obtains them.

The data root is ``--data-dir``, else ``$TEXTVAE_DATA``, else ``~/.cache/textvae`` (or
``$XDG_CACHE_HOME/textvae``); corpus NAME lives in ``<root>/NAME`` and encoded corpora are cached in
``<root>/cache``. ``demo`` ships inside the repository under ``data/demo``.

``data.corpus`` is a registered name, a directory of split files, or ``hf:NAME[:CONFIG]`` for a
dataset loaded with ``datasets.load_dataset(NAME, CONFIG)`` (a hub id, or a local dataset folder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import DataConfig
from ..errors import DataError, suggest
from ..resources import shipped_dir
from .cache import CACHE_DIR
from .corpus import Corpus
from .loading import load_corpus_dir, load_hub_corpus
from .tables import HUB_PREFIX

EMBEDDED_DATA = shipped_dir("data")

PTB_URL = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
SYNTHETIC_URL = ("https://raw.githubusercontent.com/jxhe/vae-lagging-encoder/"
                 "15c41770cf032c6b1d8b3e3e1a0a4be5de9e478f/synthetic-data/synthetic_data.txt")
HE_DRIVE_ID = "1yH3Ufj20R06OX1prPMPS6E3fKSG_2MqN"
"""He et al.'s ``datasets.tar.gz`` (jxhe/vae-lagging-encoder ``prepare_data.py``): Yahoo, Yelp."""
LI_SHORT_YELP_DRIVE_ID = "18h8UYr801qr-USCYRzZySi_DSbUkHW71"
"""Li et al.'s short-Yelp tarball (bohanli/vae-pretraining-encoder ``prepare_data.py``)."""


def drive_instructions(file_id: str, what: str, folder: str, name: str) -> str:
    # Google Drive answers large files with an HTML confirmation page, not the file: no stable
    # direct URL exists, so the user fetches the tarball in a browser.
    return (f"the original release is {what}, Google Drive file https://drive.google.com/file/d/{file_id} "
            f"(no direct download URL: Drive asks for a confirmation in a browser); download and extract it, "
            f"then run: textvae data prepare {name} --from {folder}")


@dataclass(frozen=True)
class Download:
    """One file of a public release: a plain file saved as ``save_as``, or a ``.zip``/``.tar.gz``
    archive whose ``members`` (member path -> file name in the corpus folder) are extracted."""

    url: str
    save_as: str | None = None
    members: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CorpusInfo:
    name: str
    description: str
    obtain: str
    """How a user gets the files (printed when the corpus is missing)."""
    vocab_file: str | None = None
    sha256: dict[str, str] = field(default_factory=dict)
    """Published sha256 of files, keyed by file name in the corpus folder, verified by prepare/download."""
    embedded: bool = False
    downloads: tuple[Download, ...] = ()
    """What ``textvae data download`` fetches; empty when the release has no direct URL."""
    split_file: str | None = None
    """A single released file that ``prepare`` cuts, in file order, into ``split_sizes`` lines."""
    split_sizes: tuple[int, int, int] = (0, 0, 0)
    extra_files: tuple[str, ...] = ()
    """Further files copied by ``prepare`` when present (``<name>.`` prefixes dropped), e.g. the
    labeled probe subsets of short Yelp."""


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
            "textvae data download ptb (Mikolov's simple-examples.tgz), or textvae data prepare ptb --from DIR "
            "(DIR holds train.txt valid.txt test.txt or ptb.*.txt)",
            sha256={
                "train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
                "valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
                "test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
            },
            downloads=(Download(PTB_URL, members={f"simple-examples/data/ptb.{s}.txt": f"{s}.txt"
                                                  for s in ("train", "valid", "test")}),),
        ),
        CorpusInfo(
            "yahoo",
            "Yahoo Answers (Yang et al. 2017 / He et al. 2019): 100k/10k/10k documents, 20k vocab",
            drive_instructions(HE_DRIVE_ID, "He et al.'s datasets.tar.gz", "datasets/yahoo_data", "yahoo")
            + " (yahoo.train.txt yahoo.valid.txt yahoo.test.txt)",
            sha256={
                "valid.txt": "3247ac3ffcc4d4bfd6216f2aaa617f6706cdc4081874da39245fe156825898d1",
                "test.txt": "ad843c4363adbdd07d8055d9bf121e5f23c285760df43a0031b89d8538293075",
            },
        ),
        CorpusInfo(
            "yelp",
            "Yelp reviews (Yang et al. 2017 / He et al. 2019): 100k/10k/10k, 20k vocab, labeled",
            drive_instructions(HE_DRIVE_ID, "He et al.'s datasets.tar.gz", "datasets/yelp_data", "yelp")
            + " (yelp.train.txt yelp.valid.txt yelp.test.txt)",
        ),
        CorpusInfo(
            "short-yelp",
            "Short Yelp sentiment (Li et al. 2019): 100k/10k/10k labeled sentences, vocab 8,411",
            drive_instructions(LI_SHORT_YELP_DRIVE_ID, "Li et al.'s short-Yelp tarball", "short_yelp_data",
                               "short-yelp")
            + " (short_yelp.{train,valid,test}.txt or train/valid/test.txt, and vocab.txt)",
            vocab_file="vocab.txt",
            extra_files=tuple(f"train.{n}.txt" for n in (100, 500, 1000, 2000, 10000)),
            sha256={
                "train.100.txt": "eb17b8855e8307badf3f4a50b467268ae21c3ec471a9d2f7a152eceff5e7a91c",
                "train.500.txt": "a11eb4bdea7bc5e58d1d316744c61d42da5a7467e4babef51c2cc5d839565a05",
                "train.1000.txt": "ceba2d95fd4ea802d2b0f873d34aff5289a453e7c3ecd63669c7186d2a077fb6",
                "train.2000.txt": "f91ae9deaffee1943c6308f9b723dab00bb87fa10c39a5fe7ec9fb9a1197716f",
                "train.10000.txt": "db61555383043e4032443c9a04bffe2129c8e181f596e437c9c9b56292578c06",
                "valid.txt": "34240114bd7b8b8b016c2ea033aaf7efefbc4e5be5aa7c53f95e03260c631521",
                "test.txt": "56dc9c763128e315b167870ba6714c0f528b335855b7cc469ab3018457daddeb",
                "vocab.txt": "552cad81f06191dd85b10f820e8ff142846b5d594e591cf709edba7a88c7bcac",
            },
        ),
        CorpusInfo(
            "synthetic",
            "He et al. synthetic sequences (early release: 10k x 10 tokens, vocab 1000; split 8k/1k/1k)",
            "textvae data download synthetic (from jxhe/vae-lagging-encoder at commit 15c4177), or "
            "textvae data prepare synthetic --from DIR  (DIR holds synthetic_data.txt)",
            sha256={"synthetic_data.txt": "0546b145c919872dc6149a39ad9c072f2c0a8ff9b2a68d3fc5efa60714940a05"},
            downloads=(Download(SYNTHETIC_URL, save_as="synthetic_data.txt"),),
            split_file="synthetic_data.txt",
            split_sizes=(8000, 1000, 1000),
        ),
    ]
}


def resolve_data_root(data_dir: str | Path | None = None) -> Path:
    if data_dir is not None:
        root, what = Path(data_dir), "--data-dir"
    elif os.environ.get("TEXTVAE_DATA"):
        root, what = Path(os.environ["TEXTVAE_DATA"]), "TEXTVAE_DATA"
    else:
        root, what = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "textvae", "data root"
    if root.exists() and not root.is_dir():
        raise DataError(f"{what} {root}: is a file, not a folder")
    return root


def corpus_dir(name: str, data_dir: str | Path | None = None) -> Path:
    info = CATALOG[name]
    if info.embedded:
        return EMBEDDED_DATA / name
    return resolve_data_root(data_dir) / name


def load_corpus(config: DataConfig, data_dir: str | Path | None = None) -> Corpus:
    """Load a registered corpus by name, a directory of train/valid/test files by path, or ``hf:NAME``."""
    name = config.corpus
    cache = resolve_data_root(data_dir) / CACHE_DIR
    # A word vocabulary shipped with the corpus does not apply to a sentencepiece model trained on it.
    use_shipped_vocab = config.tokenizer == "word"
    if name.startswith(HUB_PREFIX):
        return load_hub_corpus(name[len(HUB_PREFIX):], config, cache)
    root = locate_corpus(name, data_dir)
    if name in CATALOG:
        info = CATALOG[name]
        vocab = root / info.vocab_file if info.vocab_file and (root / info.vocab_file).is_file() else None
        return load_corpus_dir(root, config, name=name, vocab_file=vocab if use_shipped_vocab else None,
                               cache_dir=cache)
    vocab = root / "vocab.txt"
    shipped = vocab if vocab.is_file() and use_shipped_vocab else None
    return load_corpus_dir(root, config, vocab_file=shipped, cache_dir=cache)


def locate_corpus(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The folder of a registered corpus or a directory corpus; None for an ``hf:`` dataset (found only
    by loading it). A corpus that is not there is an error saying how to get it."""
    if name.startswith(HUB_PREFIX):
        return None
    if name in CATALOG:
        root = corpus_dir(name, data_dir)
        if not root.is_dir():
            raise DataError(f"corpus '{name}' is not in {root.parent}: get it with: {CATALOG[name].obtain}")
        return root
    path = Path(name).expanduser()
    if not path.is_dir() and not path.is_absolute() and (resolve_data_root(data_dir) / name).is_dir():
        # A corpus folder under the data root by its name (e.g. one `textvae data synthesize` wrote
        # there): the run's config then names no machine path.
        path = resolve_data_root(data_dir) / name
    if path.is_dir():
        return path
    raise DataError(f"data.corpus: unknown corpus '{name}'" + suggest(name, CATALOG)
                    + f"; registered: {', '.join(CATALOG)}; or give a directory, or hf:NAME for a datasets hub dataset")
