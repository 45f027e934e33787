"""The sweep's one status line: runs done / running / failed / left, an ETA, and the epoch each
running point has reached.

On a terminal the line is redrawn in place; into a log file it is written as a new line only when
the counts or a running point's epoch change or a minute has passed, so logs get no carriage-return
spam.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA ?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"ETA {h}:{m:02d}:{s:02d}" if h else f"ETA {m}:{s:02d}"


def estimate_eta(run_seconds: list[float], epoch_fractions: list[float], left: int, slots: int,
                 epoch_seconds: list[float], epochs: float) -> float | None:
    """Seconds until the sweep ends: the work left (runs not started, plus what running runs still
    have to do, by their logged epochs) spread over ``slots`` parallel runs. A run's length is the
    mean of the finished ones, or before any finishes, the mean epoch time x epochs."""
    if run_seconds:
        per_run = sum(run_seconds) / len(run_seconds)
    elif epoch_seconds:
        per_run = sum(epoch_seconds) / len(epoch_seconds) * epochs
    else:
        return None
    work = left * per_run + sum((1.0 - min(f, 1.0)) * per_run for f in epoch_fractions)
    active = max(1, min(slots, left + len(epoch_fractions)))
    return work / active


SHOWN_POINTS = 4
"""Running points named on the line (the rest are counted): a terminal line must not wrap."""


class ProgressLine:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None, log_interval: float = 60.0):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.log_interval = log_interval
        self._last_text = ""
        self._last_time = 0.0
        self._last_counts: tuple = ()

    def update(self, done: int, running: int, failed: int, left: int, eta: float | None,
               epochs: dict[str, str] | None = None) -> None:
        """``epochs``: point id -> ``"done/budget"`` epochs of each running point."""
        if not self.enabled:
            return
        text = f"sweep: {done} done, {running} running, {failed} failed, {left} left, {format_eta(eta)}"
        if epochs:
            shown = [f"{point} epoch {at}" for point, at in list(epochs.items())[:SHOWN_POINTS]]
            more = len(epochs) - SHOWN_POINTS
            text += " | " + ", ".join(shown) + (f", +{more} more" if more > 0 else "")
        now = time.monotonic()
        if self.tty:
            if text != self._last_text:
                self.stream.write("\r" + text.ljust(len(self._last_text)))
                self.stream.flush()
        elif (done, running, failed, left, epochs) != self._last_counts or now - self._last_time >= self.log_interval:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last_time = now
        self._last_text, self._last_counts = text, (done, running, failed, left, epochs)

    def close(self) -> None:
        if self.enabled and self.tty and self._last_text:
            self.stream.write("\n")
            self.stream.flush()
