import json

from test_probe import MODEL, write_probe_files
from tiny_vae import save_run
from typer.testing import CliRunner

from textvae.cli.main import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_probe_prints_and_saves_the_row(make_config, tiny_corpus, tmp_path):
    run_dir = save_run(make_config(tiny_corpus, model=MODEL), tmp_path / "run")
    data = write_probe_files(tmp_path / "short_yelp")
    result = invoke("probe", run_dir, "--data", data, "--subsets", "10,30")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("| 10 | 30 |")
    assert any(line.startswith("| sgd-linear |") for line in lines)
    assert any(line.startswith("| sklearn-logreg |") for line in lines)
    saved = json.loads((run_dir / "probe" / "short_yelp.json").read_text())
    assert set(saved["probes"]) == {"sgd-linear", "sklearn-logreg"}
    assert set(saved["probes"]["sgd-linear"]["accuracy"]) == {"10", "30"}
    assert saved["features"].startswith("posterior mean")
    # no machine path: the record stays true when the run folder moves
    assert saved["checkpoint"] == "checkpoints/best.pt" and saved["data"] == "short_yelp" and "run" not in saved
    only = invoke("probe", run_dir, "--data", data, "--subsets", "10", "--probes", "sklearn-logreg",
                  "--out", tmp_path / "row.json")
    assert only.exit_code == 0, only.output
    assert set(json.loads((tmp_path / "row.json").read_text())["probes"]) == {"sklearn-logreg"}


def test_probe_bad_input_is_one_line(make_config, tiny_corpus, tmp_path):
    run_dir = save_run(make_config(tiny_corpus, model=MODEL), tmp_path / "run")
    data = write_probe_files(tmp_path / "short_yelp")
    for args, fragment in [
        (("--data", tmp_path / "nowhere"), "data folder not found"),
        (("--data", data, "--subsets", "ten"), "--subsets: expected a comma-separated list"),
        (("--data", data, "--subsets", "100"), "no train.100.txt"),
        (("--data", data, "--subsets", "10", "--probes", "mlp"), "unknown probe 'mlp'"),
    ]:
        result = invoke("probe", run_dir, *args)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and fragment in result.output, result.output


def test_probe_runs_on_the_embedded_demo_corpus(make_config, tiny_corpus, tmp_path):
    run_dir = save_run(make_config(tiny_corpus, model=MODEL), tmp_path / "run")
    result = invoke("probe", run_dir, "--data", "demo", "--subsets", "100,500", "--probes", "sklearn-logreg")
    assert result.exit_code == 0, result.output
    saved = json.loads((run_dir / "probe" / "demo.json").read_text())
    assert set(saved["probes"]["sklearn-logreg"]["accuracy"]) == {"100", "500"}
