"""``textvae report``: a paper-style table over run folders, with the published values beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .. import rundir
from ..errors import ConfigError
from ..report.tables import read_run, render_markdown
from .common import cli_errors


def find_runs(paths: list[Path]) -> list[Path]:
    """Finished run folders given directly, or found below the given folders."""
    runs = [run.path for run in rundir.find_runs(paths)]
    if not runs:
        raise ConfigError(f"no finished runs (results.json) under {', '.join(map(str, paths))}")
    return runs


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_errors
    def report(
        runs: list[Path] = typer.Argument(..., help="Run folders, or folders to search for runs."),
        table: str = typer.Option("table1", help="Published table to compare with (eval/published/NAME.toml)."),
        column: str = typer.Option("yahoo", help="Which published dataset column to show (yahoo, yelp)."),
        out: Optional[Path] = typer.Option(None, help="Also write the Markdown table to this file."),
    ):
        """Aggregate runs over seeds into a Table-1-style Markdown table."""
        markdown = render_markdown([read_run(r) for r in find_runs(runs)], published=table, column=column)
        typer.echo(markdown)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(markdown)
