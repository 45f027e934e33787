"""The ``textvae`` command. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import typer

from . import train_cmd

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Text VAEs with swappable anti-collapse strategies: train, evaluate, probe, generate.")

train_cmd.register(app)
