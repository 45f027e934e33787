"""``textvae report``: a paper table over run folders, with the published values beside it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from .common import check_output_file, cli_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_errors
    def report(
        runs: list[Path] = typer.Argument(..., help="Run folders, or folders (e.g. a sweep's) to search for runs."),
        table: str = typer.Option("table1", help="table1 (NLL/KL/MI/AU), table3 (hyper-parameter grid), "
                                  "table4 (linear probe), table5 (generation), "
                                  "clutter (label separation of the latents)."),
        column: Optional[str] = typer.Option(None, help="Published column to show beside ours (table1: yahoo or "
                                             "yelp; default the first)."),
        fmt: str = typer.Option("markdown", "--format", help="markdown, csv or latex."),
        out: Optional[Path] = typer.Option(None, help="Also write the table to this file."),
        figure: Optional[Path] = typer.Option(None, help="Also draw the table (table1: NLL against MI; table4: "
                                              "accuracy curves, error bars = std over seeds; clutter: the test "
                                              "posterior means of each row's first seed)."),
        records_out: Optional[Path] = typer.Option(
            None, "--records", help="Also write one JSON record per run of the table's rows (table1, table3, "
            "clutter): its folder (relative to the file), seed, distinguishing settings and values."),
        merge: Optional[list[str]] = typer.Option(None, "--merge", help="Average over this config key as over "
                                                  "seeds (repeatable; data.* and eval.* are refused)."),
    ):
        """Aggregate runs over seeds: one row per corpus, recipe and differing config, published values beside."""
        from ..report.plots import FIGURES, check_plot_file
        from ..report.records import read_records
        from ..report.render import render
        from ..report.tables import build_table, check_records_table, run_records
        from ..rundir import write_json

        merged = tuple(merge or ())
        if figure is not None and table not in FIGURES:
            raise ConfigError(f"--figure: no figure for {table} (figures: {', '.join(FIGURES)})")
        if out is not None:
            check_output_file(out, "--out")
        if records_out is not None:
            check_output_file(records_out, "--records")
            check_records_table(table)
        if figure is not None:
            check_output_file(figure, "--figure")
            check_plot_file(figure, "--figure")
        records = read_records(runs)
        text = render(build_table(table, records, column, merged), fmt)
        typer.echo(text)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
        if records_out is not None:
            base = records_out.resolve().parent
            rows = [{**r, "run": Path(os.path.relpath(Path(r["run"]).resolve(), base)).as_posix()}
                    for r in run_records(table, records, merged)]
            write_json(records_out, rows)
            typer.echo(f"records: {records_out} ({len(rows)} runs)")
        if figure is not None:
            typer.echo(f"figure: {FIGURES[table](records, figure, merged)}")
