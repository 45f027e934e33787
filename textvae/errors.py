"""User-facing errors: one line, naming the file, line or key at fault.

The CLI prints ``str(err)`` of any :class:`TextVAEError` without a traceback and exits non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TextVAEError(Exception):
    """An error caused by the user's input (data, config, checkpoint), not by a bug."""


class ConfigError(TextVAEError):
    pass


class DataError(TextVAEError):
    pass


class CheckpointError(TextVAEError):
    pass


class TrainingDiverged(TextVAEError):
    """A loss or an epoch's figure was not finite. ``record``: the diverged epoch's metrics record
    (None when the loss of an update diverged mid-epoch)."""

    def __init__(self, message: str, record: dict | None = None):
        super().__init__(message)
        self.record = record


class ArgumentError(TextVAEError, ValueError):
    """A Python API argument with a value outside its range (the message names the argument)."""


class ArgumentTypeError(TextVAEError, TypeError):
    """A Python API argument of the wrong type (the message names the argument)."""


def check_int(value: object, name: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum``, else an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ArgumentError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a string, got {type(value).__name__}")
    return value


class RunFolderError(TextVAEError):
    """A run folder that cannot be used as asked: held by another writer, would be overwritten,
    is not a run, or holds a damaged file."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean ...?)' suffix listing close matches, or '' when none are close."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
