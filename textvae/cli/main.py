"""The ``textvae`` command. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

from typing import Optional

import typer

from .. import __version__
from ..threads import set_threads
from . import data_cmd, eval_cmd, generate_cmd, import_cmd, plot_cmd, probe_cmd, report_cmd, sweep_cmd, train_cmd
from .common import OneLineUsageErrors, cli_errors, show_info_lines

app = typer.Typer(cls=OneLineUsageErrors, no_args_is_help=True, add_completion=False,
                  help="Text VAEs with swappable anti-collapse strategies: train, evaluate, probe, generate.")


def print_version(value: bool) -> None:
    if value:
        typer.echo(f"textvae {__version__}")
        raise typer.Exit()


@app.callback()
@cli_errors
def main(threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="Torch threads (default: $OMP_NUM_THREADS, else the CPUs this process "
        "may use). Give it before the command: textvae --threads 2 train ..."),
         version: bool = typer.Option(False, "--version", callback=print_version, is_eager=True,
                                      help="Print textvae's version and exit.")) -> None:
    """Text VAEs with swappable anti-collapse strategies: train, evaluate, probe, generate."""
    set_threads(threads)
    show_info_lines()

train_cmd.register(app)
report_cmd.register(app)
generate_cmd.register(app)
probe_cmd.register(app)
data_cmd.register(app)
eval_cmd.register(app)
plot_cmd.register(app)
sweep_cmd.register(app)
import_cmd.register(app)
