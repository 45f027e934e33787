"""The run folder: one writer, no silent overwrite, strict JSON, a log readers and resumes can trust."""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os

import pytest
import torch

from textvae.config import RunConfig
from textvae.errors import CheckpointError, ConfigError, RunFolderError, TrainingDiverged
from textvae.rundir import RunDir, default_run_dir, find_runs, write_json
from textvae.runs import load_run
from textvae.training import StopAfter, Trainer, train


def strict_json(text):
    def refuse(constant):
        raise ValueError(f"bare {constant} in JSON")
    return json.loads(text, parse_constant=refuse)


def test_second_claim_is_refused_naming_the_owner(tmp_path):
    first, second = RunDir(tmp_path / "run"), RunDir(tmp_path / "run")
    first.claim(fresh=True)
    with pytest.raises(RunFolderError, match=rf"another process is writing this run folder \(pid {os.getpid()} on "):
        second.claim(fresh=True)
    first.release()
    assert not (tmp_path / "run" / ".lock").exists()
    second.claim(fresh=True)
    second.release()


def hold(path, ready, done):
    run = RunDir(path)
    run.claim(fresh=True)
    ready.set()
    done.wait(30)
    run.release()


def die_holding(path):
    RunDir(path).claim(fresh=True)
    os._exit(9)


def test_two_processes_one_folder(tmp_path, tiny_corpus, make_config):
    ctx = multiprocessing.get_context("fork")
    ready, done = ctx.Event(), ctx.Event()
    owner = ctx.Process(target=hold, args=(tmp_path / "run", ready, done))
    owner.start()
    try:
        assert ready.wait(30)
        busy = rf"run: another process is writing this run folder \(pid {owner.pid} "
        with pytest.raises(RunFolderError, match=busy):
            train(make_config(tiny_corpus), tmp_path / "run")
        assert [p.name for p in (tmp_path / "run").iterdir()] == [".lock"]
    finally:
        done.set()
        owner.join(30)


def test_the_lock_of_a_killed_owner_is_taken_over(tmp_path):
    ctx = multiprocessing.get_context("fork")
    dead = ctx.Process(target=die_holding, args=(tmp_path / "run",))
    dead.start()
    dead.join(30)
    assert str(dead.pid) in (tmp_path / "run" / ".lock").read_text()
    with RunDir(tmp_path / "run") as run:
        run.claim(fresh=True)
        assert json.loads(run.lock_file.read_text())["pid"] == os.getpid()


def test_a_run_is_never_overwritten_without_asking(tmp_path, tiny_corpus, make_config):
    cfg = make_config(tiny_corpus, train={"epochs": 1})
    run = tmp_path / "run"
    train(cfg, run, evaluate_test=False)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    with pytest.raises(RunFolderError, match="holds an unfinished run .1 epochs logged.; continue it with --resume, "
                                             "or pass --overwrite"):
        train(cfg, run)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    train(dataclasses.replace(cfg, seed=5), run, overwrite=True, evaluate_test=False)
    assert RunConfig.load(run / "config.json").seed == 5


def test_a_folder_that_is_not_a_run_is_never_touched(tmp_path, tiny_corpus, make_config):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json.bak").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(RunFolderError, match="folder is not empty and holds no textvae run"):
            train(make_config(tiny_corpus), folder, overwrite=overwrite)
    assert [p.name for p in folder.iterdir()] == ["config.json.bak"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="exists and is not a folder"):
        train(make_config(tiny_corpus), tmp_path / "file")


