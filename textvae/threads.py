"""The command line's thread policy: how many threads torch runs, and how its idle threads wait.

- **Count**: ``textvae --threads N``, else ``OMP_NUM_THREADS``, else the CPUs this process may run on
  (``os.sched_getaffinity``: a container's or ``taskset``'s limit, not the host's core count).
- **Waiting**: OpenMP threads that wait at a barrier sleep instead of spinning
  (``OMP_WAIT_POLICY=PASSIVE``; ``KMP_BLOCKTIME=0`` for builds with Intel's OpenMP). On a loaded
  machine a spinning thread burns its core while the partner it waits for is not even scheduled.
  The OpenMP runtime reads these once, when torch loads it, so :func:`set_wait_policy` runs when
  ``textvae.cli`` is imported, before any module that imports torch. A value the user set is kept.

This module must not import torch at import time.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from .errors import ConfigError

WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
MAX_THREADS = 65536
"""More threads than any machine has cores; torch's own limit (a C int) would be a traceback."""


def set_wait_policy(environ: MutableMapping[str, str] = os.environ) -> None:
    for key, value in WAIT_POLICY.items():
        environ.setdefault(key, value)


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def thread_count(requested: int | None, environ: MutableMapping[str, str] = os.environ) -> int:
    """``requested`` (``--threads``), else ``OMP_NUM_THREADS``, else :func:`available_cpus`."""
    if requested is not None:
        if not 1 <= requested <= MAX_THREADS:
            raise ConfigError(f"--threads {requested}: must be a whole number from 1 to {MAX_THREADS}")
        return requested
    value = environ.get("OMP_NUM_THREADS", "").strip()
    if not value:
        return available_cpus()
    first = value.split(",")[0]  # OpenMP's nested form "4,2": the outer level is torch's
    if not (first.isascii() and first.isdigit()) or int(first) < 1:
        raise ConfigError(f"OMP_NUM_THREADS={value!r}: not a positive whole number")
    if int(first) > MAX_THREADS:
        raise ConfigError(f"OMP_NUM_THREADS={value!r}: more than {MAX_THREADS} threads")
    return int(first)


def set_threads(requested: int | None, environ: MutableMapping[str, str] = os.environ) -> int:
    """Apply the policy (``torch.set_num_threads``) and return the count."""
    import torch

    n = thread_count(requested, environ)
    torch.set_num_threads(n)
    return n
