"""Kill a training process at each point where a crash could damage the run folder, then --resume.

The child is forked and ends with ``os._exit`` (no cleanup, no ``finally``: what ``kill -9`` leaves).
After the resume the folder must equal an uninterrupted run's: same files, same metrics lines,
checkpoints and results (the wall-clock ``seconds`` of each epoch aside), no temp or lock file.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest
import torch
from conftest import tiny_config, write_corpus

from textvae.rundir import RunDir, atomic_write
from textvae.training import train

KILLED = 9


def crash_at(point: str, best_epoch: int) -> None:
    """Patch RunDir so that this (child) process dies at ``point``; ``after-best`` is right after the
    uninterrupted run's last best checkpoint (``best_epoch``), before that epoch's ``last.pt``."""
    save, append, results = RunDir.save_checkpoint, RunDir.append_metrics, RunDir.write_results
    if point == "setup":  # config.json written, vocab.txt and env.json not yet
        RunDir.write_vocab = lambda self, vocab: os._exit(KILLED)
    epochs = {"best": 0, "last": 0}

    def save_checkpoint(self, name, state):
        epochs[name] = state["state"]["epoch"]
        if point == "first-epoch" and epochs[name] == 1:
            os._exit(KILLED)
        if point == "mid-checkpoint" and name == "last" and epochs[name] == 2:
            atomic_write(self.checkpoint(name), lambda f: (f.write(b"PK\x03\x04 half a checkpoint"), f.flush(),
                                                            os._exit(KILLED)))
        save(self, name, state)
        if point == "after-best" and name == "best" and epochs[name] == best_epoch:
            os._exit(KILLED)

    def append_metrics(self, record):
        if point == "after-checkpoint" and record["epoch"] == 1:
            os._exit(KILLED)
        if point == "mid-append" and record["epoch"] == 2:
            line = json.dumps(record).encode()
            with open(self.metrics, "ab") as f:
                f.write(line[: len(line) // 2])
            os._exit(KILLED)
        append(self, record)

    def write_results(self, value):
        if point == "before-results":
            os._exit(KILLED)
        if point == "mid-results":
            atomic_write(self.results, lambda f: (f.write(b'{"nll": 1'), f.flush(), os._exit(KILLED)))
        results(self, value)

    RunDir.save_checkpoint, RunDir.append_metrics, RunDir.write_results = save_checkpoint, append_metrics, write_results


def child(point: str, config, run_dir: Path, data_dir: Path, best_epoch: int) -> None:
    torch.set_num_threads(1)
    crash_at(point, best_epoch)
    train(config, run_dir, data_dir=data_dir)
    os._exit(0)


POINTS = ("setup", "first-epoch", "after-checkpoint", "mid-append", "after-best", "mid-checkpoint", "before-results",
          "mid-results")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    config = tiny_config(write_corpus(root / "corpus", n_train=40, n_eval=10))
    train(config, root / "straight", data_dir=root / "data")
    return root, config


def without_seconds(value):
    if isinstance(value, dict):
        return {k: without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, (list, tuple)):
        return [without_seconds(v) for v in value]
    return value


def assert_same(a, b, where):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def folder_view(run: Path) -> dict:
    # TensorBoard event files are named by time and pid (one per attempt); test_tracking compares their scalars
    files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and "tfevents" not in p.name)
    view = {"files": files, "metrics": without_seconds(RunDir(run).read_metrics()),
            "results": json.loads((run / "results.json").read_text())}
    for name in ("best", "last"):
        view[name] = without_seconds(torch.load(run / "checkpoints" / f"{name}.pt", weights_only=True))
    return view


@pytest.mark.parametrize("point", POINTS)
def test_resume_after_a_kill_equals_an_uninterrupted_run(point, setup, tmp_path):
    root, config = setup
    run = tmp_path / "run"
    best_epoch = json.loads((root / "straight" / "results.json").read_text())["best_epoch"]
    process = multiprocessing.get_context("fork").Process(target=child,
                                                          args=(point, config, run, root / "data", best_epoch))
    process.start()
    process.join(120)
    assert process.exitcode == KILLED, f"the child was not killed at {point}"
    assert not (run / "results.json").exists()
    # what the kill left behind: the lock file of a dead owner, and at some points a temp file
    assert (run / ".lock").exists()
    left = [p.name for p in run.rglob("*.tmp")]
    assert bool(left) == (point in ("mid-checkpoint", "mid-results")), left

    train(config, run, data_dir=root / "data", resume=True)

    assert_same(folder_view(run), folder_view(root / "straight"), point)
    assert not list(run.rglob("*.tmp")) and not (run / ".lock").exists()
