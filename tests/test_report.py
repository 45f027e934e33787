import csv
import io
import json

import pytest
from typer.testing import CliRunner

from textvae.cli.main import app
from textvae.config import RunConfig, apply_overrides
from textvae.errors import ConfigError
from textvae.report.records import group_rows, read_records
from textvae.report.render import render
from textvae.report.tables import build_table
from textvae.rundir import RunDir, write_json

EVAL = {"mi_estimator": "whole-set", "split": "test", "limit": None, "n_sentences": 100, "n_targets": 1500,
        "iw_samples": 500, "best_epoch": 5, "epochs": 5}


def fake_run(root, recipe, seed, corpus="ptb", overrides=(), probe=None, generation=None, **results):
    """A finished run folder as the trainer writes it (config.json + results.json), plus records."""
    run_dir = root / corpus / recipe / "-".join(overrides) / f"seed{seed}"
    config = {"name": f"{corpus}/{recipe}", "seed": seed, "data": {"corpus": corpus}}
    config = RunConfig.from_dict(apply_overrides(config, list(overrides)))
    with RunDir(run_dir) as run:
        run.claim(fresh=True)
        run.write_config(config.to_dict())
        run.write_results({**EVAL, **results})
    if probe is not None:
        write_json(RunDir(run_dir).probe_record("short-yelp"), {"name": config.name, "seed": 0, "probes": probe})
    if generation is not None:
        write_json(RunDir(run_dir).generation_record("greedy-n100-seed0"),
                   {"metrics": generation, "settings": {"n": 100, "seed": 0, "decoding": {"mode": "greedy"}}})
    return run_dir


def invoke(*args):
    return CliRunner().invoke(app, ["report", *map(str, args)])


def test_rows_average_seeds_and_follow_the_published_order(tmp_path):
    fake_run(tmp_path, "scale-vae", 1, nll=90.0, kl=5.0, mi=4.0, au=32)
    fake_run(tmp_path, "vae", 1, nll=100.0, kl=0.0, mi=0.0, au=0)
    fake_run(tmp_path, "vae", 2, nll=102.0, kl=0.0, mi=0.0, au=0)
    result = invoke(tmp_path, "--column", "yahoo", "--out", tmp_path / "t.md")
    assert result.exit_code == 0, result.output
    lines = [line for line in (tmp_path / "t.md").read_text().splitlines() if line.startswith("| ")]
    assert lines[1].startswith("| VAE | 2 | 101.00 ± 1.41 | 0.00 ± 0.00")
    assert lines[1].endswith("| 328.6 | 0.2 | 0.2 | 0.8 |")
    assert lines[2].startswith("| Scale-VAE (0.7, 1 \\| 0.7, 7) | 1 | 90.00 | 5.00")
    text = (tmp_path / "t.md").read_text()
    assert "corpus ptb" in text and "MI estimator: whole-set" in text and "100 epochs" in text


def test_mixed_corpora_and_configs_never_share_a_row(tmp_path):
    """The bug report: a PTB run (NLL 100) and a demo run (NLL 43) were averaged into '71.50 ± 40.31'."""
    fake_run(tmp_path, "vae", 1, corpus="ptb", nll=100.0, kl=0.0, mi=0.0, au=0)
    fake_run(tmp_path, "vae", 1, corpus="demo", nll=43.0, kl=0.0, mi=0.0, au=0)
    fake_run(tmp_path, "vae", 2, corpus="demo", overrides=["train.epochs=20"], nll=41.0, kl=0.0, mi=0.0, au=0)
    rows = group_rows(read_records([tmp_path]))
    assert sorted((r.corpus, r.seeds, tuple(r.distinct.items())) for r in rows) == [
        ("demo", 1, (("train.epochs", 20),)), ("demo", 1, (("train.epochs", 100),)),
        ("ptb", 1, (("train.epochs", 100),))]
    result = invoke(tmp_path)
    assert result.exit_code == 0, result.output
    assert "71.50" not in result.output
    assert "| VAE [train.epochs=20] | demo | 1 | 41.00 |" in result.output
    assert "| VAE [train.epochs=100] | ptb | 1 | 100.00 |" in result.output


def test_runs_evaluated_differently_are_refused_in_one_row(tmp_path):
    fake_run(tmp_path, "vae", 1, nll=100.0, kl=0.0, mi=0.0, au=0)
    fake_run(tmp_path, "vae", 2, nll=90.0, kl=0.0, mi=0.0, au=0, n_targets=1200)  # other test data, same config
    result = invoke(tmp_path)
    assert result.exit_code == 2
    assert result.output.startswith("error: refusing to average ptb/vae on ptb: its runs were evaluated with "
                                    "different n_targets (1200, 1500)")
    assert len(result.output.strip().splitlines()) == 1


