"""Mixed precision for the training step: the autocast region and, for float16, the gradient scaler.

The trainer (and any procedure that writes its own step) uses it as::

    with precision.autocast():
        loss = ...
    precision.backward(loss)
    precision.unscale(optimizers)   # before clipping: the threshold is in true units
    clip_grad_norm_(...)
    precision.step(optimizers, lambda: ...)   # the optimisers' updates, run unless fp16 overflowed

``bf16`` needs no scaler: bfloat16 has float32's exponent range, so gradients do not underflow.
``fp16`` (for GPUs without fast bfloat16, before Ampere) scales the loss before backward so that
small gradients survive float16, unscales them before clipping (the clip threshold is in true
units), and skips the whole update of any step whose gradients overflowed, halving the scale; the
scale grows back after 2,000 clean steps (torch's defaults). Its state is part of a checkpoint, so
a resumed run continues with the scale the interrupted one had reached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ContextManager, Literal

import torch

from ..capability import AMP_DTYPES as DTYPES
from ..capability import amp_autocast

Amp = Literal["off", "bf16", "fp16"]


class Precision:
    """How one run's training step handles precision: ``amp`` is ``train.amp``."""

    def __init__(self, amp: Amp, device: torch.device):
        if amp not in ("off", *DTYPES):
            raise ValueError(f"amp must be 'off', 'bf16' or 'fp16', got {amp!r}")
        self.amp, self.device = amp, torch.device(device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp == "fp16")
        self._unscaled: dict[int, torch.optim.Optimizer] = {}

    @property
    def dtype(self) -> torch.dtype | None:
        return DTYPES.get(self.amp)

    def autocast(self) -> ContextManager:
        return amp_autocast(self.amp, self.device)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def unscale(self, optimizers: Iterable[torch.optim.Optimizer]) -> None:
        """Divide the gradients of every optimiser whose parameters will be clipped or stepped by the
        scale (fp16; nothing otherwise)."""
        if not self.scaler.is_enabled():
            return
        for optimizer in optimizers:
            if id(optimizer) not in self._unscaled:
                self.scaler.unscale_(optimizer)
                self._unscaled[id(optimizer)] = optimizer

    def step(self, optimizers: Iterable[torch.optim.Optimizer], update: Callable[[], None]) -> None:
        """Run ``update`` (the steps of ``optimizers``) unless (fp16) a gradient overflowed; then adjust the scale.

        One overflow anywhere skips every optimiser: clipping over several optimisers' parameters
        turns one group's inf into NaN in all of them (torch's per-optimiser skip would step those).
        """
        if not self.scaler.is_enabled():
            update()
            return
        self.unscale(optimizers)
        grads = [p.grad for optimizer in self._unscaled.values() for group in optimizer.param_groups
                 for p in group["params"] if p.grad is not None]
        if not grads or bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
            update()
        if self._unscaled:  # torch's update needs at least one recorded overflow check
            self.scaler.update()
        self._unscaled.clear()

    def state_dict(self) -> dict[str, Any]:
        """The scaler's scale and growth counter; empty unless ``fp16``."""
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # A checkpoint from a run without fp16 has no scaler state: start from torch's initial scale.
        if state:
            self.scaler.load_state_dict(state)
