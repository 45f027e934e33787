"""Shared CLI plumbing: user errors become one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import functools
import json
import logging
import unicodedata
from pathlib import Path
from typing import Any, Callable

import typer
import typer.core
from typer.core import TyperGroup

from ..errors import ConfigError, TextVAEError
from ..rundir import is_disk_full

MAX_SEED = 2**63 - 1
"""Seeds are torch generator seeds and a config's ``seed`` (below 2**63): a larger one is a usage
error."""


def one_line(message: str) -> str:
    """``message`` on one line whatever it quotes: control characters and line or paragraph
    separators (a path or value may hold them) are written as escapes."""
    return "".join(ch if unicodedata.category(ch) not in ("Cc", "Zl", "Zp") else
                   ascii(ch)[1:-1] for ch in message)


def echo_error(message: str) -> None:
    typer.echo(f"error: {one_line(message)}", err=True)


def cli_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TextVAEError as e:
            echo_error(str(e))
            raise typer.Exit(code=2) from None
        except OSError as e:  # full disk, permissions, a path through a file: the OS's one line
            if e.errno is None:
                raise
            where = f"{e.filename}: " if e.filename else ""
            hint = "; free some space (the last complete checkpoint and files are kept)" if is_disk_full(e) else ""
            echo_error(f"{where}{e.strerror or e}{hint}")
            raise typer.Exit(code=2) from None
        except (MemoryError, RuntimeError) as e:  # sizes the machine cannot hold
            if not out_of_memory(e):
                raise
            first = (str(e).strip().splitlines() or [""])[0]
            echo_error(f"out of memory{': ' + first if first else ''} (lower the sizes in the config or "
                       "command line)")
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: the last checkpoint is kept; continue with --resume", err=True)
            raise typer.Exit(code=130) from None

    return wrapper


def out_of_memory(error: BaseException) -> bool:
    """A Python MemoryError, torch's OutOfMemoryError, or its CPU allocator's refusal."""
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error))


# typer vendors click from 0.29 on; before, it uses click itself.
UsageError = (getattr(typer.core, "_click", None) or __import__("click")).exceptions.UsageError


class OneLineUsageErrors(TyperGroup):
    """Command-line usage errors (a bad option value, a missing argument, an unknown option) as one
    line naming the command and the option, like every other bad input, instead of a usage panel."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except UsageError as e:
            one_line_usage_error(e, ctx.command_path)

    def make_context(self, info_name, args, parent=None, **extra):
        """The options before the command (``textvae --threads 0 ...``) are parsed here."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as e:
            one_line_usage_error(e, info_name or "textvae")


def one_line_usage_error(error: Exception, where: str) -> None:
    if type(error).__name__ == "NoArgsIsHelpError":  # a bare command: its help is the answer
        raise error
    where = error.ctx.command_path if error.ctx is not None else where
    echo_error(f"{where}: {error.format_message()}")
    raise typer.Exit(code=2) from None


def _device(value: str) -> str:
    from ..training.environment import pick_device

    try:
        return str(pick_device(value, "--device"))
    except ConfigError as e:
        raise typer.BadParameter(str(e).removeprefix("--device: ")) from None


DeviceOption = typer.Option("auto", callback=_device, help="Torch device: auto (CUDA when available, else the "
                            "CPU, as training), cpu, cuda, cuda:N.")


def check_output_file(path: Path, option: str) -> Path:
    """An output file path that can be written: not a folder, and its parent not a file."""
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a folder; give a file name")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ConfigError(f"{option} {path}: {parent} is a file, not a folder")
    return path


class EchoHandler(logging.Handler):
    """Log records as plain lines on stderr (stdout is the command's result), written between
    progress-bar redraws. Progress records (:mod:`textvae.progress`) are left out on a terminal,
    where the bars show the same."""

    def emit(self, record: logging.LogRecord) -> None:
        import sys

        from tqdm.auto import tqdm

        if getattr(record, "textvae_progress", False) and sys.stderr.isatty():
            return
        tqdm.write(self.format(record), file=sys.stderr)


def show_info_lines() -> None:
    """The CLI prints textvae's INFO records (per-epoch summaries, progress lines in a log); the Python
    API leaves them to the caller's logging configuration."""
    logger = logging.getLogger("textvae")
    if not any(isinstance(h, EchoHandler) for h in logger.handlers):
        logger.addHandler(EchoHandler())
    logger.setLevel(logging.INFO)


def print_table(rows: dict[str, Any], title: str | None = None) -> None:
    """A two-column key/value table of scalar results."""
    if title:
        typer.echo(title)
    width = max(len(k) for k in rows) if rows else 0
    for key, value in rows.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        elif isinstance(value, (list, dict)):
            value = json.dumps(value)
        typer.echo(f"  {key:<{width}}  {value}")
