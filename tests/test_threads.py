"""The CLI's thread policy: --threads, else OMP_NUM_THREADS, else the CPUs this process may use; OpenMP
threads wait passively, set before torch loads, a user's own setting kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from textvae.errors import ConfigError
from textvae.threads import available_cpus, set_wait_policy, thread_count
from textvae.training.environment import ISA_FLAGS, describe_cpu

REPO = Path(__file__).resolve().parents[1]

# Records the OpenMP environment at the moment torch is first imported, then runs the CLI's callback
# (`textvae [--threads N] data list`) and prints what torch ended up with.
SCRIPT = """
import builtins, json, os, sys
seen = {}
real_import = builtins.__import__
def spy(name, *args, **kwargs):
    if name == "torch" and "torch" not in sys.modules and not seen:
        seen.update({k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "KMP_BLOCKTIME")})
    return real_import(name, *args, **kwargs)
builtins.__import__ = spy
from textvae.cli.main import app
try:
    app(sys.argv[1:] + ["data", "list", "--data-dir", "."], standalone_mode=False)
finally:
    import torch
    print(json.dumps({"at_torch_import": seen, "threads": torch.get_num_threads(),
                      "affinity": len(os.sched_getaffinity(0))}))
"""


def run_cli(tmp_path, *args, **env_changes):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME")}
    env.update(PYTHONPATH=str(REPO), **env_changes)
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_cli_waits_passively_and_uses_the_cpus_it_may_run_on(tmp_path):
    seen = run_cli(tmp_path)
    assert seen["at_torch_import"] == {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
    assert seen["threads"] == seen["affinity"]


def test_threads_option_and_omp_num_threads_override_and_a_users_wait_policy_is_kept(tmp_path):
    assert run_cli(tmp_path, OMP_NUM_THREADS="3")["threads"] == 3
    assert run_cli(tmp_path, "--threads", "5", OMP_NUM_THREADS="3")["threads"] == 5
    assert run_cli(tmp_path, OMP_WAIT_POLICY="ACTIVE")["at_torch_import"]["OMP_WAIT_POLICY"] == "ACTIVE"


def test_thread_count_rules():
    assert thread_count(4, {"OMP_NUM_THREADS": "2"}) == 4
    assert thread_count(None, {"OMP_NUM_THREADS": "2"}) == 2
    assert thread_count(None, {"OMP_NUM_THREADS": "6,2"}) == 6  # nested form: torch's level is the outer one
    assert thread_count(None, {}) == available_cpus() == len(os.sched_getaffinity(0))
    for bad in ("0", "two", "-1", "\u00b2"):  # "²" is a digit to str.isdigit, not to int()
        with pytest.raises(ConfigError, match=f"^OMP_NUM_THREADS='{bad}': not a positive whole number$"):
            thread_count(None, {"OMP_NUM_THREADS": bad})
    env = {"KMP_BLOCKTIME": "200"}
    set_wait_policy(env)
    assert env == {"KMP_BLOCKTIME": "200", "OMP_WAIT_POLICY": "PASSIVE"}


def test_the_thread_benchmark_reports_medians_ratios_the_cpu_and_the_load():
    from eval import bench_threads as bench

    runs = [{"load_kind": load, "side": side, "cpu": cpu, "wall": cpu * 2, "load": 3.0}
            for load, base in (("idle", 10.0), ("busy", 12.0)) for side in ("on", "off") for cpu in (base, base + 2)]
    text = bench.report({"date": "today", "command": "python eval/bench_threads.py", "cpu": describe_cpu(),
                         "torch": "2", "python": "3", "platform": "linux", "demo_args": ["recipe", "demo", "bn-vae"],
                         "repeats": 2, "busy": 2, "runs": runs})
    assert f"CPU: {describe_cpu()}." in text and "Load average (1 min) before each run: 3.0–3.0" in text
    assert "| busy | on | 13.0 (12.0–14.0) | 26.0 (24.0–28.0) |" in text
    assert "| on | 1.18 | 1.18 |" in text  # 13 / 11


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="no /proc/cpuinfo")
def test_the_cpu_line_names_the_model_and_its_isa_flags():
    line = describe_cpu()
    cpu_flags = Path("/proc/cpuinfo").read_text().split("flags", 1)[1].split("\n", 1)[0].split()
    assert ", ".join(f for f in ISA_FLAGS if f in cpu_flags) in line
    assert "model name" not in line and " CPUs available" in line


def test_thread_counts_past_torchs_limit_are_one_line():
    with pytest.raises(ConfigError, match="^--threads 99999999999999999999: must be a whole number from 1 to 65536$"):
        thread_count(99999999999999999999)
    with pytest.raises(ConfigError, match="more than 65536 threads"):
        thread_count(None, {"OMP_NUM_THREADS": "10000000000000000000000"})
