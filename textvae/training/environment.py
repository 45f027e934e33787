"""What a run ran on, saved as env.json beside its config, and the machine description and load
average of benchmark reports (:func:`machine`, :func:`load_average`)."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import torch

from ..capability import probe_results
from ..data.reader import split_lines
from ..threads import available_cpus
from .device import backend_settings

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16")
"""The /proc/cpuinfo flags that decide which kernels a CPU gets: AVX2 (any recent x86-64), AVX-512,
and the bfloat16/float16 instructions (AVX512-BF16, AVX512-FP16, AMX) that low-precision LSTMs need."""

PACKAGES = ("torch", "numpy", "scikit-learn", "sentencepiece", "ray")


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict:
    """``model``, ``isa`` (those of :data:`ISA_FLAGS` the CPU has; None where /proc/cpuinfo is
    missing), ``cpus`` (the host's), ``cpus_available`` (this process's affinity) and ``torch_capability``
    (the instruction set torch's own kernels dispatch to)."""
    model, flags = None, None
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in split_lines(text):
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model is None:
            model = value.strip()
        elif key.strip() == "flags" and flags is None:
            flags = set(value.split())
    return {"model": model or platform.processor() or platform.machine(),
            "isa": None if flags is None else [f for f in ISA_FLAGS if f in flags],
            "cpus": os.cpu_count(), "cpus_available": available_cpus(),
            "torch_capability": torch.backends.cpu.get_cpu_capability()}


def describe_cpu() -> str:
    """One line naming the CPU, for benchmark reports: model, CPUs, ISA flags, torch's kernels."""
    cpu = cpu_info()
    isa = "ISA flags unknown" if cpu["isa"] is None else ("ISA: " + (", ".join(cpu["isa"]) or "none of "
                                                                      + "/".join(ISA_FLAGS)))
    return (f"{cpu['model']}, {cpu['cpus_available']} of {cpu['cpus']} CPUs available; {isa}; "
            f"torch kernels {cpu['torch_capability']}")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: torch.device) -> dict:
    from .. import __version__

    env = {
        "textvae": __version__,
        "git": git_revision(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        # how idle OpenMP threads wait (textvae.threads): spinning ones burn CPU on a shared machine
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "cpu": cpu_info(),
        "versions": package_versions(),
        "device": str(device),
        "precision": probe_results(device),
        # a process-wide memory/speed trade-off that changes what the run's timings mean
        "onednn_primitive_cache_capacity": os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backends": backend_settings(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def load_average() -> float:
    """The 1-minute load average (NaN where the system does not report one): how busy the machine was
    around a timing."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def machine(device: torch.device | None = None) -> dict:
    """The machine a benchmark ran on, for its report: date, Python, torch, platform, CPU
    (:func:`describe_cpu`), CPU count and torch threads, and the GPU's name, memory, CUDA and cuDNN
    versions, compute capability and bfloat16 support when ``device`` (default: the first GPU if
    any) is a CUDA device."""
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    info = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "python": platform.python_version(), "cpu": describe_cpu(),
            "torch": torch.__version__, "platform": platform.platform(), "cpus": os.cpu_count(),
            "device": str(device), "torch_threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(), capability=f"{props.major}.{props.minor}",
                    bf16_supported=torch.cuda.is_bf16_supported())
    return info


def pick_device(name: str, what: str = "train.device") -> torch.device:
    """``auto`` (CUDA when available, else the CPU) or a torch device name; ``what`` names the setting
    in the one-line error for a name torch does not know or a CUDA device on a machine without CUDA."""
    from ..errors import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{what}: {name!r} is not a torch device (auto, cpu, cuda, cuda:N, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{what}: '{name}' requested but CUDA is not available")
    return device