def test_merge_averages_over_a_key_but_never_over_data_or_evaluation(tmp_path):
    fake_run(tmp_path, "vae", 1, overrides=["train.clip_grad=5.0"], nll=100.0, kl=0.0, mi=0.0, au=0)
    fake_run(tmp_path, "vae", 2, overrides=["train.clip_grad=1.0"], nll=102.0, kl=0.0, mi=0.0, au=0)
    assert len(group_rows(read_records([tmp_path]))) == 2
    assert [r.seeds for r in group_rows(read_records([tmp_path]), merge=("train.clip_grad",))] == [2]
    for key in ("data.corpus", "eval.iw_samples"):
        result = invoke(tmp_path, "--merge", key)
        assert result.exit_code == 2 and "refusing to average runs of different corpora or evaluation" in result.output


def test_unknown_table_or_column_is_an_error(tmp_path):
    fake_run(tmp_path, "vae", 1, nll=100.0, kl=0.0, mi=0.0, au=0)
    result = invoke(tmp_path, "--column", "yahho")
    assert result.exit_code == 2 and "'yahho'" in result.output and "did you mean 'yahoo'" in result.output
    result = invoke(tmp_path, "--table", "tabel1")
    assert result.exit_code == 2 and "unknown table" in result.output and "table1" in result.output
    assert invoke(tmp_path, "--format", "html").exit_code == 2


def test_report_without_runs_is_an_error(tmp_path):
    result = invoke(tmp_path)
    assert result.exit_code == 2 and "no finished runs" in result.output


def test_csv_and_latex(tmp_path):
    fake_run(tmp_path, "vae", 1, nll=100.0, kl=0.0, mi=0.0, au=0)
    fake_run(tmp_path, "vae", 2, nll=102.0, kl=0.0, mi=0.0, au=0)
    table = build_table("table1", read_records([tmp_path]), "yelp")
    rows = list(csv.DictReader(io.StringIO(render(table, "csv"))))
    assert rows[0]["model"] == "VAE" and float(rows[0]["NLL"]) == 101.0
    assert float(rows[0]["NLL std"]) == pytest.approx(2 ** 0.5) and rows[0]["published NLL (yelp)"] == "358.0"
    latex = render(table, "latex")
    assert r"$101.00 \pm 1.41$" in latex and r"\begin{tabular}" in latex and "±" not in latex


PROBE = {"sgd-linear": {"accuracy": {"100": 70.0, "1000": 80.0}}, "sklearn-logreg": {"accuracy": {"100": 72.0,
                                                                                                  "1000": 81.0}}}


def test_table4_from_probe_records(tmp_path):
    fake_run(tmp_path, "bn-vae", 1, corpus="demo", probe=PROBE, nll=40.0, kl=5.0, mi=3.0, au=16)
    second = {p: {"accuracy": {n: v + 2 for n, v in r["accuracy"].items()}} for p, r in PROBE.items()}
    fake_run(tmp_path, "bn-vae", 2, corpus="demo", probe=second, nll=40.0, kl=5.0, mi=3.0, au=16)
    fake_run(tmp_path, "lstm-lm", 1, corpus="demo", nll=41.0)  # no probe record: not a row
    result = invoke(tmp_path, "--table", "table4", "--figure", tmp_path / "t4.png")
    assert result.exit_code == 0, result.output
    assert "| BN-VAE (0.6) | short-yelp | sgd-linear | 2 | 71.0 ± 1.4 | 81.0 ± 1.4 | 85.4 | 89.8 |" in result.output
    assert "| BN-VAE (0.6) | short-yelp | sklearn-logreg | 2 | 73.0 ± 1.4 | 82.0 ± 1.4 |" in result.output
    assert "LSTM" not in result.output and (tmp_path / "t4.png").stat().st_size > 0
    assert "no probe records" in invoke(tmp_path / "demo" / "lstm-lm", "--table", "table4").output


def test_table5_from_generation_records(tmp_path):
    metrics = {"lm-ppl": 50.0, "gram-2": 0.9, "dist-1": 0.02, "self-bleu": 30.0}
    fake_run(tmp_path, "bn-vae", 1, generation=metrics, nll=40.0, kl=5.0, mi=3.0, au=16)
    fake_run(tmp_path, "bn-vae", 2, generation={**metrics, "lm-ppl": 54.0}, nll=40.0, kl=5.0, mi=3.0, au=16)
    result = invoke(tmp_path, "--table", "table5")
    assert result.exit_code == 0, result.output
    assert "| BN-VAE (0.6) | greedy-n100-seed0 | 2 | 52.00 ± 2.83 | 90.00 ± 0.00 | 2.00 ± 0.00 | 30.00 ± 0.00 |" \
        in result.output
    assert "| BN-VAE (0.6) (published, yahoo) | – | – | 260.44 | 97.77 | 0.82 | – |" in result.output


