"""Shared CLI plumbing: user errors become one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import typer

from ..errors import TextVAEError


def cli_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TextVAEError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: the last checkpoint is kept; continue with --resume", err=True)
            raise typer.Exit(code=130) from None

    return wrapper


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
