"""Shared fixtures: a tiny labeled corpus written to a temp folder, and tiny run configs.

The device the tests run on is ``--device`` or ``$TEXTVAE_TEST_DEVICE`` (default ``cpu``):
runs built by :func:`tiny_config` train there, the ``device`` fixture names it, and tests marked
``cpu_only`` (they pin CPU kernels or CPU numbers) are skipped elsewhere. On a GPU the tiny runs
are deterministic (``train.deterministic``), so the tests that compare two runs bit for bit hold.
Tests marked ``amp("bf16")`` (or ``"fp16"``) are skipped, with the reason textvae's probe gives,
where that ``train.amp`` cannot run on the test device (bfloat16 LSTMs need AVX512-BF16 or AMX).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

from textvae.capability import amp_unavailable
from textvae.config import RunConfig

torch.set_num_threads(1)
# The CLI's thread policy (textvae.threads) takes OMP_NUM_THREADS: tests that invoke it in-process stay on one thread.
os.environ["OMP_NUM_THREADS"] = "1"

TEST_DEVICE = "cpu"


def pytest_addoption(parser):
    parser.addoption("--device", default=os.environ.get("TEXTVAE_TEST_DEVICE", "cpu"),
                     help="device the tests train and evaluate on (default $TEXTVAE_TEST_DEVICE or cpu)")


def pytest_configure(config):
    global TEST_DEVICE
    config.addinivalue_line("markers",
                            "cpu_only: pins CPU kernels or CPU numbers; skipped with --device other than cpu")
    config.addinivalue_line("markers", "amp(mode): needs train.amp=mode; skipped where the probe says it cannot run")
    TEST_DEVICE = config.getoption("--device")
    try:
        device = torch.device(TEST_DEVICE)
    except RuntimeError as e:
        raise pytest.UsageError(f"--device / TEXTVAE_TEST_DEVICE: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError(f"--device / TEXTVAE_TEST_DEVICE is {TEST_DEVICE!r} but CUDA is not available")


def pytest_report_header(config):
    return f"textvae test device: {TEST_DEVICE}"


def pytest_collection_modifyitems(config, items):
    if TEST_DEVICE == "cpu":
        return
    skip = pytest.mark.skip(reason=f"CPU-specific; the tests run on {TEST_DEVICE}")
    for item in items:
        if "cpu_only" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_setup(item):
    for mark in item.iter_markers("amp"):
        reason = amp_unavailable(mark.args[0], TEST_DEVICE)
        if reason is not None:
            pytest.skip(f"train.amp={mark.args[0]} cannot run on {TEST_DEVICE}: {reason}")


@pytest.fixture
def device() -> torch.device:
    return torch.device(TEST_DEVICE)


@pytest.fixture
def restore_determinism():
    """train.deterministic changes process-wide settings: put them back."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    yield
    torch.use_deterministic_algorithms(saved[0])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[1], saved[2]
    if saved[3] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[3]


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
        "train": {"epochs": 2, "progress": False, "device": TEST_DEVICE, "deterministic": TEST_DEVICE != "cpu"},
        "eval": {"iw_samples": 5},
    }
    for key, value in sections.items():
        d[key] = {**d.get(key, {}), **value}
    return RunConfig.from_dict(d)


@pytest.fixture
def make_config():
    return tiny_config
