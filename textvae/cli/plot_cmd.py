"""``textvae plot``: validation KL, MI, AU and -ELBO against epoch for one or several runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import cli_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_errors
    def plot(
        run_dirs: list[Path] = typer.Argument(..., help="One or more run folders (their metrics.jsonl)."),
        out: Optional[Path] = typer.Option(None, help="Image file; its suffix names the format: .png, .pdf, .svg, "
                                           ".eps, .jpg, ... (default RUN_DIR/training_curves.png for one run, "
                                           "./training_curves.png for several)."),
    ):
        """Plot validation KL, MI, AU and -ELBO against epoch for one or several runs."""
        from ..report.plots import plot_training_curves

        default = run_dirs[0] / "training_curves.png" if len(run_dirs) == 1 else Path("training_curves.png")
        typer.echo(f"saved {plot_training_curves(run_dirs, out or default)}")
