"""Progress of every step that can take more than a few seconds (training epochs, validation, the test
IW-NLL, probe fits, generation metrics): a bar on a terminal, and log lines for everything else.

:class:`Progress` draws a tqdm bar when stderr is a terminal and logs, through the step's logger
(names under ``textvae.``), a start line, a line with the ETA at most every :data:`LOG_INTERVAL`
seconds while the bar is not drawn, and a finish line with the time taken. Its records carry
``textvae_progress = True``: the CLI leaves them out where the bar already shows them (a terminal),
and a caller of the Python API gets them through its own logging configuration.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from tqdm.auto import tqdm

LOG_INTERVAL = 60.0
"""Seconds between two ETA lines of one step in a log."""

PROGRESS = {"textvae_progress": True}
"""``extra`` of progress records (see :func:`textvae.cli.common.show_info_lines`)."""


def bars_disabled(progress: bool) -> bool | None:
    """tqdm's ``disable``: True when bars are turned off, else None, which makes tqdm draw only when
    its stream (stderr) is a terminal, so a log file never gets carriage-return redraws."""
    return None if progress else True


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# "epoch" ends in "ch" but takes a plain "s", so the endings alone cannot decide.
_PLURAL_ES = ("batch", "sh", "s", "x")


def counted(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}{'es' if unit.endswith(_PLURAL_ES) else 's'}"


class Progress:
    """``with Progress("IW-NLL (K=500)", 3000, "sentence", log) as p: ... p.update(n)``; ``unit`` singular.

    ``progress=False`` draws no bar and logs no ETA lines (start and finish lines remain);
    ``expected`` (seconds, e.g. the previous epoch's) gives the start line an ETA; ``every`` logs an
    ETA line after every update (steps of a minute or more, such as probe fits).
    """

    def __init__(self, what: str, total: int | None, unit: str, logger: logging.Logger, progress: bool = True,
                 expected: float | None = None, every: bool = False):
        self.what, self.total, self.unit, self.log = what, total, unit, logger
        self.progress, self.expected, self.every = progress, expected, every
        self.done = 0

    def __enter__(self) -> "Progress":
        self.bar = tqdm(total=self.total, desc=self.what, unit=self.unit, leave=False,
                        disable=bars_disabled(self.progress))
        self.start = self.last_line = time.monotonic()
        size = counted(self.total, self.unit) if self.total is not None else ""
        eta = f"ETA {format_duration(self.expected)}" if self.expected is not None else ""
        detail = ", ".join(p for p in (size, eta) if p)
        self.log.info(f"{self.what}: started" + (f" ({detail})" if detail else ""), extra=PROGRESS)
        return self

    def update(self, n: int = 1, note: str | None = None, **postfix: Any) -> None:
        """``n`` more units done; ``note`` names what just finished in the log line; ``postfix`` is shown
        beside the bar."""
        self.done += n
        self.bar.update(n)
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)
        now = time.monotonic()
        if self.progress and self.bar.disable and (self.every or now - self.last_line >= LOG_INTERVAL):
            self.last_line = now
            self.log.info(self._line(now, note), extra=PROGRESS)

    def _line(self, now: float, note: str | None) -> str:
        elapsed = now - self.start
        text = f"{self.what}: {self.done}/{counted(self.total, self.unit)}" if self.total is not None else \
            f"{self.what}: {counted(self.done, self.unit)}"
        if note:
            text += f" ({note})"
        text += f", {format_duration(elapsed)} elapsed"
        if self.total and self.done:
            text += f", ETA {format_duration(elapsed / self.done * max(self.total - self.done, 0))}"
        return text

    def __exit__(self, exc_type, exc, tb) -> None:
        self.bar.close()
        if exc_type is None:
            self.seconds = time.monotonic() - self.start
            self.log.info(f"{self.what}: done in {format_duration(self.seconds)}"
                          + (f" ({counted(self.done, self.unit)})" if self.done else ""), extra=PROGRESS)
