"""``textvae report``: a run counts once whatever folders hold it, and the notes name every setting that
differs from the recipes or the published protocol, and the MI cap of a small test set."""

import shutil

from typer.testing import CliRunner

from textvae import recipes
from textvae.cli.main import app
from textvae.config import RunConfig
from textvae.report.records import read_records
from textvae.report.tables import build_table
from textvae.rundir import RunDir

EVAL = {"mi_estimator": "whole-set", "split": "test", "limit": None, "n_sentences": 100, "n_targets": 1500,
        "iw_samples": 100, "best_epoch": 5, "epochs": 6}


def recipe_run(root, strategy, seed, overrides=(), **results):
    """A finished run of recipe demo/STRATEGY as a sweep writes it (config.json + results.json)."""
    run_dir = root / "demo" / strategy / f"seed{seed}"
    config = RunConfig.from_dict(recipes.resolve_dict("demo", strategy, list(overrides), seed))
    with RunDir(run_dir) as run:
        run.claim(fresh=True)
        run.write_config(config.to_dict())
        run.write_results({**EVAL, **results})
    return run_dir


def invoke(*args):
    return CliRunner().invoke(app, ["report", *map(str, args)])


def table_line(output, label):
    return next(line for line in output.splitlines() if line.startswith(f"| {label} |"))


def test_the_same_runs_in_two_sweep_folders_count_once(tmp_path):
    """The issue's example: two sweep folders with the same seeds showed `VAE | 4 | ...`; it is 2 seeds."""
    recipe_run(tmp_path / "sw1", "vae", 1, nll=58.17, kl=0.0, mi=0.0, au=0)
    recipe_run(tmp_path / "sw1", "vae", 2, nll=58.91, kl=0.0, mi=0.0, au=0)
    shutil.copytree(tmp_path / "sw1", tmp_path / "sw2")
    one = invoke(tmp_path / "sw1")
    both = invoke(tmp_path / "sw1", tmp_path / "sw2")
    assert both.exit_code == 0, both.output
    assert table_line(both.output, "VAE").startswith("| VAE | 2 | 58.54 ± 0.52 |")
    assert table_line(both.output, "VAE") == table_line(one.output, "VAE")
    # A progress-only setting (train.progress) does not make another run.
    config = RunDir(tmp_path / "sw2" / "demo" / "vae" / "seed1").read_config()
    config["train"]["progress"] = False
    RunDir(tmp_path / "sw2" / "demo" / "vae" / "seed1").write_config(config)
    assert table_line(invoke(tmp_path / "sw1", tmp_path / "sw2").output, "VAE").startswith("| VAE | 2 |")


def test_the_same_run_with_other_numbers_is_refused_naming_both_folders(tmp_path):
    first = recipe_run(tmp_path / "sw1", "vae", 1, nll=58.17, kl=0.0, mi=0.0, au=0)
    second = recipe_run(tmp_path / "sw2", "vae", 1, nll=60.0, kl=0.0, mi=0.0, au=0)
    result = invoke(tmp_path / "sw1", tmp_path / "sw2")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert str(first) in result.output and str(second) in result.output
    assert "same run (demo/vae on demo, seed 1) with different results (nll)" in result.output


def test_another_seed_is_another_run(tmp_path):
    recipe_run(tmp_path / "sw1", "vae", 1, nll=58.0, kl=0.0, mi=0.0, au=0)
    recipe_run(tmp_path / "sw2", "vae", 2, nll=59.0, kl=0.0, mi=0.0, au=0)
    assert [len(row) for row in [read_records([tmp_path])]] == [2]


def test_notes_name_settings_that_differ_from_the_recipe_and_the_protocol(tmp_path):
    narrow = ["model.dec_hidden=64", "strategies.kl-annealing.warm_up=1", "eval.limit=100"]
    recipe_run(tmp_path, "bn-vae", 1, narrow, nll=40.0, kl=5.0, mi=3.0, au=16, limit=100)
    recipe_run(tmp_path, "kl-annealing", 1, narrow, nll=41.0, kl=1.0, mi=1.0, au=2, limit=100)
    notes = build_table("table1", read_records([tmp_path]), "yahoo").notes
    recipe = next(n for n in notes if n.startswith("Differs from the recipe:"))
    assert "model.dec_hidden = 64 (recipe 128)" in recipe and "in " not in recipe.split("64 (recipe 128)")[1][:4]
    assert "strategies.kl-annealing.warm_up = 1 (recipe 3)" in recipe
    assert "eval.limit = 100 (recipe unset)" in recipe
    protocol = next(n for n in notes if n.startswith("Differs from the published protocol (the yahoo recipe):"))
    for part in ("model.embed_dim = 64 (yahoo protocol 512)", "model.dec_hidden = 64 (yahoo protocol 1024)",
                 "train.epochs = 6 (yahoo protocol 100)", "strategies.kl-annealing.warm_up = 1 (yahoo protocol 10)",
                 "eval.iw_samples = 100 (yahoo protocol 500)"):
        assert part in protocol
    # The recipe's own BN-VAE setting is no deviation.
    assert "strategies.bn-vae.gamma" not in recipe


def test_a_setting_of_some_rows_names_them(tmp_path):
    recipe_run(tmp_path, "bn-vae", 1, ["strategies.kl-annealing.warm_up=1"], nll=40.0, kl=5.0, mi=3.0, au=16)
    recipe_run(tmp_path, "vae", 1, nll=41.0, kl=0.0, mi=0.0, au=0)
    notes = build_table("table1", read_records([tmp_path]), "yahoo").notes
    assert "strategies.kl-annealing.warm_up = 1 (recipe 3) in BN-VAE (0.6)" in " ".join(notes)


def test_mi_near_log_n_is_warned(tmp_path):
    recipe_run(tmp_path, "bn-vae", 1, nll=40.0, kl=9.0, mi=4.5, au=16)
    recipe_run(tmp_path, "vae", 1, nll=41.0, kl=0.0, mi=0.0, au=0)
    result = invoke(tmp_path, "--column", "yahoo")
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.output.splitlines() if line.startswith("Warning:"))
    assert "MI cannot exceed log N = 4.61 nats on N = 100 test sentences" in warning
    assert "at the cap: BN-VAE (0.6) (4.50)" in warning and "VAE (0.00)" not in warning


def test_no_mi_warning_far_below_the_cap(tmp_path):
    recipe_run(tmp_path, "vae", 1, nll=41.0, kl=0.5, mi=0.4, au=1)
    assert "Warning" not in invoke(tmp_path).output


def test_rows_of_one_recipe_on_two_corpora_name_the_settings_they_differ_in(tmp_path):
    from textvae.report.records import group_rows

    recipe_run(tmp_path / "a", "bn-vae", 1, ["strategies.bn-vae.gamma=2.5"], nll=40.0, kl=5.0, mi=3.0, au=16)
    recipe_run(tmp_path / "b", "bn-vae", 1, ["strategies.bn-vae.gamma=1.5", 'data.corpus="other"'],
               nll=41.0, kl=2.0, mi=1.0, au=2)
    rows = group_rows(read_records([tmp_path]))
    assert sorted((row.corpus, row.distinct["strategies.bn-vae.gamma"]) for row in rows) == [
        ("demo", 2.5), ("other", 1.5)]
    assert all("data.corpus" not in row.distinct for row in rows)  # the corpus has its own column
