import json

import pytest
from tiny_vae import save_run
from typer.testing import CliRunner

from textvae.cli.main import app

MODEL = {"embed_dim": 16, "enc_hidden": 16, "dec_hidden": 16, "latent_dim": 4, "init": "pytorch"}
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def run_dir(make_config, tiny_corpus, tmp_path):
    return save_run(make_config(tiny_corpus, model=MODEL), tmp_path / "run")


def test_generate_is_deterministic_under_a_seed(run_dir, tmp_path):
    args = ("generate", run_dir, "-n", 6, "--mode", "sample", "--top-p", 0.9, "--temperature", 0.8,
            "--max-length", 12, "--seed", 3)
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()  # the sentences; progress lines go to stderr
    assert len(lines) == 6 and all(len(line.split()) <= 12 for line in lines)
    assert invoke(*args).stdout == first.stdout
    assert invoke(*args[:-1], 4).stdout != first.stdout
    out = tmp_path / "samples.txt"
    beam = invoke("generate", run_dir, "-n", 3, "--mode", "beam", "--beam-size", 2, "--out", out)
    assert beam.exit_code == 0 and len(out.read_text().splitlines()) == 3


def test_generate_metrics_with_language_model_perplexity(run_dir, make_config, tiny_corpus, tmp_path):
    lm = save_run(make_config(tiny_corpus, model={**MODEL, "kind": "lstm-lm"}), tmp_path / "lm")
    result = invoke("generate", run_dir, "-n", 8, "--mode", "sample", "--max-length", 10, "--metrics", "--lm", lm)
    assert result.exit_code == 0, result.output
    saved = json.loads((run_dir / "generation" / "sample-n8-seed0.json").read_text())
    for key in ("dist-1", "dist-4", "ent-1", "self-bleu", "gram-2", "gram-4", "lm-ppl"):
        assert key in saved["metrics"], key
    assert saved["settings"]["decoding"]["mode"] == "sample" and "gram-n" in saved["definitions"]
    assert "lm-ppl" in result.output


def test_reconstruct_and_interpolate(run_dir, tmp_path):
    inputs = tmp_path / "in.txt"
    inputs.write_text("the food was good\nslow service\n")
    result = invoke("reconstruct", run_dir, "nice place", "--input", inputs, "--max-length", 8)
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.output.splitlines() if "\t" in line]
    assert [r[0] for r in rows] == ["nice place", "the food was good", "slow service"]
    assert "rec-bleu:" in result.output
    path = invoke("interpolate", run_dir, "the food was good", "slow service", "--steps", 4)
    assert path.exit_code == 0, path.output
    assert [line.split("\t")[0] for line in path.output.splitlines()] == ["0.00", "0.33", "0.67", "1.00"]


def test_generation_commands_report_bad_input_in_one_line(run_dir, tmp_path):
    for args, fragment in [
        (("generate", run_dir, "--mode", "nucleus"), "decoding mode must be"),
        (("generate", run_dir, "--mode", "sample", "--top-p", 0), "top_p must be in (0, 1]"),
        (("generate", tmp_path / "nowhere"), "not a textvae run folder"),
        (("reconstruct", run_dir), "nothing to reconstruct"),
        (("reconstruct", run_dir, "--input", tmp_path / "missing.txt"), "input file not found"),
        (("interpolate", run_dir, "a", "b", "--steps", 1), "steps >= 2"),
    ]:
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and fragment in result.output, result.output
