"""Process-wide device settings a run asks for (deterministic mode) and reports (backend flags), and
host batches staged for asynchronous copies to a GPU."""

from __future__ import annotations

import os
from typing import Any

import torch

from ..types import Batch

CUBLAS_WORKSPACE = ":4096:8"
"""cuBLAS's reproducible workspace setting (CUDA >= 10.2); the other valid one, ``:16:8``, is kept
when the user has set it."""


def set_deterministic(enabled: bool) -> None:
    """``train.deterministic``: the same run twice on the same GPU gives the same bits.

    Must run before the first cuBLAS call of the process (the workspace setting is read when cuBLAS
    starts). Leaves the process alone when ``enabled`` is false, so it never undoes a caller's choice.
    """
    if not enabled:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def backend_settings() -> dict[str, Any]:
    """The flags that change a run's numbers or speed on GPU, for env.json."""
    cudnn = torch.backends.cudnn
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "cudnn": {"available": cudnn.is_available(), "version": cudnn.version() if cudnn.is_available() else None,
                  "enabled": cudnn.enabled, "benchmark": cudnn.benchmark, "deterministic": cudnn.deterministic,
                  "allow_tf32": cudnn.allow_tf32},
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def staged(batches: list[Batch], device: torch.device) -> list[Batch]:
    """Batches in page-locked host memory when they are bound for a GPU, so that ``Batch.to`` copies
    them without blocking the host (from pageable memory a "non-blocking" copy is synchronous)."""
    if device.type != "cuda":
        return batches
    return [b.pin_memory() for b in batches]


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA runs asynchronously); nothing to wait for on a CPU.
    Timings of GPU work start and end with it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
