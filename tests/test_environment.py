"""The machine description, load average and device synchronisation the benchmarks share."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from textvae.training.device import synchronize
from textvae.training.environment import describe_cpu, load_average, machine


def test_machine_names_the_cpu_the_software_and_the_device():
    info = machine(torch.device("cpu"))
    assert info["cpu"] == describe_cpu() and info["device"] == "cpu" and "gpu" not in info
    assert info["torch"] == torch.__version__ and info["torch_threads"] == torch.get_num_threads()
    assert set(info) >= {"date", "python", "platform", "cpus"}


def test_load_average_is_the_first_field_of_proc_loadavg_and_nan_without_it(monkeypatch, tmp_path):
    if Path("/proc/loadavg").is_file():
        assert math.isfinite(load_average()) and load_average() >= 0
    monkeypatch.setattr("textvae.training.environment.Path", lambda _: tmp_path / "missing")
    assert math.isnan(load_average())
    synchronize(torch.device("cpu"))  # nothing queued on a CPU: returns at once
