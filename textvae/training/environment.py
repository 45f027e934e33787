"""What a run ran on, saved as env.json beside its config."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from .device import backend_settings


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
        "device": str(device),
        # a process-wide memory/speed trade-off that changes what the run's timings mean
        "onednn_primitive_cache_capacity": os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backends": backend_settings(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


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
