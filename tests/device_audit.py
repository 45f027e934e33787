"""Finds tensors textvae creates without naming a device: on a GPU each one is a tensor built on the
host inside a CUDA step (a copy and a synchronisation, or a device-mismatch error). Works on CPU,
where such a tensor is otherwise invisible: every factory call is checked for a ``device``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

import textvae

PACKAGE = Path(textvae.__file__).resolve().parent
FACTORIES = {"zeros", "ones", "empty", "full", "arange", "range", "linspace", "logspace", "eye", "tensor",
             "as_tensor", "rand", "randn", "randint", "randperm", "normal", "empty_strided"}
# Host-side by design: sentences are batched on the host and copied (pinned) to the device.
HOST_MODULES = {PACKAGE / "data"}


class DeviceAudit(TorchFunctionMode):
    """``with DeviceAudit() as audit: ...``; then ``audit.found`` lists "file:line: torch.f(...)"."""

    def __init__(self, root: Path = PACKAGE):
        super().__init__()
        self.root = root
        self.found: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in FACTORIES and getattr(func, "__module__", "") in ("torch", "torch._C._VariableFunctions") \
                and "device" not in kwargs and not (name == "normal" and args and isinstance(args[0], torch.Tensor)):
            where = self._caller()
            if where is not None:
                self.found.append(f"{where}: torch.{name}(...) without device=")
        return func(*args, **kwargs)

    def _caller(self) -> str | None:
        frame = sys._getframe(2)
        while frame is not None:
            path = Path(frame.f_code.co_filename).resolve()
            if self.root in path.parents:
                if any(host in path.parents for host in HOST_MODULES):
                    return None
                return f"{path.relative_to(self.root.parent)}:{frame.f_lineno}"
            frame = frame.f_back
        return None
