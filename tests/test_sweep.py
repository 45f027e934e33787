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
from conftest import write_corpus
from typer.testing import CliRunner

from textvae.cli.main import app
from textvae.config import RunConfig
from textvae.errors import ConfigError
from textvae.rundir import RunDir
from textvae.sweeps import load_spec, shorthand_spec
from textvae.sweeps.point import run_point
from textvae.sweeps.progress import ProgressLine, estimate_eta, format_eta
from textvae.sweeps.spec import expand
from textvae.training import StopAfter

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

    train(RunConfig.from_dict(point["config"]), run_dir, callbacks=[StopAfter(1)])  # an interrupted run
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


def _sweep_command(spec: Path, out: Path, *more: str) -> list[str]:
    return [sys.executable, "-c", "from textvae.cli.main import app; app()", "sweep", str(spec), "--out", str(out),
            "--cpus-per-run", "1", *more]


HOOKS = Path(__file__).parent / "sweep_hooks"  # sitecustomize.py: pauses a chosen run after its first epoch
DEADLINE = 900.0  # seconds: generous, for a machine shared with other work; the waits end on events


def _sweep_env(**more: str) -> dict[str, str]:
    """The environment of a sweep subprocess: this checkout and the test hooks importable, by Ray's workers too."""
    path = [str(HOOKS), str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), **more}


def _wait_for(what: str, ready, proc: subprocess.Popen | None = None, deadline: float = DEADLINE):
    """Poll ``ready()`` until it returns something true; fail if ``proc`` ends first or after ``deadline``."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = ready()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"the sweep ended (exit {proc.returncode}) before {what}: {output}")
        time.sleep(0.2)
    raise AssertionError(f"no sign of {what} after {deadline:.0f} s")


def _lock_pid(run_dir: Path) -> int | None:
    try:
        return json.loads(RunDir(run_dir).lock_file.read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture
def ray_state(tmp_path, monkeypatch):
    """A private folder for the records of owned Ray instances; whatever a test's sweeps left is ended after it."""
    from textvae.sweeps import leftovers

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    yield leftovers.state_dir()
    leftovers.clean_up_after_dead_sweeps()


