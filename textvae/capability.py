"""Which low-precision modes run on a device, found by running them: one tiny LSTM training step under
autocast, once per process, device and mode.

CPU flags alone do not answer this: oneDNN's bfloat16 LSTM needs AVX512-BF16 or AMX, honours
``ONEDNN_MAX_CPU_ISA``, and a GPU's support depends on its generation and the CUDA build. A failed
step's first line (oneDNN's "could not create a primitive descriptor ...") is the reason given.

``amp_autocast`` is the autocast region the trainer's step runs under, so that the probe tests exactly
what training will run.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from typing import ContextManager

import torch

from .errors import ConfigError

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
"""``train.amp`` values and their autocast dtypes (``off`` has none)."""

@contextmanager
def _without_onednn() -> Iterator[None]:
    # Only the one flag: torch.backends.mkldnn.flags() would also reset oneDNN's TF32 settings.
    was = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = was


def amp_autocast(amp: str, device: torch.device) -> ContextManager:
    """The autocast region of ``train.amp`` = ``amp`` on ``device`` (a no-op for ``off``)."""
    if amp == "off":
        return nullcontext()
    stack = ExitStack()
    if amp == "fp16" and device.type == "cpu":
        # oneDNN has no float16 LSTM on CPUs without AVX512-FP16 ("could not create a primitive
        # descriptor"); torch's own kernels run the LSTMs in float32 and the products in float16.
        stack.enter_context(_without_onednn())
    stack.enter_context(torch.autocast(device.type, dtype=AMP_DTYPES[amp]))
    return stack


def _products_step(device: torch.device) -> None:
    """The evaluator's bfloat16 mode: matrix products under autocast, no autocast LSTM (the
    evaluator's scan runs the recurrence itself)."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        weight, x = torch.randn(5, 8, device=device), torch.randn(3, 8, device=device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
        if not bool(torch.isfinite(torch.nn.functional.linear(x, weight)).all()):
            raise RuntimeError("bfloat16 products are not finite")


def _step(amp: str, device: torch.device) -> None:
    """Forward and backward under ``amp``'s autocast of what a training step runs: an LSTM on a padded
    batch (the decoder; oneDNN's kernel on a CPU), one on a packed batch (the encoder; another kernel)
    and a projection."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        lstm = torch.nn.LSTM(8, 8, batch_first=True, device=device)
        out = torch.nn.Linear(8, 5, device=device)
        x = torch.randn(2, 3, 8, device=device)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor([3, 2], device="cpu"), batch_first=True)
    with amp_autocast(amp, device):
        _, (h, _) = lstm(packed)
        hidden, _ = lstm(x, (h, torch.zeros_like(h)))
        loss = torch.nn.functional.cross_entropy(out(hidden).float().flatten(0, 1),
                                                 torch.zeros(6, dtype=torch.long, device=device))
    loss.backward()
    if not all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in lstm.parameters()):
        raise RuntimeError("the step's gradients are not finite")


@functools.lru_cache(maxsize=None)
def _probe(mode: str, device: str) -> str | None:
    try:  # the caller may be inside inference mode; the step needs autograd
        with torch.inference_mode(False), torch.enable_grad():
            if mode == "eval-bfloat16":
                _products_step(torch.device(device))
            else:
                _step(mode, torch.device(device))
    except Exception as e:  # noqa: BLE001 - any failure means the mode cannot run here; its line says why
        line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return line.split(". Run workload with")[0]  # oneDNN's pointer to its verbose mode
    return None


def amp_unavailable(amp: str, device: torch.device | str) -> str | None:
    """Why ``train.amp`` = ``amp`` cannot run on ``device`` (the failed step's first line), or None when
    it runs. Probed on first use, then cached for the process."""
    if amp == "off":
        return None
    if amp not in AMP_DTYPES:
        raise ValueError(f"amp must be 'off', 'bf16' or 'fp16', got {amp!r}")
    return _probe(amp, str(torch.device(device)))


def eval_precision_unavailable(precision: str, device: torch.device | str) -> str | None:
    """As :func:`amp_unavailable`, for ``eval.precision`` (``float32`` always runs)."""
    return _probe("eval-bfloat16", str(torch.device(device))) if precision == "bfloat16" else None


def probe_results(device: torch.device | str) -> dict[str, dict[str, object]]:
    """``{"train.amp=bf16": {"runs": bool, "reason": str|None}, ...}``: every mode, for env.json and reports."""
    reasons = {f"train.amp={amp}": amp_unavailable(amp, device) for amp in AMP_DTYPES}
    reasons["eval.precision=bfloat16"] = eval_precision_unavailable("bfloat16", device)
    return {mode: {"runs": reason is None, "reason": reason} for mode, reason in reasons.items()}


def require_amp(amp: str, device: torch.device | str, key: str = "train.amp") -> None:
    """Refuse (ConfigError naming ``key``) a mode that cannot run on ``device``: a run asked for these
    numerics, so it gets them or stops; it is not quietly trained in another precision."""
    reason = amp_unavailable(amp, device)
    if reason is not None:
        raise ConfigError(f"{key}={amp!r} cannot run on {device}: {reason}; use {key}=off")


def require_eval_precision(precision: str, device: torch.device | str, key: str = "eval.precision",
                           fix: str | None = None) -> None:
    """As :func:`require_amp`, for ``eval.precision`` / ``textvae eval --precision``; ``fix`` replaces
    the advice to set ``key`` to float32."""
    reason = eval_precision_unavailable(precision, device)
    if reason is not None:
        raise ConfigError(f"{key}={precision!r} cannot run on {device}: {reason}; {fix or f'use {key}=float32'}")
