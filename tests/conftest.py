"""Shared fixtures: a tiny labeled corpus written to a temp folder, and tiny run configs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from textvae.config import RunConfig

torch.set_num_threads(1)

WORDS = "the food was good bad great awful service staff friendly slow place nice love hate".split()


def write_corpus(root: Path, n_train: int = 60, n_eval: int = 20, labeled: bool = True, seed: int = 0) -> Path:
    """Sentences of 2-8 words; label 1 iff the sentence contains 'good' or 'great' or 'love'."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("valid", n_eval), ("test", n_eval)):
        lines = []
        for _ in range(n):
            words = rng.choices(WORDS, k=rng.randint(2, 8))
            label = int(any(w in ("good", "great", "love") for w in words))
            lines.append(f"{label}\t{' '.join(words)}" if labeled else " ".join(words))
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(autouse=True)
def isolated_data_root(tmp_path_factory, monkeypatch):
    """Corpus caches and prepared data go to a temp folder, never the user's cache."""
    monkeypatch.setenv("TEXTVAE_DATA", str(tmp_path_factory.mktemp("data_root")))


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


def tiny_config(corpus: Path, strategies: dict | None = None, **sections) -> RunConfig:
    d = {
        "seed": 1,
        "data": {"corpus": str(corpus), "batch_size": 8},
        "model": {"embed_dim": 16, "enc_hidden": 16, "dec_hidden": 16, "latent_dim": 4},
        "strategies": strategies or {"vae": {}},
        "train": {"epochs": 2, "progress": False},
        "eval": {"iw_samples": 5},
    }
    for key, value in sections.items():
        d[key] = {**d.get(key, {}), **value}
    return RunConfig.from_dict(d)


@pytest.fixture
def make_config():
    return tiny_config
