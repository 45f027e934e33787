"""Every bad input of issues 13 and 21 ends clean: exit code 2, one line on stderr naming the culprit,
no traceback, and every file the command could have touched byte-identical afterwards."""

from __future__ import annotations

import errno
import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import tiny_config, write_corpus
from typer.testing import CliRunner

from textvae.cli.main import app
from textvae.config import RunConfig
from textvae.data import Vocab, load_corpus
from textvae.errors import ArgumentError, ArgumentTypeError, RunFolderError, TextVAEError
from textvae.evaluation.evaluate import _elbo_terms, perplexity
from textvae.generation import interpolate_texts, reconstruct_texts, sample_texts
from textvae.probing import load_probe_data
from textvae.runs import load_run
from textvae.training import StopAfter, train

runner = CliRunner()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    corpus = write_corpus(root / "corpus", n_train=30, n_eval=8)
    train(tiny_config(corpus), root / "run", data_dir=root / "data")
    return root


@pytest.fixture
def env(finished, tmp_path, monkeypatch):
    """A finished run, its corpus and a config file in tmp_path, which is also the working folder."""
    shutil.copytree(finished / "run", tmp_path / "run")
    corpus = write_corpus(tmp_path / "corpus", n_train=30, n_eval=8)
    monkeypatch.chdir(tmp_path)
    return tmp_path, corpus


def toml(path: Path, corpus: Path, **extra) -> Path:
    lines = [f'name = "{extra.pop("name", "tiny")}"', "seed = 1", "[data]", f'corpus = "{corpus}"', "batch_size = 8"]
    lines += [f'{k} = "{v}"' for k, v in extra.items()]
    lines += ["[model]", "embed_dim = 16", "enc_hidden = 16", "dec_hidden = 16", "latent_dim = 4",
              "[train]", "epochs = 1", "progress = false"]
    path.write_text("\n".join(lines) + "\n")
    return path


def vocab_file(path: Path, words: str) -> Path:
    path.write_text(words)
    return path


def latin1(path: Path) -> Path:
    path.write_bytes(b'seed = 1\nname = "caf\xe9"\n')
    return path


