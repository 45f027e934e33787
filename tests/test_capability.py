"""The precision probe: a tiny autocast LSTM step per device and mode, cached; a mode that cannot run is
refused in one line before a run folder exists, and a run that failed before its first checkpoint does
not block running the same command again."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from textvae import capability
from textvae.cli.main import app
from textvae.errors import ConfigError
from textvae.rundir import RunDir
from textvae.training import Trainer, train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_bf16(monkeypatch):
    """This process's probe says bfloat16 cannot run (as on an AVX2-only CPU); the cache is not touched."""
    reason = "could not create a primitive descriptor for the LSTM forward propagation primitive"
    real = capability._probe
    monkeypatch.setattr(capability, "_probe", lambda mode, device: reason if "bf" in mode else real(mode, device))
    return reason


def test_the_probe_runs_once_per_device_and_mode_and_leaves_the_random_stream_alone():
    capability._probe.cache_clear()
    torch.manual_seed(7)
    state = torch.get_rng_state()
    first = capability.amp_unavailable("bf16", "cpu")
    assert torch.equal(torch.get_rng_state(), state)
    assert capability.amp_unavailable("bf16", torch.device("cpu")) == first
    assert capability.amp_unavailable("off", "cpu") is None
    assert capability.eval_precision_unavailable("float32", "cpu") is None
    info = capability._probe.cache_info()
    assert info.misses == 1 and info.hits == 1
    with torch.inference_mode():  # a caller inside inference mode still gets an answer, not an autograd error
        capability._probe.cache_clear()
        assert capability.amp_unavailable("fp16", "cpu") is None  # fp16 LSTMs run on torch's own kernels


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="ONEDNN_MAX_CPU_ISA names x86 ISAs")
def test_without_avx512_bf16_the_probe_says_why_and_the_cli_refuses_before_making_the_folder(tmp_path):
    # oneDNN restricted to AVX2, as on the AVX2-only CPUs where bfloat16 LSTMs fail
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "PYTHONPATH": str(REPO)}
    probe = subprocess.run([sys.executable, "-c", "import json; from textvae.capability import probe_results; "
                            "print(json.dumps(probe_results('cpu')))"], env=env, capture_output=True, text=True,
                           timeout=300)
    results = json.loads(probe.stdout)
    assert results["train.amp=bf16"] == {
        "runs": False, "reason": "could not create a primitive descriptor for the LSTM forward propagation primitive"}
    assert results["train.amp=fp16"]["runs"] and results["eval.precision=bfloat16"]["runs"]
    out = tmp_path / "run"
    cli = subprocess.run([sys.executable, "-c", "from textvae.cli.main import app; app()", "recipe", "demo", "vae",
                          "--out", str(out),
                          "--set", "train.amp=bf16", "--no-progress"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert cli.returncode == 2, cli.stderr
    assert cli.stderr.strip().splitlines() == [
        "error: train.amp='bf16' cannot run on cpu: could not create a primitive descriptor for the LSTM "
        "forward propagation primitive; use train.amp=off"]
    assert not out.exists()


def test_a_precision_that_cannot_run_is_refused_before_any_file_is_written(no_bf16, tiny_corpus, make_config,
                                                                           tmp_path):
    for section, key in (({"train": {"amp": "bf16"}}, "train.amp='bf16'"),
                         ({"eval": {"precision": "bfloat16"}}, "eval.precision='bfloat16'")):
        with pytest.raises(ConfigError, match=f"^{key} cannot run on cpu: {no_bf16}; use "):
            train(make_config(tiny_corpus, **section), tmp_path / "run")
        assert not (tmp_path / "run").exists()
    train(make_config(tiny_corpus, train={"epochs": 1, "amp": "fp16"}), tmp_path / "run", evaluate_test=False)


def test_eval_refuses_a_precision_that_cannot_run_in_one_line(no_bf16, tiny_corpus, make_config, tmp_path):
    run = tmp_path / "run"
    train(make_config(tiny_corpus, train={"epochs": 1}), run, evaluate_test=False)
    result = CliRunner().invoke(app, ["eval", str(run), "--precision", "bfloat16", "--no-progress"])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"error: --precision='bfloat16' cannot run on cpu: {no_bf16}; "
                                     "use --precision float32")
    assert not (run / "eval_test.json").exists()


def test_a_run_that_failed_before_its_first_checkpoint_does_not_block_the_same_command(
        tiny_corpus, make_config, tmp_path, monkeypatch):
    config, run = make_config(tiny_corpus, train={"epochs": 1}), tmp_path / "run"

    def fail(self):
        raise RuntimeError("out of memory in the first epoch")

    with monkeypatch.context() as m:
        m.setattr(Trainer, "fit", fail)
        with pytest.raises(RuntimeError):
            train(config, run)
    assert RunDir(run).is_run() and not RunDir(run).has_progress()
    (run / "checkpoints").mkdir(exist_ok=True)  # an empty checkpoints/ is no progress either
    assert train(config, run)["nll"] > 0
    assert RunDir(run).has_progress()
