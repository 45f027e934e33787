"""Sweeps: spec parsing and expansion, one point's skip/resume/failure logic, and a real local Ray
sweep with a worker killed mid-run and a point with bad data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import write_corpus
from textvae.cli.main import app
from textvae.config import RunConfig
from textvae.errors import ConfigError
from textvae.rundir import RunDir
from textvae.sweeps import load_spec, shorthand_spec
from textvae.sweeps.point import run_point
from textvae.sweeps.progress import ProgressLine, estimate_eta, format_eta
from textvae.sweeps.spec import expand

TINY = ["model.embed_dim=16", "model.enc_hidden=16", "model.dec_hidden=16", "model.latent_dim=4",
        "data.batch_size=16", "eval.iw_samples=4", "train.progress=false"]


def tiny_overrides(corpus: Path, epochs: int = 2) -> list[str]:
    return [f'data.corpus="{corpus}"', f"train.epochs={epochs}", *TINY]


def test_spec_file_expands_seed_major_with_grid(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('datasets = ["demo"]\nstrategies = ["vae", "scale-vae"]\nseeds = 2\nset = ["train.epochs=1"]\n'
                    '[grid]\n"strategy.des_std" = [0.7, 0.9]\n')
    with pytest.raises(ConfigError, match="des_std"):  # vae has no des_std: every point is resolved up front
        expand(load_spec(path))
    path.write_text(path.read_text().replace('"vae", ', ""))
    points = expand(load_spec(path))
    assert [p.id for p in points] == ["demo/scale-vae/des_std=0.7/seed1", "demo/scale-vae/des_std=0.9/seed1",
                                      "demo/scale-vae/des_std=0.7/seed2", "demo/scale-vae/des_std=0.9/seed2"]
    assert points[1].config["strategies"]["scale-vae"]["des_std"] == 0.9
    assert points[3].config["seed"] == 2 and points[0].config["train"]["epochs"] == 1


def test_spec_errors_are_one_line(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('datasets = ["demo"]\nstrategy = ["vae"]\n')
    with pytest.raises(ConfigError, match=r"s.toml: unknown key 'strategy' \(did you mean 'strategies'"):
        load_spec(path)
    with pytest.raises(ConfigError, match="--seeds"):
        shorthand_spec("demo", "vae", "three", [])
    with pytest.raises(ConfigError, match="unknown recipe strategy 'bn-vea'"):
        expand(shorthand_spec("demo", "vae,bn-vea", "1", []))
    with pytest.raises(ConfigError, match="twice"):
        expand(shorthand_spec("demo", "vae,vae", "1", []))


def test_shorthand_seeds_and_dry_run(tmp_path):
    assert shorthand_spec("demo", "vae", "3", []).seed_list() == [1, 2, 3]
    assert shorthand_spec("demo", "vae", "7,42", []).seed_list() == [7, 42]
    result = CliRunner().invoke(app, ["sweep", "--dataset", "demo", "--strategy", "vae,bn-vae", "--seeds", "2",
                                      "--set", "train.epochs=1", "--out", str(tmp_path / "sw"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "demo/bn-vae/seed2" in result.output and "4 points" in result.output
    assert not (tmp_path / "sw").exists()


def test_point_skips_resumes_and_refuses_another_config(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    spec = shorthand_spec("demo", "vae", "1", tiny_overrides(corpus, epochs=3))
    point = expand(spec)[0].__dict__
    run_dir = tmp_path / "run"
    from textvae.training import train

    train(RunConfig.from_dict(point["config"]), run_dir, stop_after=1)  # an interrupted run
    outcome = run_point(point, str(run_dir))
    assert outcome["status"] == "finished" and outcome["resumed_from_epoch"] == 1
    assert len(RunDir(run_dir).read_metrics()) == 3
    assert run_point(point, str(run_dir))["status"] == "skipped"
    other = expand(shorthand_spec("demo", "vae", "1", tiny_overrides(corpus, epochs=4)))[0].__dict__
    outcome = run_point(other, str(run_dir))
    assert outcome["status"] == "failed"
    assert "holds a run of another config: train.epochs (3 -> 4)" in outcome["error"]
    assert RunDir(run_dir).is_finished()  # untouched


def test_point_failure_is_one_line_not_an_exception(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.txt").write_text("")
    for split in ("valid", "test"):
        (bad / f"{split}.txt").write_text("a b\n")
    point = expand(shorthand_spec("demo", "vae", "1", tiny_overrides(bad)))[0].__dict__
    outcome = run_point(point, str(tmp_path / "run"))
    assert outcome["status"] == "failed"
    assert outcome["error"] == f"{bad / 'train.txt'}: file is empty"


def test_eta_and_status_line_without_carriage_returns(tmp_path):
    assert format_eta(None) == "ETA ?" and format_eta(3725) == "ETA 1:02:05"
    # 2 runs left + one half done, 60 s per run, 2 slots: (2 * 60 + 30) / 2
    assert estimate_eta([60.0], [0.5], left=2, slots=2, epoch_seconds=[], epochs=0) == pytest.approx(75.0)
    assert estimate_eta([], [0.0], left=1, slots=2, epoch_seconds=[10.0], epochs=3) == pytest.approx(30.0)
    log = tmp_path / "log.txt"
    with log.open("w") as stream:
        line = ProgressLine(stream=stream)
        line.update(0, 2, 0, 2, None)
        line.update(0, 2, 0, 2, None)  # unchanged: not repeated in a log file
        line.update(1, 2, 0, 1, 30.0)
        line.close()
    text = log.read_text()
    assert "\r" not in text
    assert text.splitlines() == ["sweep: 0 done, 2 running, 0 failed, 2 left, ETA ?",
                                 "sweep: 1 done, 2 running, 0 failed, 1 left, ETA 0:30"]


def _sweep_command(spec: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", "from textvae.cli.main import app; app()", "sweep", str(spec), "--out", str(out),
            "--cpus-per-run", "1"]


def _kill_first_worker_mid_run(run_dir: Path, proc: subprocess.Popen, timeout: float = 240.0) -> int:
    """Wait until the run has logged an epoch, then kill -9 the process holding its folder."""
    run = RunDir(run_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if run.read_metrics(strict=False) and not run.is_finished() and run.lock_file.exists():
            try:
                pid = json.loads(run.lock_file.read_text())["pid"]
            except (ValueError, KeyError, OSError):
                continue
            os.kill(pid, signal.SIGKILL)
            return pid
        time.sleep(0.02)
    raise AssertionError(f"{run_dir} never got to its second epoch while the sweep ran")


def test_local_ray_sweep_survives_a_killed_worker_and_records_a_bad_run(tmp_path):
    """2 recipes x 2 seeds of tiny models plus the same grid on a corpus with an empty train file."""
    pytest.importorskip("ray")
    good = write_corpus(tmp_path / "good", n_train=400)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.txt").write_text("")
    for split in ("valid", "test"):
        (bad / f"{split}.txt").write_text("a b\n")
    spec = tmp_path / "sweep.toml"
    overrides = [*TINY, "train.epochs=5"]
    spec.write_text(f'datasets = ["demo"]\nstrategies = ["vae", "kl-annealing"]\nseeds = 2\nset = {json.dumps(overrides)}\n'
                    f'[grid]\n"data.corpus" = ["{good}", "{bad}"]\n')
    out = tmp_path / "sw"
    points = expand(load_spec(spec))
    victim = next(p for p in points if str(good) in p.config["data"]["corpus"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(_sweep_command(spec, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    try:
        killed = _kill_first_worker_mid_run(victim.run_dir(out), proc)
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, output  # the bad-data points failed; the sweep still finished the others
    manifest = json.loads((out / "manifest.json").read_text())
    by_id = {p["id"]: p for p in manifest["points"]}
    good_points = [p for p in points if str(good) in p.config["data"]["corpus"]]
    assert all(by_id[p.id]["status"] == "finished" for p in good_points), manifest
    for p in points:
        if p not in good_points:
            assert by_id[p.id]["status"] == "failed"
            assert by_id[p.id]["error"] == f"{bad / 'train.txt'}: file is empty"
    assert by_id[victim.id]["resumed_from_epoch"] >= 1, f"pid {killed} was killed but the run did not resume"
    assert "failed demo/vae" in output and "file is empty" in output

    # The killed run ends exactly where an uninterrupted run of the same point ends.
    from textvae.training import train

    reference = train(RunConfig.from_dict(victim.config), tmp_path / "reference")
    swept = RunDir(victim.run_dir(out))
    results = swept.read_results()
    for key in ("nll", "elbo", "kl", "mi", "au", "best_epoch", "epochs"):
        assert results[key] == reference[key], key
    ours = [{k: r[k] for k in ("epoch", "step", "lr", "train", "valid")} for r in swept.read_metrics()]
    theirs = [{k: r[k] for k in ("epoch", "step", "lr", "train", "valid")}
              for r in RunDir(tmp_path / "reference").read_metrics()]
    assert ours == theirs

    # Re-running the sweep (here without the bad corpus) skips every finished run: nothing to start.
    spec.write_text(spec.read_text().replace(f', "{bad}"', ""))
    rerun = subprocess.run(_sweep_command(spec, out), capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "4 finished (4 already were), 0 failed" in rerun.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(p["skipped"] for p in manifest["points"]) and len(manifest["points"]) == 4


def test_strategy_defaults_touch_only_stacks_that_hold_the_strategy(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('datasets = ["ptb"]\nstrategies = ["cyclical", "bn-vae"]\n'
                    '[strategy_defaults.kl-annealing]\nwarm_up = 2\n')
    cyclical, bn = expand(load_spec(path))
    assert "kl-annealing" not in cyclical.config["strategies"]
    assert bn.config["strategies"]["kl-annealing"]["warm_up"] == 2


def test_variants_change_one_option_at_a_time_and_name_their_folders(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('datasets = ["demo"]\nstrategies = ["scale-vae"]\nseeds = [1]\nset = ["train.epochs=1"]\n'
                    '[grid]\n"strategy.des_std" = [0.7, 0.9]\n'
                    '[variants]\nrecipe = []\nsgd = [\'train.optimizer="sgd"\', "train.lr=1.0"]\n')
    points = expand(load_spec(path))
    assert [p.id for p in points] == ["demo/scale-vae/recipe/des_std=0.7/seed1", "demo/scale-vae/recipe/des_std=0.9/seed1",
                                      "demo/scale-vae/sgd/des_std=0.7/seed1", "demo/scale-vae/sgd/des_std=0.9/seed1"]
    assert points[3].config["train"]["optimizer"] == "sgd" and points[3].config["train"]["lr"] == 1.0
    assert points[0].config["train"]["optimizer"] == "adam" and points[0].config["train"]["epochs"] == 1
    path.write_text('datasets = ["demo"]\nstrategies = ["vae"]\n[variants]\n"a/b" = []\n')
    with pytest.raises(ConfigError, match="variant 'a/b'"):
        load_spec(path)


@pytest.mark.parametrize("spec", sorted((Path(__file__).resolve().parents[1] / "eval" / "sweeps").glob("*.toml")),
                         ids=lambda p: p.stem)
def test_committed_sweep_files_resolve(spec):
    points = expand(load_spec(spec))
    assert points and len({p.id for p in points}) == len(points)
    if spec.stem == "latent_clutter":  # 3 modes x 4 methods x 3 seeds, each scoring the component
        assert len(points) == 36 and all(p.config["eval"]["latent_clutter"] for p in points)
        assert {p.config["data"]["batch_split"] for p in points} == {"fixed", "reshuffle", "by-label"}