def nan_run(tmp: Path) -> Path:
    ckpt = torch.load(tmp / "run/checkpoints/best.pt", weights_only=True)
    ckpt["model"] = {k: v * math.nan if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    torch.save(ckpt, tmp / "run/checkpoints/best.pt")
    return tmp / "run"


def hf_script_folder(tmp: Path) -> Path:
    (tmp / "hfs").mkdir()
    (tmp / "hfs" / "hfs.py").write_text("import datasets\nclass Builder(datasets.GeneratorBasedBuilder):\n    pass\n")
    return tmp / "hfs"


def foreign_pt(tmp: Path) -> Path:
    torch.save({"weights": torch.ones(2)}, tmp / "foreign.pt")
    return tmp / "foreign.pt"


def a_file(tmp: Path) -> Path:
    (tmp / "a_file").write_text("x")
    return tmp / "a_file"


def checkpoints_format(tmp: Path, version) -> Path:
    """The finished run with both checkpoints claiming ``format = version``."""
    for name in ("best", "last"):
        path = tmp / f"run/checkpoints/{name}.pt"
        ckpt = torch.load(path, weights_only=True)
        ckpt["format"] = version
        torch.save(ckpt, path)
    return tmp / "run"


def checkpoint_edited(tmp: Path, key: str, value, names=("best", "last")) -> Path:
    for name in names:
        path = tmp / f"run/checkpoints/{name}.pt"
        ckpt = torch.load(path, weights_only=True)
        ckpt[key] = value
        torch.save(ckpt, path)
    return tmp / "run"


def run_file(tmp: Path, name: str, text: str) -> Path:
    """The finished run with ``name`` (relative to it) replaced by ``text``."""
    path = tmp / "run" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return tmp / "run"


def results_edited(tmp: Path, edit) -> Path:
    path = tmp / "run/results.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return tmp / "run"


def text_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def spec(tmp: Path, text: str, datasets: str = '["demo"]', strategies: str = '["vae"]') -> Path:
    """A sweep file that trains nothing: every case below must be refused before Ray starts."""
    return text_file(tmp / "s.toml", f"datasets = {datasets}\nstrategies = {strategies}\n{text}\n")


NO_UNK = "a\nb\n"


def sets(*overrides: str) -> str:
    return f"set = {json.dumps(list(overrides))}"


def without_valid(corpus: Path) -> Path:
    (corpus / "valid.txt").unlink()
    return corpus


def point_folder(tmp: Path, config_text: str) -> Path:
    """``tmp`` with the first point folder of :func:`sweep` holding a config.json of the text."""
    folder = tmp / "sw" / "runs" / "demo" / "vae" / "seed1"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(config_text)
    return tmp


def sweep(tmp: Path, spec_file: Path) -> list:
    return ["sweep", spec_file, "--out", tmp / "sw"]


# id -> (tmp, corpus) -> (command line, culprit the message must name)
CASES = {
    "fresh run over a finished run": lambda t, c: (["train", toml(t / "c.toml", c), "--out", t / "run"],
                                                   "holds a finished run; continue it with --resume, "
                                                   "or pass --overwrite"),
    "fresh run into a non-run folder": lambda t, c: (["train", toml(t / "c.toml", c), "--out", t / "corpus"],
                                                     "corpus: folder is not empty and holds no textvae run"),
    "recipe over a finished run": lambda t, c: (["recipe", "demo", "vae", "--out", t / "run"], "holds a finished run"),
    "resume changing a fixed key": lambda t, c: (["train", "--resume", t / "run", "--set", "data.batch_size=4"],
                                                 "--resume cannot change data.batch_size (8 -> 4)"),
    "resume to fewer epochs than trained": lambda t, c: (["train", "--resume", t / "run", "--set", "train.epochs=1"],
                                                         "train.epochs=1 but the run has already trained 2 epochs"),
    "resume and overwrite": lambda t, c: (["train", "--resume", t / "run", "--overwrite"], "give one of them"),
    "resume with a config file": lambda t, c: (["train", toml(t / "c.toml", c), "--resume", t / "run"], "drop CONFIG"),
    "resume a non-run folder": lambda t, c: (["train", "--resume", t / "corpus"], "corpus: not a textvae run folder"),
    "non-UTF-8 TOML": lambda t, c: (["train", latin1(t / "c.toml")], "c.toml:2: not UTF-8"),
    "non-UTF-8 --input": lambda t, c: ((t / "in.txt").write_bytes(b"good food\nbad \xff food\n") and
                                       ["reconstruct", t / "run", "--input", t / "in.txt"],
                                       "in.txt:2: line is not valid UTF-8"),
    "duplicate vocabulary entry": lambda t, c: (["train", toml(t / "c.toml", c, vocab_file=vocab_file(
        t / "v.txt", "<pad>\n<s>\n</s>\n<unk>\nfood\nfood\n")), "--out", t / "new"],
        "v.txt:6: duplicate vocabulary entry 'food' (first on line 5)"),
    "blank vocabulary line": lambda t, c: (["train", toml(t / "c.toml", c, vocab_file=vocab_file(
        t / "v.txt", "<pad>\n<s>\n</s>\n<unk>\n\nfood\n")), "--out", t / "new"], "v.txt:5: blank vocabulary entry"),
    "missing data.vocab_file": lambda t, c: (["train", toml(t / "c.toml", c, vocab_file=t / "nope.txt"), "--out",
                                              t / "new"], "data.vocab_file: "),
    "generate -n -3": lambda t, c: (["generate", t / "run", "-n", "-3"], "Invalid value for '-n'"),
    "generate --batch-size 0": lambda t, c: (["generate", t / "run", "--batch-size", "0"],
                                             "Invalid value for '--batch-size'"),
    "eval --out a folder": lambda t, c: (["eval", t / "run", "--out", t / "corpus"], "corpus: is a folder"),
    "eval --out below a file": lambda t, c: (["eval", t / "run", "--out", a_file(t) / "r.json"], "a_file is a file"),
    "generate --out a folder": lambda t, c: (["generate", t / "run", "--out", t / "corpus"], "is a folder"),
    "--data-dir a file": lambda t, c: (["data", "list", "--data-dir", a_file(t)], "a_file: is a file, not a folder"),
    "a .pt that is not a textvae checkpoint": lambda t, c: (["eval", t / "run", "--checkpoint", foreign_pt(t)],
                                                            "foreign.pt: not a textvae checkpoint"),
    "an unknown checkpoint name": lambda t, c: (["eval", t / "run", "--checkpoint", "first"],
                                                "a .pt path (this run has: best, last), got 'first'"),
    "an hf: folder with a dataset script": lambda t, c: (["train", toml(t / "c.toml", f"hf:{hf_script_folder(t)}"),
                                                          "--out", t / "new"], "cannot load the dataset"),
    "strategy name with ../": lambda t, c: (["recipe", "demo", "../../c"],
                                            "recipe strategy '../../c': not a recipe name"),
    "dataset name with ../": lambda t, c: (["recipe", "../datasets/demo", "vae"], "not a recipe name"),
    "prior name with ../": lambda t, c: (["recipe", "demo", "vae", "--prior", "../../x"], "recipe prior '../../x'"),
    "config name with ../": lambda t, c: (["train", toml(t / "c.toml", c, name="../../escape")], "would leave runs/"),
    "eval of a diverged model": lambda t, c: (["eval", nan_run(t)], "best.pt: weights are not finite"),
    "generate from a diverged model": lambda t, c: (["generate", nan_run(t)], "weights are not finite"),
    # issue 21
    "probe --subsets -5": lambda t, c: (["probe", t / "run", "--data", c, "--subsets", "-5"],
                                        "--subsets: each size must be >= 1, got -5"),
    "probe --subsets 0": lambda t, c: (["probe", t / "run", "--data", c, "--subsets", "100,0"],
                                       "--subsets: each size must be >= 1, got 0"),
    "probe --subsets not numbers": lambda t, c: (["probe", t / "run", "--data", c, "--subsets", "1,x"],
                                                 "--subsets: expected a comma-separated list"),
    "probe subset of one label": lambda t, c: (["probe", t / "run", "--data", c, "--subsets", "1"],
                                               "subset of 1 sentences holds only the label"),
    "probe --probes unknown": lambda t, c: (["probe", t / "run", "--data", c, "--subsets", "10", "--probes", "svm"],
                                            "unknown probe 'svm'"),
    "probe --data missing": lambda t, c: (["probe", t / "run", "--data", t / "nope"],
                                          "nope: linear-probe data folder not found"),
    "JSON config that is a list": lambda t, c: (["train", text_file(t / "c.json", "[1, 2]")],
                                                "c.json: expected a table of keys (a JSON object) at the top "
                                                "level, got a list"),
    "JSON config that is a string": lambda t, c: (["train", text_file(t / "c.json", '"run"')],
                                                  "c.json: expected a table of keys"),
    "config path that is a folder": lambda t, c: (["train", t / "corpus"], "corpus: is a directory, not a config file"),
    "checkpoint format '2' (eval)": lambda t, c: (["eval", checkpoints_format(t, "2")],
                                                  "best.pt: checkpoint 'format' must be a positive integer, got '2'"),
    "checkpoint format '2' (resume)": lambda t, c: (["train", "--resume", checkpoints_format(t, "2"),
                                                     "--set", "train.epochs=3"], "last.pt: checkpoint 'format'"),
    "checkpoint format true": lambda t, c: (["generate", checkpoints_format(t, True)],
                                            "'format' must be a positive integer, got True"),
    "checkpoint of a newer format (resume)": lambda t, c: (
        ["train", "--resume", checkpoints_format(t, 99), "--set", "train.epochs=3"],
        "last.pt: written by a newer textvae (checkpoint format 99"),
    "checkpoint of a newer format (eval)": lambda t, c: (["eval", checkpoints_format(t, 99)],
                                                         "best.pt: written by a newer textvae"),
    "checkpoint 'state' damaged (resume)": lambda t, c: (
        ["train", "--resume", checkpoint_edited(t, "state", {"bogus": 1}, ["last"]), "--set", "train.epochs=3"],
        "last.pt: damaged checkpoint: 'state' is not a training state (['bogus'])"),
    "checkpoint 'model' a list": lambda t, c: (["eval", checkpoint_edited(t, "model", [1])],
                                               "best.pt: checkpoint's 'model' entry is not a table of weights"),
    "checkpoint 'config' a list": lambda t, c: (["eval", checkpoint_edited(t, "config", [1])],
                                                "best.pt: the checkpoint's 'config' entry is not a table"),
    "a run's config.json that is a list": lambda t, c: (["eval", run_file(t, "config.json", "[1]")],
                                                       "config.json: expected a table of keys"),
    "report: a probe record that is a list": lambda t, c: (["report", run_file(t, "probe/corpus.json", "[1]"),
                                                            "--table", "table4"], "corpus.json: not a probe record"),
    "report: a probe accuracy that is a string": lambda t, c: (
        ["report", run_file(t, "probe/corpus.json", json.dumps({"probes": {"sgd-linear": {"accuracy": {"100": "x"}}}})),
         "--table", "table4"], "corpus.json: probes.sgd-linear.accuracy.100 must be a number, got 'x'"),
    "report: a generation record that is a list": lambda t, c: (
        ["report", run_file(t, "generation/g.json", "[1]"), "--table", "table5"], "g.json: not a generation record"),
    "report --figure of an unknown format": lambda t, c: (["report", t / "run", "--figure", t / "f.nope"],
                                                          "--figure " + str(t / "f.nope") + ": the file suffix"),
    "report --out a folder": lambda t, c: (["report", t / "run", "--out", t / "corpus"], "--out " + str(t / "corpus")
                                           + ": is a folder"),
    "plot: a metrics line that is a list": lambda t, c: (["plot", run_file(t, "metrics.jsonl", "[1]\n"), "--out",
                                                          t / "p.png"], "metrics.jsonl:1: expected a JSON object"),
    "plot: a metrics epoch that is a string": lambda t, c: (
        ["plot", run_file(t, "metrics.jsonl", '{"epoch": "x"}\n'), "--out", t / "p.png"],
        "metrics.jsonl:1: 'epoch' must be an integer"),
    "report: results nll a string": lambda t, c: (["report", results_edited(t, lambda r: {**r, "nll": "12.5"})],
                                                  "results.json: key 'nll' must be a number, got '12.5'"),
    "report: results au a bool": lambda t, c: (["report", results_edited(t, lambda r: {**r, "au": True})],
                                               "results.json: key 'au' must be a number"),
    "report: results a list": lambda t, c: (["report", results_edited(t, lambda r: [r])],
                                            "results.json: expected a JSON object of results, got list"),
    "report: results of a newer format": lambda t, c: (["report", results_edited(t, lambda r: {**r, "format": 99})],
                                                       "results.json: written by a newer textvae (results format 99"),
    "report: results format a string": lambda t, c: (["report", results_edited(t, lambda r: {**r, "format": "1"})],
                                                     "results.json: 'format' must be a positive integer"),
    "--set an unknown section": lambda t, c: (["train", "--resume", t / "run", "--set", "no.such=1"],
                                              "unknown section or key 'no.such'; sections: data, model"),
    "--set a misspelt section": lambda t, c: (["recipe", "demo", "vae", "--set", "tran.epochs=3"],
                                              "unknown section or key 'tran.epochs' (did you mean 'train'?)"),
    "--set an unknown key": lambda t, c: (["recipe", "demo", "vae", "--set", "data.batchsize=3"],
                                          "unknown key 'data.batchsize' (did you mean 'batch_size'"),
    "--set an unknown key, no close match": lambda t, c: (["recipe", "demo", "vae", "--set", "model.zzz=3"],
                                                          "unknown key 'model.zzz'; model keys: kind, decoder"),
    "--set below a key": lambda t, c: (["recipe", "demo", "vae", "--set", "seed.x=1"],
                                       "'seed' is a key, not a section"),
    "--set a whole section": lambda t, c: (["recipe", "demo", "vae", "--set", "train=1"],
                                           "'train' is a section; give train.KEY"),
    "--device unknown": lambda t, c: (["eval", t / "run", "--device", "nope"],
                                      "Invalid value for '--device': 'nope' is not a torch device"),
    "train.device unknown": lambda t, c: (["train", toml(t / "c.toml", c, name="dev"), "--set", "train.device='nope'",
                                           "--out", t / "new"], "train.device: 'nope' is not a torch device"),
    "an unknown command": lambda t, c: (["evl", t / "run"], "No such command 'evl'"),
    "a missing argument": lambda t, c: (["eval"], "Missing argument"),
    "sweep: [probe] data that does not exist": lambda t, c: (
        sweep(t, spec(t, '[probe]\ndata = "no-such-corpus"')),
        "s.toml: [probe] data = 'no-such-corpus': no-such-corpus: linear-probe data folder not found"),
    "sweep: [probe] subsets 0": lambda t, c: (sweep(t, spec(t, f'[probe]\ndata = "{c}"\nsubsets = [0]')),
                                             "s.toml: [probe] subsets: each size must be >= 1"),
    "sweep: [probe] probes unknown": lambda t, c: (sweep(t, spec(t, f'[probe]\ndata = "{c}"\nprobes = ["svm"]')),
                                                   "s.toml: [probe] probes: unknown probe 'svm'"),
    "sweep: a corpus that does not exist": lambda t, c: (
        sweep(t, spec(t, f'set = ["data.corpus=\'{t / "nope"}\'"]')), "s.toml: data.corpus: unknown corpus"),
    "sweep: a corpus not in the data root": lambda t, c: (sweep(t, spec(t, "", datasets='["ptb"]')),
                                                          "s.toml: corpus 'ptb' is not in"),
    "sweep: seeds = [true, 2]": lambda t, c: (sweep(t, spec(t, "seeds = [true, 2]")),
                                             "s.toml: key 'seeds[0]' expects int, got True"),
    "sweep: a negative seed": lambda t, c: (sweep(t, spec(t, "seeds = [-1]")), "s.toml: 'seeds' must be"),
    "sweep: --set style key unknown": lambda t, c: (sweep(t, spec(t, 'set = ["no.such=1"]')),
                                                    "s.toml: --set no.such=1: unknown section or key 'no.such'"),
    "sweep: grid key unknown": lambda t, c: (sweep(t, spec(t, '[grid]\n"train.epoch" = [1, 2]')),
                                            "s.toml: --set train.epoch=1: unknown key 'train.epoch'"),
    "sweep: strategy_defaults of an unknown strategy": lambda t, c: (
        sweep(t, spec(t, "[strategy_defaults.kl-anealing]\nwarm_up = 1")),
        "s.toml: strategy_defaults: unknown strategy 'kl-anealing' (did you mean 'kl-annealing'?)"),
    "sweep: a spec path that is a folder": lambda t, c: (["sweep", t / "corpus"], "corpus: is a directory"),
    "sweep: a spec that is a JSON list": lambda t, c: (["sweep", text_file(t / "s.json", "[]")],
                                                      "s.json: expected a table of keys"),
    # issue 30
    "a learning rate past float32": lambda t, c: (
        ["train", toml(t / "c.toml", c), "--set", "train.lr=1e308", "--out", t / "new"],
        "key 'train.lr' must be a finite number within float32's range"),
    "an infinite loss weight": lambda t, c: (
        ["recipe", "demo", "beta-vae", "--set", "strategy.beta=inf", "--out", t / "new"],
        "key 'strategies.beta-vae.beta' must be a finite number"),
    "an int past 64 bits": lambda t, c: (
        ["train", toml(t / "c.toml", c), "--set", f"data.batch_size={2**70}", "--out", t / "new"],
        "key 'data.batch_size' must fit a 64-bit integer"),
    "synthesize: a vocabulary size past any memory": lambda t, c: (
        ["data", "synthesize", t / "syn", "--vocab-size", "99999999999999999999"],
        "synthesize: vocab_size must be an integer in [1, 10000000], got 99999999999999999999"),
    "synthesize: a NaN spacing": lambda t, c: (
        ["data", "synthesize", t / "syn", "--spacing", "nan"],
        "synthesize: spacing must be a number > 0"),
    "synthesize: a generator too large": lambda t, c: (
        ["data", "synthesize", t / "syn", "--vocab-size", "10000000"],
        "synthesize: the generator would hold"),
    "sweep: a vocabulary file without <unk>": lambda t, c: (
        sweep(t, spec(t, sets(f"data.corpus={c}",
                              f"data.vocab_file={vocab_file(t / 'v.txt', NO_UNK)}"))),
        "v.txt: vocabulary file has no '<unk>' entry"),
    "sweep: a split file missing": lambda t, c: (
        sweep(t, spec(t, sets(f"data.corpus={without_valid(c)}"))), "no valid split"),
    "sweep: a point folder holding a user's config.json": lambda t, c: (
        sweep(point_folder(t, "{}"), spec(t, sets(f"data.corpus={c}"))),
        "sweep point demo/vae/seed1: "),
    "--out . holding a config.json that is no run's": lambda t, c: (
        ["train", toml(t / "c.toml", c), "--out", text_file(t / "config.json", "{}").parent],
        "holds no textvae run (its config.json carries no run-folder 'format'"),
}


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_ends_clean(case, env):
    tmp, corpus = env
    args, culprit = CASES[case](tmp, corpus)
    before = snapshot(tmp)
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (TypeError, KeyError, OSError))
    assert culprit in " ".join(result.output.split()), result.output
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    assert snapshot(tmp) == before


