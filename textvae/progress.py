"""When progress bars are drawn: every bar in textvae goes through :func:`bars_disabled`."""

from __future__ import annotations


def bars_disabled(progress: bool) -> bool | None:
    """tqdm's ``disable``: True when bars are turned off, else None, which makes tqdm draw only when
    its stream (stderr) is a terminal, so a log file never gets carriage-return redraws."""
    return None if progress else True