def test_local_ray_sweep_survives_a_killed_worker_and_records_a_bad_run(tmp_path, ray_state):
    """2 recipes x 2 seeds of tiny models plus the same grid on a corpus with an empty train file.

    One run pauses after its first epoch (tests/sweep_hooks) and its worker is killed there."""
    pytest.importorskip("ray")
    good = write_corpus(tmp_path / "good", n_train=400)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.txt").write_text("")
    for split in ("valid", "test"):
        (bad / f"{split}.txt").write_text("a b\n")
    spec = tmp_path / "sweep.toml"
    overrides = [*TINY, "train.epochs=5"]
    spec.write_text('datasets = ["demo"]\nstrategies = ["vae", "kl-annealing"]\nseeds = 2\n'
                    f'set = {json.dumps(overrides)}\n'
                    f'[grid]\n"data.corpus" = ["{good}", "{bad}"]\n')
    out = tmp_path / "sw"
    points = expand(load_spec(spec))
    victim = next(p for p in points if str(good) in p.config["data"]["corpus"])
    marker = tmp_path / "paused"
    env = _sweep_env(TEXTVAE_TEST_PAUSE_RUN=str(victim.run_dir(out)), TEXTVAE_TEST_PAUSE_MARKER=str(marker))
    proc = subprocess.Popen(_sweep_command(spec, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    try:
        killed = int(_wait_for("the victim's first epoch", lambda: marker.exists() and marker.read_text(), proc))
        os.kill(killed, signal.SIGKILL)
        output, _ = proc.communicate(timeout=DEADLINE)
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
    rerun = subprocess.run(_sweep_command(spec, out), capture_output=True, text=True, env=env, timeout=DEADLINE)
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


def _one_point_spec(tmp_path: Path, epochs: int, *more: str) -> Path:
    corpus = write_corpus(tmp_path / "corpus")
    spec = tmp_path / "one.toml"
    spec.write_text(f'datasets = ["demo"]\nstrategies = ["vae"]\nseeds = 1\n'
                    f'set = {json.dumps([*tiny_overrides(corpus, epochs), *more])}\n')
    return spec


def test_a_killed_sweeps_ray_is_ended_by_the_next_sweep_whose_own_ends_on_sigterm(tmp_path, ray_state):
    from textvae.sweeps.leftovers import processes_in

    # Runs until stopped: without a decay_epoch out of reach, a fast machine ends it by learning-rate decays
    # (an orphaned worker finishes it), and the second sweep finds it done.
    spec, out = _one_point_spec(tmp_path, 100000, "train.decay_epoch=100000"), tmp_path / "sw"
    run_dir = expand(load_spec(spec))[0].run_dir(out)
    env = _sweep_env()

    def owned_instance(other_than: Path | None = None) -> tuple[Path, Path] | None:
        for state in ray_state.glob("*.json"):
            temp_dir = Path(json.loads(state.read_text())["temp_dir"])
            if temp_dir != other_than:
                return state, temp_dir
        return None

    first = subprocess.Popen(_sweep_command(spec, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=env)
    try:
        first_worker = _wait_for("the run training", lambda: _lock_pid(run_dir), first)
        first_state, first_temp = owned_instance()
        first.kill()
        first.wait(timeout=60)
        assert first_state.exists()  # what a SIGKILL leaves: the record (and Ray's agents, which ignore SIGTERM)

        second = subprocess.Popen(_sweep_command(spec, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, env=env)
        _wait_for("the run training again", lambda: _lock_pid(run_dir) not in (None, first_worker), second)
        assert not first_state.exists() and not first_temp.exists()
        assert processes_in(first_temp) == []
        second_state, second_temp = owned_instance(other_than=first_temp)
        assert processes_in(second_temp)
        second.send_signal(signal.SIGTERM)
        output, _ = second.communicate(timeout=DEADLINE)
    finally:
        for proc in (first, locals().get("second")):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert second.returncode == 130, output
    assert "interrupted: finished runs are kept" in output
    assert not second_state.exists() and not second_temp.exists() and processes_in(second_temp) == []
    assert [p["status"] for p in json.loads((out / "manifest.json").read_text())["points"]] == ["interrupted"]


def test_leftovers_of_a_dead_owner_are_ended_and_a_live_owners_kept(tmp_path, ray_state):
    from textvae.rundir import write_json
    from textvae.sweeps import leftovers

    def holder(temp_dir: Path) -> subprocess.Popen:
        """A process keeping a file open in ``temp_dir``, as Ray's agents keep their logs."""
        temp_dir.mkdir()
        return subprocess.Popen([sys.executable, "-c", "import sys, time; f = open(sys.argv[1], 'w'); "
                                 "print('ready', flush=True); time.sleep(600)", str(temp_dir / "agent.log")],
                                stdout=subprocess.PIPE, text=True)

    orphaned, live = tmp_path / "textvae-ray-orphaned", tmp_path / "textvae-ray-live"
    dead_owner = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                                text=True)
    orphan, kept = holder(orphaned), holder(live)
    try:
        assert orphan.stdout.readline() == "ready\n" and kept.stdout.readline() == "ready\n"
        ray_state.mkdir(parents=True)
        write_json(ray_state / "1.json", {"pid": int(dead_owner.stdout), "start_time": 1,
                                          "temp_dir": str(orphaned)})
        write_json(ray_state / "2.json", {"pid": os.getpid(), "start_time": leftovers.start_time(os.getpid()),
                                          "temp_dir": str(live)})
        assert leftovers.processes_in(orphaned) == [orphan.pid]
        assert leftovers.clean_up_after_dead_sweeps() == 1
        assert orphan.wait(timeout=60) == -signal.SIGKILL
        assert not (orphaned).exists() and not (ray_state / "1.json").exists()
        assert kept.poll() is None and (ray_state / "2.json").exists()
    finally:
        for proc in (orphan, kept):
            proc.kill()
            proc.wait()
        (ray_state / "2.json").unlink(missing_ok=True)


def test_address_failures_are_one_line(tmp_path, ray_state):
    pytest.importorskip("ray")
    import socket

    spec = _one_point_spec(tmp_path, epochs=1)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for address, message in ((f"127.0.0.1:{port}", f"--address 127.0.0.1:{port}: no Ray cluster answers there"),
                             ("head-node", "--address head-node: expected HOST:PORT")):
        result = CliRunner().invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "sw"), "--address", address])
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"error: {message}") and len(result.output.strip().splitlines()) == 1


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def test_address_joins_a_token_authenticated_cluster_started_by_ray_start(tmp_path, ray_state):
    """``ray start --head`` with token authentication; the sweep finds the token in RAY_AUTH_TOKEN."""
    pytest.importorskip("ray")
    import shutil
    import tempfile

    from textvae.sweeps.leftovers import end_processes_in

    spec, out = _one_point_spec(tmp_path, epochs=1), tmp_path / "sw"
    home = tmp_path / "home"  # no ~/.ray/auth_token: the token comes only from where each command is given it
    home.mkdir()
    port, token = _free_port(), "textvae-test-token-0123456789abcdef"
    temp_dir = Path(tempfile.mkdtemp(prefix="textvae-head-"))  # short: Ray's socket paths live under it
    env = {k: v for k, v in _sweep_env(HOME=str(home)).items() if not k.startswith("RAY_")}
    head_log = tmp_path / "head.log"
    with head_log.open("w") as log:
        head = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
                                 "--port", str(port), "--num-cpus", "1", "--temp-dir", str(temp_dir),
                                 "--include-dashboard=false", "--disable-usage-stats"],
                                stdout=log, stderr=subprocess.STDOUT,
                                env={**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
    try:
        _wait_for("the head node", lambda: "Ray runtime started" in head_log.read_text(), head)
        address = f"127.0.0.1:{port}"
        # Ray retries a refused token 20 times, a second apart; 2 are enough to be refused here.
        for token_env, message in (({}, "the cluster requires a token: set RAY_AUTH_TOKEN"),
                                   ({"RAY_AUTH_TOKEN": "wrong"}, "the cluster refused the token from RAY_AUTH_TOKEN")):
            refused = subprocess.run(_sweep_command(spec, out, "--address", address), capture_output=True, text=True,
                                     env={**env, **token_env, "RAY_NUM_REDIS_GET_RETRIES": "2"}, timeout=DEADLINE)
            assert refused.returncode == 2, refused.stdout + refused.stderr
            assert refused.stderr == f"error: --address {address}: {message}" + refused.stderr.split(message)[1]
            assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        joined = subprocess.run(_sweep_command(spec, out, "--address", address, "--no-progress"), capture_output=True,
                                text=True, env={**env, "RAY_AUTH_TOKEN": token}, timeout=DEADLINE)
        assert joined.returncode == 0, joined.stdout + joined.stderr
        assert "1 finished (0 already were), 0 failed" in joined.stdout
        assert not any(ray_state.glob("*.json"))  # joined, not owned
    finally:
        head.terminate()  # its own processes only: `ray stop` would stop every Ray on the machine
        try:
            head.wait(timeout=120)
        finally:
            end_processes_in(temp_dir, grace=0)
            shutil.rmtree(temp_dir, ignore_errors=True)
    assert RunDir(expand(load_spec(spec))[0].run_dir(out)).is_finished()


def test_variants_change_one_option_at_a_time_and_name_their_folders(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('datasets = ["demo"]\nstrategies = ["scale-vae"]\nseeds = [1]\nset = ["train.epochs=1"]\n'
                    '[grid]\n"strategy.des_std" = [0.7, 0.9]\n'
                    '[variants]\nrecipe = []\nsgd = [\'train.optimizer="sgd"\', "train.lr=1.0"]\n')
    points = expand(load_spec(path))
    assert [p.id for p in points] == ["demo/scale-vae/recipe/des_std=0.7/seed1",
                                      "demo/scale-vae/recipe/des_std=0.9/seed1",
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


def test_cpus_caps_the_sweeps_own_ray_and_the_manifest_says_how_many_ran_at_once(tmp_path, ray_state):
    pytest.importorskip("ray")
    corpus = write_corpus(tmp_path / "c", n_train=100)
    spec = tmp_path / "sweep.toml"
    spec.write_text(f'datasets = ["demo"]\nstrategies = ["vae"]\nseeds = 2\n'
                    f'set = {json.dumps(tiny_overrides(corpus, epochs=1))}\n')
    out = tmp_path / "sw"
    done = subprocess.run(_sweep_command(spec, out, "--cpus", "1"), capture_output=True, text=True, env=_sweep_env(),
                          timeout=DEADLINE)
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["concurrent_runs"] == 1 and manifest["counts"]["finished"] == 2


@pytest.mark.parametrize("more, message", [
    (["--cpus", "1", "--cpus-per-run", "2"], "--cpus 1 is less than the 2 CPUs of one run"),
    (["--cpus", "2", "--address", "auto"], "--cpus sets the CPUs of the sweep's own local Ray instance"),
])
def test_cpus_errors_are_one_line(tmp_path, more, message):
    result = CliRunner().invoke(app, ["sweep", "--dataset", "demo", "--strategy", "vae", "--set", "train.epochs=1",
                                      "--out", str(tmp_path / "sw"), *more])
    assert result.exit_code != 0 and message in result.output, result.output
    assert not (tmp_path / "sw").exists()


def test_cpus_is_refused_for_a_ray_the_caller_started(tmp_path, monkeypatch):
    import types

    from textvae.sweeps.cluster import ray_for_sweep

    monkeypatch.setitem(sys.modules, "ray", types.SimpleNamespace(is_initialized=lambda: True))
    with pytest.raises(ConfigError, match="a Ray already started has its own"):
        with ray_for_sweep(None, tmp_path / "ray.log", cpus=1):
            pass
    with ray_for_sweep(None, tmp_path / "ray.log") as ray:  # without --cpus the caller's Ray is used as it is
        assert ray is sys.modules["ray"]
