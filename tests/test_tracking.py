"""TensorBoard event files beside metrics.jsonl, and logs without carriage returns."""

import pytest

from textvae.rundir import RunDir
from textvae.training import train

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def scalars(run_dir):
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_event_files_hold_steps_epochs_and_strategy_scalars(tiny_corpus, make_config, tmp_path):
    config = make_config(tiny_corpus, {"kl-annealing": {"kl_start": 0.0, "warm_up": 2}, "scale-vae": {}},
                         train={"epochs": 2})
    train(config, tmp_path / "run")
    records = RunDir(tmp_path / "run").read_metrics()
    logged = scalars(tmp_path / "run")
    steps = records[-1]["step"]
    assert [s for s, _ in logged["step/rec"]] == list(range(1, steps + 1))
    weights = [w for _, w in logged["step/kl_weight"]]
    assert weights[0] < weights[-1] <= 1.0  # the annealed KL weight, step by step
    assert [v for _, v in logged["valid/elbo"]] == pytest.approx([r["valid"]["elbo"] for r in records])
    assert [s for s, _ in logged["valid/mi"]] == [r["step"] for r in records]
    strategy_tags = [t for t in logged if t.startswith("strategy/")]
    assert strategy_tags and all(len(logged[t]) == 2 for t in strategy_tags)  # Scale-VAE's f, per epoch


def test_a_resumed_run_replaces_what_the_interrupted_one_logged(tiny_corpus, make_config, tmp_path):
    import shutil

    config = make_config(tiny_corpus, train={"epochs": 3})
    run = RunDir(tmp_path / "run")
    train(config, run.path, stop_after=1)
    shutil.copy(run.checkpoint("last"), tmp_path / "epoch1.pt")
    train(config, run.path, resume=True, stop_after=1)  # logs epoch 2 ...
    shutil.copy(tmp_path / "epoch1.pt", run.checkpoint("last"))  # ... but is "killed" before its checkpoint
    train(config, run.path, resume=True)
    train(config, tmp_path / "reference")
    ours, theirs = scalars(tmp_path / "run"), scalars(tmp_path / "reference")
    assert [s for s, _ in ours["step/rec"]] == [s for s, _ in theirs["step/rec"]]
    assert [v for _, v in ours["valid/elbo"]] == pytest.approx([v for _, v in theirs["valid/elbo"]])


def test_tensorboard_off_and_no_carriage_returns_in_logs(tiny_corpus, make_config, tmp_path, capfd):
    config = make_config(tiny_corpus, train={"epochs": 1, "tensorboard": False, "progress": True})
    train(config, tmp_path / "run")
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))
    out, err = capfd.readouterr()
    assert "epoch 1: valid elbo" in out + err
    assert "\r" not in out + err  # stderr is not a terminal here: no progress bars