def test_json_has_no_bare_nan(tmp_path):
    write_json(tmp_path / "r.json", {"nll": math.nan, "kl": [math.inf, 1.5], "au": 3})
    assert strict_json((tmp_path / "r.json").read_text()) == {"nll": None, "kl": [None, 1.5], "au": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_metrics_readers_skip_only_a_torn_last_line(tmp_path):
    run = RunDir(tmp_path)
    run.metrics.write_text('{"epoch": 1}\n{"epoch": 2, "va')
    assert run.read_metrics() == [{"epoch": 1}]
    run.metrics.write_text('{"epoch": 1}\n{"epo\n{"epoch": 3}\n')
    with pytest.raises(RunFolderError, match=r"metrics.jsonl:2: invalid JSON"):
        run.read_metrics()


def test_find_runs_and_default_folders(tmp_path):
    for name in ("a/seed1", "b/seed1"):
        write_json(tmp_path / name / "config.json", {})
    write_json(tmp_path / "a" / "seed1" / "results.json", {})
    assert [r.path for r in find_runs([tmp_path])] == [tmp_path / "a" / "seed1"]
    assert [r.path for r in find_runs([tmp_path], finished=False)] == [tmp_path / "a/seed1", tmp_path / "b/seed1"]
    assert str(default_run_dir("ptb", "dpvae/factor-vae-dp", "seed1")) == "runs/ptb/dpvae/factor-vae-dp/seed1"
    for bad in ("../x", "/etc", "a/../../b", "", "."):
        with pytest.raises(RunFolderError, match="would leave runs/"):
            default_run_dir("demo", bad)


def test_nan_validation_is_never_a_good_checkpoint(tiny_corpus, make_config, tmp_path, monkeypatch):
    cfg = make_config(tiny_corpus, train={"epochs": 3})
    run = tmp_path / "run"
    train(cfg, run, callbacks=[StopAfter(1)])
    kept = {n: (run / "checkpoints" / f"{n}.pt").read_bytes() for n in ("best", "last")}
    original = Trainer.validate
    monkeypatch.setattr(Trainer, "validate", lambda self: {**original(self), "elbo": math.nan, "kl": math.inf})
    with pytest.raises(TrainingDiverged, match=r"validation kl is inf after epoch 2; last good checkpoint kept: "
                                               r".*last.pt \(epoch 1\)"):
        train(cfg, run, resume=True)
    assert {n: (run / "checkpoints" / f"{n}.pt").read_bytes() for n in ("best", "last")} == kept
    lines = [strict_json(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[1]["diverged"] and lines[1]["valid"]["elbo"] is None and lines[1]["valid"]["kl"] is None
    monkeypatch.setattr(Trainer, "validate", original)
    torch.save({**torch.load(run / "checkpoints/last.pt", weights_only=True),
                "model": {k: v * math.nan for k, v in load_run(run, "last").model.state_dict().items()}},
               tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match=r"nan.pt: weights are not finite \(.*\); the model diverged"):
        load_run(run, tmp_path / "nan.pt")  # so eval, probe and generate never score a diverged model
    train(cfg, run, resume=True)  # the diverged line is dropped when the log is rebuilt from last.pt
    assert [r["epoch"] for r in RunDir(run).read_metrics()] == [1, 2, 3]
    assert not any("diverged" in r for r in RunDir(run).read_metrics())


def test_resume_applies_and_records_schedule_changes(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus)
    run = tmp_path / "run"
    train(cfg, run, callbacks=[StopAfter(1)])
    longer = make_config(tiny_corpus, train={"epochs": 3, "lr": 0.5})
    train(longer, run, resume=True)
    assert RunConfig.load(run / "config.json") == longer
    log = RunDir(run).read_metrics()
    assert [r["lr"] for r in log] == [1.0, 0.5, 0.5]
    assert log[1]["changed"] == {"train.epochs": {"from": 2, "to": 3}, "train.lr": {"from": 1.0, "to": 0.5}}
    assert "changed" not in log[2] and (run / "results.json").is_file()
    train(make_config(tiny_corpus, train={"epochs": 4, "lr": 0.5}), run, resume=True, evaluate_test=False,
          callbacks=[StopAfter(1)])
    assert not (run / "results.json").exists()  # longer than it was: no longer finished
    with pytest.raises(ConfigError, match=r"--resume cannot change data.batch_size \(8 -> 4\), seed \(1 -> 2\)"):
        train(dataclasses.replace(make_config(tiny_corpus, data={"batch_size": 4}), seed=2), run, resume=True)


def test_checkpoints_by_name(tmp_path, tiny_corpus, make_config):
    from tiny_vae import save_run

    run = save_run(make_config(tiny_corpus), tmp_path / "run")
    (run / "checkpoints" / "best.pt").replace(run / "checkpoints" / "pretrain-best.pt")
    assert load_run(run, "pretrain-best").checkpoint == run / "checkpoints" / "pretrain-best.pt"
    for bad in ("../run/checkpoints/pretrain-best", "first", 7):
        with pytest.raises(RunFolderError, match=r"\(this run has: pretrain-best\), got"):
            load_run(run, bad)