def test_a_full_disk_is_one_line_and_keeps_the_checkpoint(env, monkeypatch):
    tmp, corpus = env
    run = tmp / "half"
    train(tiny_config(corpus), run, callbacks=[StopAfter(1)])
    before = snapshot(run)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "error: No space left on device; free some space" in result.output
    assert snapshot(run) == before  # no temp file, no lock, the epoch-1 checkpoints intact


def test_python_api_arguments_are_named(env):
    tmp, _ = env
    run = load_run(tmp / "run")
    model, vocab = run.model, run.vocab
    cases = [
        (lambda: reconstruct_texts(model, vocab, "good food"), ArgumentTypeError, "texts: expected a collection"),
        (lambda: reconstruct_texts(model, vocab, [1, 2]), ArgumentTypeError, "texts: expected strings, got int"),
        (lambda: reconstruct_texts(model, vocab, ["a"], batch_size=0), ArgumentError, "batch_size must be >= 1"),
        (lambda: interpolate_texts(model, vocab, None, "good"), ArgumentTypeError, "text_a must be a string"),
        (lambda: sample_texts(model, vocab, n=-1), ArgumentError, "sample_texts: n must be >= 0, got -1"),
        (lambda: sample_texts(model, vocab, n=2.5), ArgumentTypeError, "sample_texts: n must be an integer"),
        (lambda: sample_texts(model, vocab, n=3, batch_size=0), ArgumentError, "batch_size must be >= 1"),
        (lambda: load_run(tmp / "run", checkpoint=123), RunFolderError, "checkpoint must be 'best', 'last' or a .pt"),
        (lambda: load_run(None), TextVAEError, "run_dir must be a path"),
        (lambda: load_run(tmp / "run", device="nope"), TextVAEError, "device: 'nope' is not a torch device"),
        (lambda: load_probe_data(tmp / "corpus", (100, -5)), ArgumentError, "subsets: each size must be >= 1, got -5"),
        (lambda: load_probe_data(tmp / "corpus", 100), ArgumentTypeError, "subsets: expected a collection"),
        (lambda: RunConfig.from_dict([1]), TextVAEError, "config: expected a table of keys"),
    ]
    for call, error, culprit in cases:
        with pytest.raises(error, match=culprit.replace("(", r"\(").replace(".", r"\.")):
            call()
    assert sample_texts(model, vocab, n=0) == []


