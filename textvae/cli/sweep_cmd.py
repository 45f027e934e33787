"""``textvae sweep``: a grid of recipes x seeds x overrides on Ray, one run folder per point."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from .common import cli_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_errors
    def sweep(
        spec_file: Optional[Path] = typer.Argument(None, help="A sweep file (TOML; see docs/sweeps.md)."),
        dataset: Optional[str] = typer.Option(None, help="Shorthand: recipe datasets, comma-separated."),
        strategy: Optional[str] = typer.Option(None, help="Shorthand: recipe strategies, comma-separated."),
        seeds: str = typer.Option("1", help="Shorthand: a count N (seeds 1..N) or a comma-separated list."),
        overrides: Optional[list[str]] = typer.Option(None, "--set", help="Override for every point, "
                                                      "e.g. --set train.epochs=20 (repeatable)."),
        prior: Optional[str] = typer.Option(None, help="Shorthand: prior to run the strategies under."),
        out: Optional[Path] = typer.Option(None, help="Sweep folder (default sweeps/SPEC_NAME); run folders "
                                           "go to OUT/runs/DATASET/STRATEGY/seedN."),
        data_dir: Optional[Path] = typer.Option(None, help="Data root (default $TEXTVAE_DATA or the user cache)."),
        address: Optional[str] = typer.Option(None, help="Join this Ray cluster (HOST:PORT or auto) instead of "
                                              "starting a Ray of the sweep's own; Ray's token is read from "
                                              "RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token."),
        cpus_per_run: Optional[float] = typer.Option(None, help="CPUs per run (default 1; also its torch threads)."),
        cpus: Optional[int] = typer.Option(None, help="CPUs the sweep's own local Ray instance offers (default: "
                                           "all of this machine's); on a shared machine, leave the rest to others. "
                                           "Not with --address."),
        gpus_per_run: Optional[float] = typer.Option(None, help="GPUs per run (default 1 where the cluster "
                                                     "has GPUs, else 0)."),
        dry_run: bool = typer.Option(False, help="List the points and their run folders, run nothing."),
        no_progress: bool = typer.Option(False, "--no-progress", help="No status line (final summary only)."),
    ):
        """Run every point of a sweep; re-running it skips finished runs and resumes interrupted ones."""
        from ..sweeps import load_spec, shorthand_spec
        from ..sweeps.engine import run_sweep
        from ..sweeps.spec import prepare

        if spec_file is not None:
            if dataset or strategy or overrides or prior:
                raise ConfigError("give a sweep file or --dataset/--strategy/--set, not both")
            spec = load_spec(spec_file)
            default_out = Path("sweeps") / spec_file.stem
        elif dataset and strategy:
            spec = shorthand_spec(dataset, strategy, seeds, list(overrides or []), prior)
            default_out = Path("sweeps") / "-".join(spec.datasets)
        else:
            raise ConfigError("give a sweep file, or --dataset and --strategy")
        if cpus_per_run is not None:
            spec.cpus_per_run = cpus_per_run
        if gpus_per_run is not None:
            spec.gpus_per_run = gpus_per_run
        if spec.cpus_per_run <= 0 or (spec.gpus_per_run is not None and spec.gpus_per_run < 0):
            raise ConfigError("--cpus-per-run must be > 0 and --gpus-per-run >= 0")
        # The sweep draws its own status line; runs log to their folders.
        spec.set = [*spec.set, "train.progress=false"]
        points = prepare(spec, str(spec_file) if spec_file is not None else "command line", data_dir)
        sweep_dir = out or default_out
        if dry_run:
            for point in points:
                typer.echo(f"{point.id}  ->  {point.run_dir(sweep_dir)}")
            typer.echo(f"{len(points)} points")
            return
        command = "textvae " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        try:
            manifest = run_sweep(spec, points, sweep_dir, data_dir, address, progress=not no_progress,
                                 command=command, cpus=cpus)
        except KeyboardInterrupt:
            typer.echo(f"\ninterrupted: finished runs are kept; run the same command again to continue "
                       f"(manifest: {sweep_dir / 'manifest.json'})", err=True)
            raise typer.Exit(code=130) from None
        counts = manifest.counts()
        skipped = sum(e.skipped for e in manifest.entries.values())
        typer.echo(f"sweep {sweep_dir}: {counts['finished']} finished ({skipped} already were), "
                   f"{counts['failed']} failed, {manifest.wall_seconds} s; manifest: {manifest.path}")
        failed = [e for e in manifest.entries.values() if e.status == "failed"]
        for entry in failed:
            typer.echo(f"  failed {entry.id}: {entry.error}", err=True)
        if failed:
            raise typer.Exit(code=1)
