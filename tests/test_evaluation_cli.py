"""``textvae eval`` and ``textvae plot`` on a tiny trained run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from textvae.cli.main import app
from textvae.rundir import RunDir
from textvae.training import train

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def run_dir(tiny_corpus, make_config, tmp_path):
    run = tmp_path / "run"
    train(make_config(tiny_corpus, train={"epochs": 2}), run, evaluate_test=False)
    return run


def test_eval_prints_a_table_and_writes_json_beside_the_run(run_dir):
    result = invoke("eval", run_dir, "--split", "valid", "--iw-samples", "7", "--mi-estimator", "per-batch",
                    "--max-tokens", "50", "--precision", "bfloat16", "--no-progress")
    assert result.exit_code == 0, result.output
    assert "nll" in result.output and "per-batch" in result.output
    saved = json.loads((run_dir / "eval_valid.json").read_text())
    assert saved["iw_samples"] == 7 and saved["mi_estimator"] == "per-batch" and saved["split"] == "valid"
    assert saved["precision"] == "bfloat16"
    assert saved["n_sentences"] == 20
    assert saved["checkpoint"] == "checkpoints/best.pt"  # relative to the run: no machine path
    assert "knn_accuracy" not in saved  # eval.latent_clutter is off by default
    for key in ("nll", "elbo", "rec", "kl", "mi", "au", "ppl", "iw_ppl"):
        assert isinstance(saved[key], (int, float)), key


def test_eval_defaults_come_from_the_run_config_and_are_reproducible(run_dir, tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert invoke("eval", run_dir, "--limit", "5", "--out", first).exit_code == 0
    assert invoke("eval", run_dir, "--limit", "5", "--out", second, "--no-progress").exit_code == 0
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert a == b
    assert (a["split"], a["n_sentences"], a["iw_samples"], a["mi_estimator"], a["precision"]) == (
        "test", 5, 5, "whole-set", "float32")


def test_eval_errors_are_one_line(tmp_path):
    result = invoke("eval", tmp_path / "nowhere")
    assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output
    bad = invoke("eval", tmp_path, "--mi-estimator", "batch")
    assert bad.exit_code == 2 and "whole-set" in bad.output


def test_plot_draws_training_curves_of_several_runs(run_dir, tiny_corpus, make_config, tmp_path):
    other = tmp_path / "other"
    train(make_config(tiny_corpus, train={"epochs": 2, "diagnostics": False}), other, evaluate_test=False)
    out = tmp_path / "curves.png"
    result = invoke("plot", run_dir, other, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    single = invoke("plot", run_dir)
    assert single.exit_code == 0 and (run_dir / "training_curves.png").is_file()


def test_plot_names_a_missing_or_broken_metrics_file(run_dir, tmp_path):
    result = invoke("plot", tmp_path)
    assert result.exit_code == 2 and "metrics.jsonl: no such file" in result.output
    (run_dir / "metrics.jsonl").write_text('{"epoch": 1, "valid": {}}\n{broken\n')
    result = invoke("plot", run_dir)
    assert result.exit_code == 2 and "metrics.jsonl:2: invalid JSON" in result.output


def test_plot_labels_are_the_shortest_distinguishing_suffixes(tmp_path):
    from textvae.report.plots import run_labels

    runs = [tmp_path / "a" / "bn-vae" / "seed1", tmp_path / "a" / "bn-vae" / "seed2", tmp_path / "b" / "vae" / "seed1"]
    assert run_labels(runs) == ["bn-vae/seed1", "bn-vae/seed2", "vae/seed1"]
    assert run_labels(runs[:1]) == ["seed1"]


def test_latent_clutter_scores_the_labels_from_the_posterior_means(tiny_corpus, make_config, tmp_path):
    run = tmp_path / "clutter"
    results = train(make_config(tiny_corpus, train={"epochs": 1}, eval={"latent_clutter": True}), run)
    assert 0.0 <= results["knn_accuracy"] <= 1.0 and (results["knn_neighbours"], results["knn_folds"]) == (15, 5)
    assert json.loads((run / "results.json").read_text())["knn_accuracy"] == results["knn_accuracy"]
    result = invoke("eval", run, "--no-progress", "--out", tmp_path / "again.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "again.json").read_text())["knn_accuracy"] == results["knn_accuracy"]
    # The means behind the scores: the training's record in the run, the re-evaluation's beside its own record.
    latents = RunDir(run).read_latents("test")
    n_test = len((tiny_corpus / "test.txt").read_text().splitlines())
    assert len(latents["means"]) == len(latents["labels"]) == n_test and len(latents["means"][0]) == 4
    # Batches reorder the sentences; the record says where each row's sentence is in the split file.
    file_labels = [line.split("\t")[0] for line in (tiny_corpus / "test.txt").read_text().splitlines()]
    names = sorted(set(line.split("\t")[0] for line in (tiny_corpus / "train.txt").read_text().splitlines()))
    assert sorted(latents["index"]) == list(range(n_test))
    assert [file_labels[i] for i in latents["index"]] == [names[label] for label in latents["labels"]]
    again = json.loads((tmp_path / "again.latents.json").read_text())
    assert sorted(zip(again["labels"], map(tuple, again["means"]))) == sorted(
        zip(latents["labels"], map(tuple, latents["means"])))


def test_latent_clutter_separates_labels_that_the_means_separate():
    import numpy as np

    from textvae.latent_metrics.clutter import component_clutter

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    apart = component_clutter(np.eye(2)[labels % 2] * 5 + labels[:, None] // 2 * [0, 10] + rng.normal(size=(200, 2)),
                              labels)
    mixed = component_clutter(rng.normal(size=(200, 2)), labels)
    assert apart["knn_accuracy"] > 0.95 and apart["silhouette"] > 0.5
    assert mixed["knn_accuracy"] < 0.5 and abs(mixed["silhouette"]) < 0.2
    assert np.isnan(component_clutter(np.zeros((200, 2)), labels)["silhouette"])  # collapsed: no spread


def test_latent_clutter_needs_labels(tmp_path, make_config):
    from conftest import write_corpus

    corpus = write_corpus(tmp_path / "plain", labeled=False)
    from textvae.errors import DataError

    with pytest.raises(DataError, match="eval.latent_clutter needs a labeled test split"):
        train(make_config(corpus, train={"epochs": 1}, eval={"latent_clutter": True}), tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # refused before any training
