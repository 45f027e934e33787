import json

import pytest
from typer.testing import CliRunner

from textvae.cli.main import app
from textvae.config import RunConfig
from textvae.report.tables import aggregate, read_run, render_markdown


def fake_run(root, recipe, seed, prior="standard-normal", **results):
    run = root / recipe / f"seed{seed}"
    run.mkdir(parents=True)
    cfg = RunConfig.from_dict({"name": f"ptb/{recipe}", "seed": seed, "prior": {"name": prior}})
    cfg.save(run / "config.json")
    (run / "results.json").write_text(json.dumps({"mi_estimator": "whole-set", **results}))
    return run


def test_aggregate_mean_and_sample_std(tmp_path):
    runs = [read_run(fake_run(tmp_path, "vae", s, nll=v, kl=0.1, mi=0.0, au=0)) for s, v in [(1, 100.0), (2, 102.0)]]
    table = aggregate(runs, ["nll", "kl"])
    mean, std, n = table[("vae", "standard-normal")]["nll"]
    assert (mean, n) == (101.0, 2)
    assert std == pytest.approx(2 ** 0.5)


def test_markdown_follows_published_order_with_published_values(tmp_path):
    fake_run(tmp_path, "scale-vae", 1, nll=90.0, kl=5.0, mi=4.0, au=32)
    fake_run(tmp_path, "vae", 1, nll=95.0, kl=0.0, mi=0.0, au=0)
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "t.md")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "t.md").read_text()
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[1].startswith("| VAE | 1 | 95.00")
    assert "| 328.6 | 0.2 | 0.2 | 0.8 |" in lines[1]
    assert lines[2].startswith("| Scale-VAE (0.7, 1 \\| 0.7, 7) | 1 | 90.00")
    assert "whole-set" in text


def test_report_without_runs_is_an_error(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no finished runs" in result.output
