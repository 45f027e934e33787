"""eval/gpu_check.py at toy size on the CPU, every step, so that the GPU check cannot rot unseen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval import gpu_check
from textvae.capability import amp_unavailable


@pytest.mark.cpu_only  # the CPU suite's guard of the script; on a GPU the script itself runs at full size
def test_toy_check_runs_every_step_and_writes_one_report(tmp_path, restore_determinism):
    sizes = dict(gpu_check.timing.SIZES)
    results = gpu_check.main(["--toy", "--device", "cpu", "--out", str(tmp_path / "report")])
    assert gpu_check.timing.SIZES == sizes  # the toy sizes were put back
    steps = results["steps"]
    assert list(steps) == ["train", "iwnll", "demo", "tests", "deterministic"]
    assert all(step.get("ok") and "error" not in step for step in steps.values()), \
        {name: step.get("error", step.get("ok")) for name, step in steps.items()}
    assert steps["tests"]["summary"].startswith("1 passed")
    assert [r["code"] for r in steps["train"]["rows"]] == ["off", "bf16", "fp16", "reference"]
    unavailable = {amp: amp_unavailable(amp, "cpu") for amp in ("bf16", "fp16")}
    for row in steps["train"]["rows"]:
        if unavailable.get(row["code"]):  # a precision this CPU cannot run is reported as skipped, with why
            assert row["skipped"] == unavailable[row["code"]] and "tokens_per_s" not in row
        else:
            assert row["tokens_per_s"][0] > 0
    # On the CPU the "device" demo run is a CPU run with the same seed and threads: bit for bit the same.
    rows = steps["demo"]["comparison"]["rows"]
    assert {r["metric"] for r in rows} >= {"nll", "kl", "mi", "au"} and all(r["diff"] == 0 for r in rows)
    assert steps["deterministic"]["differing"] == []
    text = (tmp_path / "report.md").read_text()
    assert "CPU: " in text and "ISA" in text
    for amp, reason in unavailable.items():
        assert (f"{amp} skipped: {reason}" in text) == bool(reason)
    for heading in ("## Summary", "## Training throughput", "## IW-NLL", "## Demo recipe (bn-vae)",
                    "## Deterministic mode", "**Toy size**"):
        assert heading in text
    assert (tmp_path / "report.json").is_file()


def test_demo_metrics_are_judged_against_the_cpu_seed_to_seed_difference():
    cpu, next_seed = {"nll": 100.0, "kl": 5.0}, {"nll": 101.0, "kl": 5.5}
    assert gpu_check.compare_demo({"nll": 101.9, "kl": 4.1}, cpu, next_seed)["ok"]
    judged = gpu_check.compare_demo({"nll": 102.5, "kl": 5.0}, cpu, next_seed)
    assert not judged["ok"] and [r["within"] for r in judged["rows"]] == [False, True]
    assert not gpu_check.compare_demo({"nll": 100.0 + 1e-9, "kl": 5.0}, cpu, None)["ok"]  # same device: exact


def test_a_failing_step_is_a_row_of_the_report():
    steps = {}
    gpu_check.run_step("train", lambda: 1 / 0, steps, deadline=float("inf"))
    assert steps["train"]["error"] == "ZeroDivisionError: division by zero" and "traceback" in steps["train"]
    gpu_check.run_step("iwnll", lambda: {"ok": True}, steps, deadline=0.0)
    assert steps["iwnll"]["error"].startswith("skipped")


@pytest.mark.parametrize("where", ["below a file", "onto a folder"])
def test_an_out_it_cannot_write_is_refused_before_any_work(tmp_path, capsys, where):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "report.md").mkdir()
    out = tmp_path / "a_file" / "report" if where == "below a file" else tmp_path / "report"
    with pytest.raises(SystemExit) as exit_:
        gpu_check.main(["--toy", "--device", "cpu", "--out", str(out)])
    problem = f"{tmp_path / 'a_file'} is a file, not a folder" if where == "below a file" else \
        f"{tmp_path / 'report.md'} is a folder"
    assert exit_.value.code == 2 and capsys.readouterr().err.splitlines() == [f"gpu_check: --out {out}: {problem}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "report.md"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc, where nothing can be created")
def test_an_out_whose_folder_cannot_be_made_is_one_line_before_any_step(capsys):
    with pytest.raises(SystemExit) as exit_:
        gpu_check.main(["--toy", "--device", "cpu", "--steps", "deterministic", "--budget", "0",
                        "--out", "/proc/nope/gc"])
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith("gpu_check: --out /proc/nope/gc: cannot be")


def test_a_failed_step_makes_the_script_exit_non_zero(tmp_path):
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "eval.gpu_check", "--toy", "--device", "cpu", "--steps", "train",
                           "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "report")],
                          capture_output=True, text=True, timeout=300, check=False, cwd=root,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[-1] == "gpu_check: failed: train"
    assert "error" in json.loads((tmp_path / "report.json").read_text())["steps"]["train"]


def test_failed_steps_counts_errors_skips_and_checks_that_did_not_hold():
    steps = {"train": {"ok": True}, "iwnll": {"error": "skipped: the time budget was spent"},
             "demo": {"ok": False}, "tests": {}}
    assert gpu_check.failed_steps({"steps": steps}) == ["iwnll", "demo"]