def test_table3_grid_and_nll_mi_figure(tmp_path):
    for des_std, nll in ((0.7, 40.0), (0.9, 39.0)):
        for seed in (1, 2):
            fake_run(tmp_path, "scale-vae", seed, overrides=[f"strategies.scale-vae.des_std={des_std}"],
                     nll=nll + seed, kl=5.0, mi=4.0, au=32)
    result = invoke(tmp_path, "--table", "table3")
    assert result.exit_code == 0, result.output
    assert "| scale-vae | 0.7 | 2 | 41.50 ± 0.71 |" in result.output
    assert "| scale-vae | 0.9 | 2 | 40.50 ± 0.71 |" in result.output
    assert invoke(tmp_path, "--figure", tmp_path / "f.png").exit_code == 0 and (tmp_path / "f.png").is_file()
    with pytest.raises(ConfigError, match="no published Table 3"):
        build_table("table3", read_records([tmp_path]), "yahoo")


def test_clutter_table_from_latent_clutter_results(tmp_path):
    for mode, knn in (("fixed", 0.9), ("by-label", 0.5)):
        for seed in (1, 2):
            fake_run(tmp_path, "bn-vae", seed, corpus="synthetic", overrides=[f'data.batch_split="{mode}"'], nll=60.0,
                     kl=2.0, au=2, knn_accuracy=knn + seed / 100, silhouette=0.1, knn_neighbours=15, knn_folds=5)
    fake_run(tmp_path, "vae", 1, corpus="synthetic", nll=61.0, kl=0.0, au=0)  # scored without clutter: left out
    result = invoke(tmp_path, "--table", "clutter")
    assert result.exit_code == 0, result.output
    assert "| bn-vae [data.batch_split=by-label] | 2 | 0.515 ± 0.007 | 0.100 ± 0.000 |" in result.output
    assert "| bn-vae [data.batch_split=fixed] | 2 | 0.915 ± 0.007 |" in result.output
    assert "15-nearest-neighbour" in result.output and "| vae" not in result.output
    with pytest.raises(ConfigError, match="eval.latent_clutter=true"):
        build_table("clutter", read_records([tmp_path / "synthetic" / "vae"]))


def test_records_hold_one_entry_per_run_with_its_settings_and_relative_folder(tmp_path):
    for mode, knn in (("fixed", 0.9), ("by-label", 0.5)):
        for seed in (2, 1):
            fake_run(tmp_path, "bn-vae", seed, corpus="synthetic", overrides=[f'data.batch_split="{mode}"'], nll=60.0,
                     kl=2.0, au=2, knn_accuracy=knn + seed / 100, silhouette=0.1)
    out = tmp_path / "results" / "clutter.json"
    result = invoke(tmp_path, "--table", "clutter", "--records", out)
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())
    assert [(r["data.batch_split"], r["seed"], r["knn_accuracy"]) for r in records] == \
        [("by-label", 1, 0.51), ("by-label", 2, 0.52), ("fixed", 1, 0.91), ("fixed", 2, 0.92)]
    assert records[0]["run"] == '../synthetic/bn-vae/data.batch_split="by-label"/seed1'
    assert (records[0]["strategy"], records[0]["nll"], records[0]["au"]) == ("bn-vae", 60.0, 2)
    result = invoke(tmp_path, "--table", "table4", "--records", tmp_path / "t4.json")
    assert result.exit_code == 2 and "no per-run records for table4" in result.output


def test_clutter_figure_draws_each_rows_first_seed_and_needs_its_latents(tmp_path):
    from textvae.report.plots import clutter_means_figure

    runs = {}
    for mode in ("fixed", "by-label"):
        for seed in (2, 1):
            runs[mode, seed] = fake_run(tmp_path, "bn-vae", seed, corpus="synthetic",
                                        overrides=[f'data.batch_split="{mode}"'], nll=60.0, kl=2.0, au=2,
                                        knn_accuracy=0.5 + seed / 10, silhouette=0.1, split="test")
    fake_run(tmp_path, "scale-vae", 1, corpus="synthetic", nll=60.0, kl=2.0, au=2, knn_accuracy=0.7, silhouette=0.1)
    figure = tmp_path / "means.png"
    result = invoke(tmp_path, "--table", "clutter", "--figure", figure)
    assert result.exit_code == 2 and "latents_test.json" in result.output and not figure.exists()
    for (mode, seed), run in runs.items():
        RunDir(run).write_latents("test", [[seed, 0.0], [0.0, 1.0], [1.0, 1.0]], [0, 1, 2])
    RunDir(tmp_path / "synthetic" / "scale-vae" / "seed1").write_latents("test", [[0.0, 0.0]], [3])
    fig = clutter_means_figure(read_records([tmp_path]))
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.collections]
    # one line per strategy (bn-vae: two modes; scale-vae: one), the first seed's means in each panel
    assert len(panels) == 3 and [len(ax.collections[0].get_offsets()) for ax in panels] == [3, 3, 1]
    assert all(ax.collections[0].get_offsets()[0][0] == 1.0 for ax in panels[:2])
    assert "seed 1: 15-NN 0.60" in panels[0].get_title()
    assert invoke(tmp_path, "--table", "clutter", "--figure", figure).exit_code == 0 and figure.stat().st_size > 0
