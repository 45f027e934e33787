"""``textvae recipe``, ``textvae train``: resolve a config, train, evaluate on test, write results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .. import recipes
from .. import resolution
from ..config import RunConfig, read_mapping
from ..errors import ConfigError
from ..rundir import RunDir, default_run_dir
from .common import cli_errors, print_table

RESULT_KEYS = ("nll", "elbo", "rec", "kl", "kl_train", "mi", "au", "ppl", "iw_ppl", "mi_estimator")

SetOption = typer.Option(None, "--set", help="Override a config key, e.g. --set train.epochs=5 "
                         "or --set strategy.des_std=1.1 (repeatable).")
ProgressOption = typer.Option(True, help="Progress bars on stderr (drawn only when it is a terminal); "
                              "the per-epoch summary lines are printed either way.")


def with_progress(overrides: Optional[list[str]], progress: bool) -> list[str]:
    return list(overrides or []) + ([] if progress else ["train.progress=false"])


OverwriteOption = typer.Option(False, "--overwrite", help="Delete the run already in the run folder and start "
                               "afresh (without it, such a folder is refused; continue it with --resume).")


def run_training(config: RunConfig, out: Path, data_dir: Optional[Path], resume: bool, overwrite: bool = False) -> None:
    from ..training import train

    if resume and overwrite:
        raise ConfigError("--resume continues the run and --overwrite deletes it: give one of them")
    typer.echo(f"run folder: {out}")
    results = train(config, out, data_dir=data_dir, resume=resume, overwrite=overwrite)
    if results:
        print_table({k: results[k] for k in RESULT_KEYS if k in results},
                    title=f"test results ({config.eval.split}, best epoch {results['best_epoch']}):")


def list_registered() -> None:
    """Each registered strategy and prior with the first line of its docstring."""
    from ..priors import PRIORS
    from ..strategies import STRATEGIES

    for registry, heading in ((STRATEGIES, "registered strategies (a config's [strategies.NAME], in any stack):"),
                              (PRIORS, "registered priors (a config's [prior] name):")):
        names = registry.names()
        width = max(map(len, names))
        typer.echo(f"\n{heading}")
        for name in names:
            typer.echo(f"  {name:<{width}}  {registry.entry(name).help}")


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_errors
    def recipe(
        dataset: Optional[str] = typer.Argument(None, help="Recipe dataset, e.g. demo, ptb, yahoo."),
        strategy: Optional[str] = typer.Argument(None, help="Recipe strategy, e.g. vae, scale-vae."),
        seed: Optional[int] = typer.Option(None, help="Random seed (default: the recipe's)."),
        overrides: Optional[list[str]] = SetOption,
        prior: Optional[str] = typer.Option(None, help="Prior to run the strategy under, e.g. decoupled."),
        out: Optional[Path] = typer.Option(None, help="Run folder (default runs/DATASET/STRATEGY/seedN)."),
        data_dir: Optional[Path] = typer.Option(None, help="Data root (default $TEXTVAE_DATA or the user cache)."),
        resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
        overwrite: bool = OverwriteOption,
        list_: bool = typer.Option(False, "--list", help="List the recipe datasets and strategies."),
        dry_run: bool = typer.Option(False, help="Print the resolved config and stop."),
        progress: bool = ProgressOption,
    ):
        """Train and evaluate DATASET x STRATEGY with the paper's hyper-parameters."""
        if list_ or dataset is None or strategy is None:
            typer.echo("datasets:   " + " ".join(recipes.datasets()))
            typer.echo("strategies: " + " ".join(recipes.strategies()))
            typer.echo("priors:     " + " ".join(["standard-normal", *recipes.priors()]))
            typer.echo("protocols:  " + " ".join(recipes.protocols())
                       + "  (train a strategy as STRATEGY@PROTOCOL)")
            if not list_:
                raise typer.Exit(code=2)
            list_registered()
            return
        config = recipes.resolve(dataset, strategy, with_progress(overrides, progress), seed, prior)
        typer.echo(json.dumps(config.to_dict(), indent=2))
        if dry_run:
            return
        out = out or default_run_dir(dataset, strategy if prior is None else f"{strategy}+{prior}", f"seed{config.seed}")
        run_training(config, out, data_dir, resume, overwrite)

    @app.command()
    @cli_errors
    def train(
        config_file: Optional[Path] = typer.Argument(None, help="A TOML/JSON run config (RunConfig keys)."),
        overrides: Optional[list[str]] = SetOption,
        out: Optional[Path] = typer.Option(None, help="Run folder (default runs/NAME)."),
        data_dir: Optional[Path] = typer.Option(None, help="Data root."),
        resume: Optional[Path] = typer.Option(None, help="Continue this run folder from its last checkpoint "
                                              "(--set may change train.lr, train.epochs and other schedule keys)."),
        overwrite: bool = OverwriteOption,
        progress: bool = ProgressOption,
    ):
        """Train from a config file, or resume a run folder with --resume RUN_DIR."""
        overrides = with_progress(overrides, progress)
        if resume is not None:
            if config_file is not None:
                raise ConfigError("--resume RUN_DIR takes its config from the run folder: drop CONFIG "
                                  "(use --set to change schedule keys)")
            run = RunDir(resume)
            run.require_run()
            config = resolution.load(run.config)
            if overrides:
                config = resolution.from_dict(resolution.apply_overrides(config.to_dict(), overrides),
                                              where=f"--resume {resume}")
            run_training(config, resume, data_dir, resume=True, overwrite=overwrite)
            return
        if config_file is None:
            typer.echo("error: give a CONFIG file or --resume RUN_DIR", err=True)
            raise typer.Exit(code=2)
        config = resolution.from_dict(resolution.apply_overrides(read_mapping(config_file), overrides or []),
                                      where=str(config_file))
        run_training(config, out or default_run_dir(config.name), data_dir, resume=False, overwrite=overwrite)
