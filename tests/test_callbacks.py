"""Callbacks: the events in order, stopping through ``trainer.should_stop``, a callback named in the
config, a bad name refused in one line, and the docs' example running as shown."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from test_cli import assert_one_line_error, invoke

from textvae.errors import ConfigError
from textvae.rundir import RunDir
from textvae.training import Callback, StopAfter, Trainer, train

DOCS = Path(__file__).resolve().parents[1] / "docs"


class Recorder(Callback):
    """Every event with what the folder holds when it happens."""

    def __init__(self):
        self.events: list[tuple] = []

    def on_train_begin(self, trainer):
        self.events.append(("train_begin", trainer.state.epoch))

    def on_epoch_begin(self, trainer):
        self.events.append(("epoch_begin", trainer.state.epoch))

    def on_after_backward(self, trainer, groups):
        self.events.append(("after_backward", tuple(groups)))

    def on_update_end(self, trainer, update):
        self.events.append(("update_end", update.index, update.batch.size, round(update.scalars["rec"], 6)))

    def on_validation_begin(self, trainer):
        self.events.append(("validation_begin",))

    def on_validation_end(self, trainer, metrics):
        self.events.append(("validation_end", metrics["elbo"]))

    def on_epoch_end(self, trainer, record):
        committed = RunDir(trainer.run.path).read_metrics()
        self.events.append(("epoch_end", record["epoch"], committed[-1] == json.loads(json.dumps(record)),
                            trainer.run.checkpoint("last").is_file()))

    def on_train_end(self, trainer):
        self.events.append(("train_end", trainer.done))

    def on_test_end(self, trainer, results, batches):
        self.events.append(("test_end", RunDir(trainer.run.path).read_results()["nll"] == results["nll"]))


def compressed(events: list[tuple]) -> list[str]:
    """Event names with runs of the same update events folded: ``update x N``."""
    names = [e[0] for e in events if e[0] != "after_backward"]
    out: list[str] = []
    for name in names:
        if out and out[-1].split(" x ")[0] == name:
            count = int(out[-1].split(" x ")[1]) if " x " in out[-1] else 1
            out[-1] = f"{name} x {count + 1}"
        else:
            out.append(name)
    return out


def test_events_come_in_order_with_the_epoch_committed_before_epoch_end(make_config, tiny_corpus, tmp_path):
    recorder = Recorder()
    config = make_config(tiny_corpus, train={"epochs": 2}, eval={"iw_samples": 2})
    train(config, tmp_path / "run", callbacks=[recorder])
    updates = len(Trainer(config, tmp_path / "scratch").epoch_batches(0))
    assert compressed(recorder.events) == [
        "train_begin", "epoch_begin", f"update_end x {updates}", "validation_begin", "validation_end", "epoch_end",
        "epoch_begin", f"update_end x {updates}", "validation_begin", "validation_end", "epoch_end",
        "train_end", "test_end"]
    assert [e for e in recorder.events if e[0] in ("epoch_end", "train_end", "test_end")] == [
        ("epoch_end", 1, True, True), ("epoch_end", 2, True, True), ("train_end", True), ("test_end", True)]
    # one backward per update with the default procedure, the main groups stepped
    backward = [i for i, e in enumerate(recorder.events) if e[0] == "after_backward"]
    assert len(backward) == 2 * updates and all(recorder.events[i + 1][0] == "update_end" for i in backward)
    metrics = RunDir(tmp_path / "run").read_metrics()
    assert [e[1] for e in recorder.events if e[0] == "train_begin"] == [0]
    assert [e[1] for e in recorder.events if e[0] == "validation_end"] == [r["valid"]["elbo"] for r in metrics]


class StopMidEpoch(Callback):
    """Asks to stop during the second epoch: the epoch still finishes and is committed."""

    def on_update_end(self, trainer, update):
        if trainer.state.epoch == 1 and update.index == 0:
            trainer.should_stop = True


def test_a_callback_stops_after_the_epoch_in_progress_and_the_run_resumes_exactly(make_config, tiny_corpus,
                                                                                   tmp_path):
    config = make_config(tiny_corpus, train={"epochs": 3}, eval={"iw_samples": 2})
    straight = train(config, tmp_path / "straight")
    run = tmp_path / "stopped"
    assert train(config, run, callbacks=[StopMidEpoch()]) == {}
    assert [r["epoch"] for r in RunDir(run).read_metrics()] == [1, 2]
    assert not (run / "results.json").exists()
    with_callbacks = make_config(tiny_corpus, train={"epochs": 3}, eval={"iw_samples": 2})
    with_callbacks.train.callbacks = ["test_callbacks:Recorder"]  # an execution key: a resume may add one
    assert train(with_callbacks, run, resume=True) == straight

    def timeless(folder):
        return [{k: v for k, v in r.items() if k not in ("seconds", "changed")} for r in RunDir(folder).read_metrics()]

    assert timeless(run) == timeless(tmp_path / "straight")
    assert RunDir(run).read_metrics()[2]["changed"] == {
        "train.callbacks": {"from": [], "to": ["test_callbacks:Recorder"]}}
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        StopAfter(0)


def write_callback_module(root: Path) -> None:
    (root / "my_callbacks.py").write_text(textwrap.dedent('''
        from textvae.training import Callback


        class CountUpdates(Callback):
            def on_train_begin(self, trainer):
                self.updates = 0

            def on_update_end(self, trainer, update):
                self.updates += 1

            def on_train_end(self, trainer):
                (trainer.run.path / "updates.txt").write_text(str(self.updates))


        class NotACallback:
            pass
        '''))


def test_a_callback_named_in_the_config_runs_and_a_bad_name_is_refused_in_one_line(make_config, tiny_corpus,
                                                                                 tmp_path, monkeypatch):
    write_callback_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = make_config(tiny_corpus, train={"epochs": 1, "callbacks": ["my_callbacks:CountUpdates"]},
                         eval={"iw_samples": 2})
    train(config, tmp_path / "run")
    updates = len(Trainer(config, tmp_path / "scratch").epoch_batches(0))
    assert (tmp_path / "run" / "updates.txt").read_text() == str(updates)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["callbacks"] == [
        "my_callbacks:CountUpdates"]

    for name, message in (("my_callbacks:Missing", "module 'my_callbacks' has no 'Missing'"),
                          ("no_such_module:X", "No module named 'no_such_module'"),
                          ("my_callbacks", "is not of the form 'package.module:ClassName'"),
                          ("my_callbacks:NotACallback", "is not a textvae.training.Callback subclass")):
        bad = make_config(tiny_corpus, train={"epochs": 1})
        bad.train.callbacks = [name]
        with pytest.raises(ConfigError, match=re.escape(message)) as error:
            train(bad, tmp_path / "refused")
        assert "train.callbacks" in str(error.value) and "\n" not in str(error.value)
        assert not (tmp_path / "refused").exists()
    assert_one_line_error(invoke("recipe", "demo", "vae", "--dry-run", "--set", 'train.callbacks=["nowhere:X"]'),
                          "train.callbacks", "cannot import 'nowhere:X'")


def test_the_docs_gradient_norm_example_runs_as_shown(make_config, tiny_corpus, tmp_path, capsys):
    text = (DOCS / "extending.md").read_text(encoding="utf-8")
    section = text[text.index("## Callbacks"):text.index("## A prior")]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/extending.md", "exec"), namespace)
    train(make_config(tiny_corpus, train={"epochs": 2}, eval={"iw_samples": 2}), tmp_path / "run",
          callbacks=[namespace["GradientNorm"]()])
    lines = [line for line in capsys.readouterr().out.splitlines() if "gradient norm" in line]
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2"]
    assert all(float(line.split("max ")[1]) > 0 for line in lines)
