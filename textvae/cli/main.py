"""The ``textvae`` command. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import typer

from .common import show_info_lines
from . import data_cmd, generate_cmd, probe_cmd, report_cmd, train_cmd
from . import eval_cmd, plot_cmd, sweep_cmd

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Text VAEs with swappable anti-collapse strategies: train, evaluate, probe, generate.")


@app.callback()
def main() -> None:
    """Text VAEs with swappable anti-collapse strategies: train, evaluate, probe, generate."""
    show_info_lines()

train_cmd.register(app)
report_cmd.register(app)
generate_cmd.register(app)
probe_cmd.register(app)
data_cmd.register(app)
eval_cmd.register(app)
plot_cmd.register(app)
sweep_cmd.register(app)