def test_a_byte_order_mark_is_not_data(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    for split in ("train", "valid", "test"):
        path = corpus / f"{split}.txt"
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    vocab = vocab_file(tmp_path / "v.txt", "\ufeff<pad>\n<s>\n</s>\n<unk>\nfood\n")
    loaded = load_corpus(tiny_config(corpus).data)
    assert set(loaded.splits["train"].labels) == {"0", "1"}
    assert Vocab.load(vocab).itos == ["<pad>", "<s>", "</s>", "<unk>", "food"]


def test_prepare_force_replaces_a_symlinked_corpus_not_its_target(tmp_path):
    source = write_corpus(tmp_path / "ptb_src", labeled=False)
    elsewhere = write_corpus(tmp_path / "elsewhere", labeled=False)
    before = snapshot(elsewhere)
    root = tmp_path / "root"
    root.mkdir()
    (root / "ptb").symlink_to(elsewhere)
    result = runner.invoke(app, ["data", "prepare", "ptb", "--from", str(source), "--data-dir", str(root),
                                 "--force", "--no-verify"])
    assert result.exit_code == 0, result.output
    assert not (root / "ptb").is_symlink()
    assert (root / "ptb" / "train.txt").read_bytes() == (source / "train.txt").read_bytes()
    assert snapshot(elsewhere) == before


def test_a_huge_loss_is_an_infinite_perplexity_not_an_overflow():
    assert perplexity(1e6) == math.inf and math.isnan(perplexity(math.nan)) and perplexity(0.0) == 1.0
    # what lr 10 without clipping produced: validation rec sums beyond exp's range
    stats = SimpleNamespace(rec=torch.tensor([4e5, 3e5]), kl=torch.tensor([1.0, 2.0]), n_sentences=2,
                            kl_estimator="analytic", kl_trained=None)
    assert _elbo_terms(stats, n_targets=10)["ppl"] == math.inf


def test_a_vanished_vocab_file_is_an_error_even_with_a_warm_cache(tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    vocab = vocab_file(tmp_path / "v.txt", "<pad>\n<s>\n</s>\n<unk>\nfood\ngood\n")
    config = tiny_config(corpus, data={"vocab_file": str(vocab)}).data
    assert len(load_corpus(config).vocab) == 6  # now cached
    vocab_file(vocab, "<pad>\n<s>\n</s>\n<unk>\nfood\n")
    assert len(load_corpus(config).vocab) == 5  # the file's digest is part of the cache key
    vocab.unlink()
    with pytest.raises(TextVAEError, match=r"data.vocab_file: .*v.txt: file not found"):
        load_corpus(config)
