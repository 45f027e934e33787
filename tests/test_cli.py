"""The CLI: bad input gets one line naming the key/file, exit code 2, no traceback."""

import json

from typer.testing import CliRunner

from textvae.cli.main import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    err = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(err) == 1, result.output
    for fragment in fragments:
        assert fragment in err[0], err[0]


def test_recipe_list():
    result = invoke("recipe", "--list")
    assert result.exit_code == 0
    assert "demo" in result.output and "kl-annealing" in result.output
    from textvae.resources import shipped_dir

    listed = result.output.split()
    recipes_dir = shipped_dir("recipes")
    every = [str(p.relative_to(recipes_dir).with_suffix("")).removeprefix("strategies/")
             for p in recipes_dir.rglob("*.toml") if p.parent.name not in ("datasets", "priors", "protocols")
             and p.parent.parent.name != "datasets" and p.name != "defaults.toml"]
    assert "dpvae/factor-vae-dp" in every and sorted(set(every) - set(listed)) == []
    protocols = [p.stem for p in (recipes_dir / "protocols").glob("*.toml")]
    assert "scale-vae" in protocols and set(protocols) <= set(listed)
    from textvae.priors import PRIORS
    from textvae.strategies import STRATEGIES

    lines = [" ".join(line.split()) for line in result.output.splitlines()]
    for registry in (STRATEGIES, PRIORS):  # each with its docstring's first line (docs/extending.md)
        for name in registry.names():
            assert f"{name} {registry.entry(name).help}" in lines, name


def test_recipe_unknown_names_and_keys():
    assert_one_line_error(invoke("recipe", "demo", "scale-vea", "--dry-run"), "unknown recipe strategy 'scale-vea'")
    assert_one_line_error(invoke("recipe", "demo", "vae", "--set", "model.latent_dimm=3", "--dry-run"),
                          "unknown key 'model.latent_dimm'", "did you mean 'latent_dim'")
    assert_one_line_error(invoke("recipe", "demo", "vae", "--set", "train.epochs=two", "--dry-run"),
                          "key 'train.epochs' expects int, got 'two'")


def test_recipe_trains_evaluates_and_resumes(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    args = ["recipe", "demo", "kl-annealing", "--out", out, "--set", f"data.corpus={json.dumps(str(tiny_corpus))}",
            "--set", "model.embed_dim=8", "--set", "model.enc_hidden=8", "--set", "model.dec_hidden=8",
            "--set", "model.latent_dim=2", "--set", "train.epochs=1", "--set", "train.progress=false",
            "--set", "eval.iw_samples=3"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "test results" in result.output and "nll" in result.output and "au" in result.output
    assert (out / "results.json").is_file()
    # train.progress=false hides bars, not the per-epoch summary
    assert [line for line in result.output.splitlines() if line.startswith("epoch ")] == [
        line for line in result.output.splitlines() if line.startswith("epoch 1: valid elbo ")]
    assert "epoch 1: valid elbo" in result.output
    resumed = invoke("train", "--resume", out, "--set", "train.epochs=2", "--no-progress")
    assert resumed.exit_code == 0, resumed.output
    assert "epoch 2: valid elbo" in resumed.output and "\r" not in resumed.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_progress_bars_draw_only_on_a_terminal_and_when_asked(capsys):
    import io

    from tqdm.auto import tqdm

    from textvae.progress import bars_disabled

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    drawn = {}
    for name, stream, progress in [("tty", Terminal(), True), ("file", io.StringIO(), True),
                                   ("off", Terminal(), False)]:
        for _ in tqdm(range(3), file=stream, disable=bars_disabled(progress), mininterval=0):
            pass
        drawn[name] = stream.getvalue()
    assert "\r" in drawn["tty"] and drawn["file"] == "" and drawn["off"] == ""


def test_recipe_and_train_take_no_progress(tiny_corpus, tmp_path):
    result = invoke("recipe", "demo", "vae", "--no-progress", "--dry-run")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["train"]["progress"] is False
    for command in ("recipe", "train", "eval"):
        assert "--no-progress" in invoke(command, "--help").output


def test_train_config_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nlatent_dim = 'x'\n")
    assert_one_line_error(invoke("train", bad), "bad.toml", "key 'model.latent_dim' expects int")
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\n")
    assert_one_line_error(invoke("train", broken), "broken.toml: invalid TOML")
    assert_one_line_error(invoke("train", tmp_path / "missing.toml"), "missing.toml: no such config file")


def test_missing_corpus_says_how_to_get_it(tmp_path):
    result = invoke("recipe", "yahoo", "vae", "--data-dir", tmp_path, "--out", tmp_path / "r")
    assert_one_line_error(result, "corpus 'yahoo' is not in", "textvae data")


def test_bad_data_files_are_named(tiny_corpus, tmp_path):
    (tiny_corpus / "valid.txt").write_bytes(b"1\tgood food\n0\tbad \xff place\n")
    result = invoke("recipe", "demo", "vae", "--set", f"data.corpus={json.dumps(str(tiny_corpus))}",
                    "--out", tmp_path / "r")
    assert_one_line_error(result, "valid.txt:2", "not valid UTF-8")
    (tiny_corpus / "valid.txt").write_text("1\tgood food\nno label here\n")
    result = invoke("recipe", "demo", "vae", "--set", f"data.corpus={json.dumps(str(tiny_corpus))}",
                    "--out", tmp_path / "r")
    assert_one_line_error(result, "valid.txt:2", "no 'label<TAB>text' label")
    (tiny_corpus / "valid.txt").write_text("")
    result = invoke("recipe", "demo", "vae", "--set", f"data.corpus={json.dumps(str(tiny_corpus))}",
                    "--out", tmp_path / "r")
    assert_one_line_error(result, "valid.txt: file is empty")


def test_version_is_the_installed_one_and_needs_no_command():
    from importlib.metadata import version

    import textvae

    for args in (["--version"], ["--version", "eval"]):  # eager: printed before a command is parsed
        result = invoke(*args)
        assert result.exit_code == 0 and result.output == f"textvae {version('textvae')}\n", result.output
    assert textvae.__version__ == version("textvae")


def test_commands_that_load_a_run_default_to_the_device_training_uses():
    import typer.main

    from textvae.config import TrainConfig

    commands = typer.main.get_command(app).commands
    for name in ("eval", "probe", "generate", "reconstruct", "interpolate"):
        device = next(p for p in commands[name].params if p.name == "device")
        assert device.default == TrainConfig().device == "auto", name
