"""TensorBoard event files beside metrics.jsonl, and logs without carriage returns."""

import numpy as np
import pytest

from textvae.rundir import RunDir
from textvae.training import StopAfter, train

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
    train(config, run.path, callbacks=[StopAfter(1)])
    shutil.copy(run.checkpoint("last"), tmp_path / "epoch1.pt")
    train(config, run.path, resume=True, callbacks=[StopAfter(1)])  # logs epoch 2 ...
    shutil.copy(tmp_path / "epoch1.pt", run.checkpoint("last"))  # ... but is "killed" before its checkpoint
    train(config, run.path, resume=True)
    train(config, tmp_path / "reference")
    ours, theirs = scalars(tmp_path / "run"), scalars(tmp_path / "reference")
    assert [s for s, _ in ours["step/rec"]] == [s for s, _ in theirs["step/rec"]]
    assert [v for _, v in ours["valid/elbo"]] == pytest.approx([v for _, v in theirs["valid/elbo"]])


def test_tensorboard_off_and_no_carriage_returns_in_logs(tiny_corpus, make_config, tmp_path, capfd):
    from textvae.cli.common import show_info_lines

    show_info_lines()  # as the command line does (else the result depends on which tests ran before)
    config = make_config(tiny_corpus, train={"epochs": 1, "tensorboard": False, "progress": True})
    train(config, tmp_path / "run")
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))
    out, err = capfd.readouterr()
    assert "epoch 1: valid elbo" in out + err
    assert "\r" not in out + err  # stderr is not a terminal here: no progress bars


def test_test_metrics_hparams_and_the_posterior_projector(tiny_corpus, make_config, tmp_path):
    """After the test evaluation: test/* scalars, the hyper-parameters with the test metrics (the HPARAMS
    plugin's summaries in the run's own event file) and the test posterior means with their labels."""
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.plugins.hparams.metadata import EXPERIMENT_TAG, SESSION_START_INFO_TAG

    config = make_config(tiny_corpus, train={"epochs": 1}, eval={"limit": 12})
    results = train(config, tmp_path / "run")
    run = tmp_path / "run"
    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    for metric in ("nll", "elbo", "kl", "mi", "au", "best_epoch"):
        assert events.Scalars(f"test/{metric}")[0].value == pytest.approx(results[metric], rel=1e-6)
    assert "test/seed" not in tags["scalars"] and "test/n_sentences" not in tags["scalars"]
    # The hparams plugin's summaries: the experiment (hyper-parameter and metric names) and this run's values.
    content = events.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content[EXPERIMENT_TAG]).experiment
    assert {m.name.tag for m in experiment.metric_infos} >= {"test/nll", "test/kl", "test/mi", "test/au"}
    names = {h.name for h in experiment.hparam_infos}
    assert {"model.latent_dim", "train.epochs", "eval.limit", "strategies.vae", "seed"} <= names
    start = plugin_data_pb2.HParamsPluginData.FromString(content[SESSION_START_INFO_TAG]).session_start_info
    assert start.hparams["model.latent_dim"].number_value == 4
    assert start.hparams["data.batching"].string_value == "bucket"
    # The projector: test posterior means (12 sentences x 4 dimensions) with label and text, in split order.
    config_file = (run / "projector_config.pbtxt").read_text()
    assert 'tensor_name: "test_posterior_mean:' in config_file
    folder = run / config_file.split('tensor_path: "')[1].split('"')[0].rsplit("/", 1)[0]
    vectors = [line.split("\t") for line in (folder / "tensors.tsv").read_text().splitlines()]
    assert len(vectors) == 12 and all(len(v) == 4 for v in vectors)
    metadata = (folder / "metadata.tsv").read_text().splitlines()
    assert metadata[0] == "label\ttext"
    test_lines = (tiny_corpus / "test.txt").read_text().splitlines()[:12]
    assert metadata[1:] == test_lines  # label<TAB>text, in the order of the test file
    from textvae.probing.features import encode_posteriors
    from textvae.runs import load_run

    loaded = load_run(run)
    mu = encode_posteriors(loaded.model, loaded.vocab, [line.split("\t")[1] for line in test_lines], 8, None).mu
    np.testing.assert_allclose([[float(x) for x in v] for v in vectors], mu.numpy(), rtol=1e-4, atol=1e-9)
