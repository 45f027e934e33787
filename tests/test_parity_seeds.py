"""eval/parity_seeds.sh's order and resumption, with a stand-in for Python that records each call."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["CALLS"], "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def run_script(tmp_path: Path, **env: str) -> list[list[str]]:
    py = tmp_path / "py"
    py.write_text(RECORDER)
    py.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    calls.unlink(missing_ok=True)
    subprocess.run(["bash", str(ROOT / "eval" / "parity_seeds.sh")], check=True, capture_output=True, text=True,
                   env={**os.environ, "PY": str(py), "CALLS": str(calls), "WORK": str(tmp_path / "work"),
                        "OUT": str(tmp_path / "out"), "PTB": "ptb", "LAGGING": "l", "BNVAE": "b", "DUVAE": "d",
                        "PRETRAINING": "p", **env})
    return [json.loads(line) for line in calls.read_text().splitlines()] if calls.is_file() else []


def seeds_of(call: list[str]) -> list[str]:
    i = call.index("--seeds") + 1
    end = next((j for j in range(i, len(call)) if call[j].startswith("--")), len(call))
    return call[i:end]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_seeds_go_through_every_step_of_a_phase_jobs_at_a_time_and_resume(tmp_path):
    calls = run_script(tmp_path, JOBS="2", STEPS="paired noise inplace")
    runs = [c for c in calls if c[:2] == ["-m", "eval.parity"] and "--collect" not in c]

    def step(call):
        return "noise" if "--reference-only" in call else "inplace" if "du-in-place" in call else "paired"

    # the steps of a phase alternate, two seeds per invocation, two programs at a time
    rounds = (["783435", "101"], ["202", "303"], ["404", "505"])
    expected = [(s, seeds) for seeds in rounds for s in ("paired", "noise", "inplace")]
    assert [(step(c), seeds_of(c)) for c in runs] == expected
    [inplace] = {tuple(c) for c in runs if step(c) == "inplace" and seeds_of(c) == ["202", "303"]}
    assert inplace[inplace.index("--textvae-set") + 1] == 'strategies.du-vae.scale="in-place"'
    assert inplace[inplace.index("--rows") + 1:inplace.index("--rows") + 3] == ("du-vae", "--textvae-set")
    assert all(c[c.index("--jobs") + 1] == "2" and c[c.index("--test-lines") + 1] == "1000" for c in runs)
    # after each invocation its step's table is collected from every seed finished so far
    collects = [seeds_of(c) for c in calls if "--collect" in c]
    assert collects[:4] == [["783435", "101"]] * 3 + [["783435", "101", "202", "303"]]
    # a second run finds every seed done and runs nothing
    assert run_script(tmp_path, JOBS="2", STEPS="paired noise inplace") == []
    # a seed whose marker is missing (its invocation was stopped) is run again, alone
    (tmp_path / "work" / "done" / "noise-303").unlink()
    (tmp_path / "work" / "done" / "inplace-505").unlink()
    # once the paired table exists, an A/B step is judged against it after each of its invocations
    (tmp_path / "out" / "paired_six_seeds").mkdir(parents=True)
    (tmp_path / "out" / "paired_six_seeds" / "parity.json").write_text("{}")
    again = run_script(tmp_path, JOBS="2", STEPS="paired noise inplace")
    assert [seeds_of(c) for c in again if c[:2] == ["-m", "eval.parity"] and "--collect" not in c] == [["303"], ["505"]]
    judged = [c for c in again if c[:2] == ["-m", "eval.side_ab"]]
    assert [(c[c.index("--side") + 1], Path(c[c.index("--out") + 1]).name) for c in judged] == [
        ("reference", "noise_floor"), ("textvae", "du_vae_in_place_effect")]
    assert [Path(c[3]).name for c in judged] == ["noise_floor_torch1", "du_vae_in_place"]


def test_an_unknown_step_is_refused(tmp_path):
    py = tmp_path / "py"
    py.write_text(RECORDER)
    py.chmod(0o755)
    result = subprocess.run(["bash", str(ROOT / "eval" / "parity_seeds.sh")], capture_output=True, text=True,
                            env={**os.environ, "PY": str(py), "CALLS": str(tmp_path / "c"), "WORK": str(tmp_path),
                                 "OUT": str(tmp_path / "out"),
                                 "PTB": "x", "LAGGING": "x", "BNVAE": "x", "DUVAE": "x", "PRETRAINING": "x",
                                 "STEPS": "paired nonsense"})
    assert result.returncode == 2 and "unknown step nonsense" in result.stderr
