"""Progress on every long step: start, ETA and finish lines through ``logging`` (loggers under
``textvae.``) where no bar is drawn, a bar on a terminal; the CLI shows the lines in a log, not on a terminal."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_probe import MODEL, write_probe_files
from tiny_vae import save_run

from textvae import progress as progress_module
from textvae.cli.common import EchoHandler
from textvae.probing import load_probe_data, run_probe
from textvae.progress import Progress, counted
from textvae.runs import load_run
from textvae.training import train


def log_file_stderr(monkeypatch):
    """stderr is a log file, not a terminal: no bars, ETA lines after every update. Called in the test
    body: pytest's capture replaces sys.stderr between a fixture's setup and the test."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setattr(progress_module, "LOG_INTERVAL", 0.0)


def messages(caplog, prefix: str = "") -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(prefix)]


def test_a_step_logs_start_eta_and_finish(caplog, monkeypatch):
    log_file_stderr(monkeypatch)
    log = logging.getLogger("textvae.test")
    with caplog.at_level(logging.INFO, logger="textvae"):
        with Progress("IW-NLL (K=500)", 4, "sentence", log, expected=90.0) as bar:
            bar.update(2)
            bar.update(2, note="last chunk")
    lines = messages(caplog)
    assert lines[0] == "IW-NLL (K=500): started (4 sentences, ETA 1:30)"
    assert re.fullmatch(r"IW-NLL \(K=500\): 2/4 sentences, \d+:\d\d elapsed, ETA \d+:\d\d", lines[1])
    assert lines[2].startswith("IW-NLL (K=500): 4/4 sentences (last chunk), ")
    assert re.fullmatch(r"IW-NLL \(K=500\): done in \d+:\d\d \(4 sentences\)", lines[3])
    assert "\r" not in sys.stderr.getvalue() and "|" not in sys.stderr.getvalue()  # no bar into a log file
    assert all(r.textvae_progress for r in caplog.records)


def test_eta_lines_wait_for_the_interval_and_a_failed_step_has_no_finish_line(caplog, monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    log = logging.getLogger("textvae.test")
    with caplog.at_level(logging.INFO, logger="textvae"), pytest.raises(RuntimeError):
        with Progress("validation", 100, "batch", log) as bar:
            for _ in range(50):
                bar.update()  # within a minute: no ETA line
            raise RuntimeError
    assert messages(caplog) == ["validation: started (100 batches)"]


def test_training_and_test_evaluation_report_progress_through_logging(caplog, monkeypatch, make_config,
                                                                      tiny_corpus, tmp_path):
    log_file_stderr(monkeypatch)
    config = make_config(tiny_corpus, train={"epochs": 2, "progress": True}, eval={"iw_samples": 3})
    with caplog.at_level(logging.INFO, logger="textvae"):
        train(config, tmp_path / "run")
    names = {r.name for r in caplog.records}
    assert names <= {"textvae.training.callbacks", "textvae.evaluation.posterior_pass",
                     "textvae.evaluation.importance"} and "textvae.evaluation.importance" in names
    lines = messages(caplog)
    for expected in ("training epoch 1/2: started (", "training epoch 1/2: 1/", "training epoch 1/2: done in",
                     "training epoch 2/2: started (", "validation: started", "validation: done in",
                     "posterior pass (KL, MI, AU): started", "IW-NLL (K=3): started (20 sentences)",
                     "IW-NLL (K=3): done in"):
        assert any(line.startswith(expected) for line in lines), expected
    assert "ETA" in next(line for line in lines if line.startswith("training epoch 2/2: started"))
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert re.search(r" \(\d+:\d\d; at most 1 more epoch, ETA \d+:\d\d\)$", epoch_lines[0]), epoch_lines[0]
    assert re.search(r" \(\d+:\d\d\)$", epoch_lines[1]), epoch_lines[1]  # the last: nothing left
    assert len(epoch_lines) == 2


def test_probe_logs_each_fit(caplog, monkeypatch, make_config, tiny_corpus, tmp_path):
    log_file_stderr(monkeypatch)
    run = load_run(save_run(make_config(tiny_corpus, model=MODEL), tmp_path / "run"))
    data = load_probe_data(write_probe_files(tmp_path / "probe"), subsets=(10, 30))
    with caplog.at_level(logging.INFO, logger="textvae"):
        out = run_probe(run.model, run.vocab, data, subsets=(10, 30), seed=0)
    assert {r.name for r in caplog.records} == {"textvae.probing.protocol"}
    lines = messages(caplog, "probe fits")
    assert lines[0] == "probe fits: started (4 fits)"
    assert lines[1].startswith(f"probe fits: 1/4 fits (sgd-linear on 10 sentences: "
                               f"{out['sgd-linear']['accuracy']['10']:.1f}%), ")
    assert "ETA" in lines[1] and lines[-1].startswith("probe fits: done in")
    assert messages(caplog, "probe: posterior means: started")


def test_cli_shows_progress_lines_in_a_log_and_not_on_a_terminal(monkeypatch):
    handler = EchoHandler()
    progress_record = logging.LogRecord("textvae.x", logging.INFO, "", 0, "IW-NLL: started", None, None)
    progress_record.textvae_progress = True
    summary = logging.LogRecord("textvae.x", logging.INFO, "", 0, "epoch 1: valid elbo 3.0", None, None)
    for tty, shown in ((False, ["IW-NLL: started", "epoch 1: valid elbo 3.0"]), (True, ["epoch 1: valid elbo 3.0"])):
        stream = io.StringIO()
        stream.isatty = lambda tty=tty: tty
        monkeypatch.setattr(sys, "stderr", stream)
        handler.emit(progress_record)
        handler.emit(summary)
        assert stream.getvalue().splitlines() == shown


def test_recipe_command_logs_progress_into_a_log_file(tiny_corpus, tmp_path):
    """A real process whose stderr is a file: the lines a log gets, none of the bars' carriage returns."""
    log = tmp_path / "train.log"
    args = ["recipe", "demo", "vae", "--out", str(tmp_path / "run"), "--set", f'data.corpus="{tiny_corpus}"',
            "--set", "model.embed_dim=8", "--set", "model.enc_hidden=8", "--set", "model.dec_hidden=8",
            "--set", "model.latent_dim=2", "--set", "train.epochs=1", "--set", "eval.iw_samples=3",
            "--set", "train.device=cpu"]
    with log.open("w") as stderr:
        done = subprocess.run([sys.executable, "-c", "from textvae.cli.main import app; app()", *args],
                              stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=300,
                              cwd=Path(__file__).parents[1])
    text = log.read_text()
    assert done.returncode == 0, text
    assert "\r" not in text
    for expected in ("training epoch 1/1: started", "training epoch 1/1: done in", "validation: done in",
                     "IW-NLL (K=3): started", "IW-NLL (K=3): done in", "epoch 1: valid elbo"):
        assert expected in text, expected
    assert "epoch 1: valid elbo" not in done.stdout  # stdout holds the command's results only


@pytest.mark.parametrize("n, unit, text", [(1, "epoch", "1 epoch"), (9, "more epoch", "9 more epochs"),
                                           (3, "batch", "3 batches"), (2, "sentence", "2 sentences"),
                                           (2, "fit", "2 fits")])
def test_counts_read_as_english(n, unit, text):
    assert counted(n, unit) == text
