"""``SWEEP/manifest.json``: every point of a sweep, its status, its run folder and its error.

Statuses: ``pending`` (not started), ``running`` (with ``epoch``, the epochs its run has logged),
``finished`` (trained, or found finished and skipped), ``failed`` (with a one-line error),
``interrupted`` (the sweep was stopped after the point's run had begun; re-running it resumes the
point). A point that had not begun when the sweep was stopped stays ``pending``. The file is
rewritten atomically whenever a status changes, so it is whole even when the sweep is killed.

The file names no machine path, so it stays true when the sweep folder is moved or committed: run
folders are relative to the sweep folder, and the command's absolute paths are relative to the
folder it was typed in (or, outside it, shortened to ``.../NAME``).
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..rundir import read_json, write_json

MANIFEST = "manifest.json"
STATUSES = ("pending", "running", "finished", "failed", "interrupted")


@dataclass
class Entry:
    id: str
    run_dir: str
    status: str = "pending"
    error: str | None = None
    seconds: float | None = None
    skipped: bool = False
    resumed_from_epoch: int | None = None
    epoch: int | None = None
    """Epochs the point's run has logged (its metrics.jsonl), while it runs and once interrupted."""


class Manifest:
    def __init__(self, sweep_dir: Path, spec: dict[str, Any], entries: list[Entry], command: str = ""):
        self.path = Path(sweep_dir) / MANIFEST
        self.spec = spec
        self.entries = {e.id: e for e in entries}
        self.command = portable_command(command)
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.wall_seconds: float | None = None
        self.concurrent_runs: int | None = None
        """Runs the Ray instance could hold at once: what the wall time was measured with."""

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for entry in self.entries.values():
            counts[entry.status] += 1
        return counts

    def mark_stopped(self) -> None:
        """The sweep was stopped: a point whose run folder holds a run (it had begun, in this sweep or
        an earlier one) is interrupted; a point that never began stays pending."""
        from ..rundir import RunDir

        for entry in self.entries.values():
            if entry.status in ("pending", "running"):
                run = RunDir(entry.run_dir)
                entry.status = "interrupted" if run.is_run() else "pending"
                if run.is_run():
                    entry.epoch = len(run.read_metrics(strict=False))

    def save(self) -> None:
        write_json(self.path, {"command": self.command, "started": self.started, "wall_seconds": self.wall_seconds,
                               "concurrent_runs": self.concurrent_runs, "counts": self.counts(), "spec": self.spec,
                               "points": [{**asdict(e), "run_dir": portable_path(e.run_dir, self.path.parent)}
                                          for e in self.entries.values()]})

    @staticmethod
    def read(sweep_dir: Path) -> dict[str, Any]:
        return read_json(Path(sweep_dir) / MANIFEST)


def portable_path(path: str | Path, base: str | Path) -> str:
    """``path`` relative to ``base`` (forward slashes), or ``.../NAME`` when it is not below it."""
    path, base = Path(os.path.abspath(path)), Path(os.path.abspath(base))
    try:
        return path.relative_to(base).as_posix() or "."
    except ValueError:
        return f".../{path.name}"


def portable_command(command: str, cwd: str | Path | None = None) -> str:
    """The command with every absolute path (``/x/y`` or ``--opt=/x/y``) made portable against ``cwd``."""
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: keep the command as typed
        return command
    cwd = Path.cwd() if cwd is None else Path(cwd)

    def one(word: str) -> str:
        option, eq, value = word.partition("=") if word.startswith("--") else ("", "", word)
        if not os.path.isabs(value):
            return word
        return f"{option}{eq}{portable_path(value, cwd)}"

    return " ".join(shlex.quote(one(w)) for w in words)
