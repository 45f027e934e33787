"""``textvae import``: a model saved by a reference program (He et al. 2019 and its descendants) as
a run folder that ``eval``, ``probe``, ``generate``, ``reconstruct`` and ``report`` read."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..reference.state_dicts import PROGRAMS
from .common import cli_errors
from .train_cmd import SetOption

Program = Enum("Program", {name.replace("-", "_"): name for name in PROGRAMS}, type=str)


def register(app: typer.Typer) -> None:
    @app.command("import")
    @cli_errors
    def import_(
        model: Path = typer.Argument(
            ..., help="The state dict the program saved (its model.pt / NAME.pt)."
        ),
        from_: Program = typer.Option(
            ...,
            "--from",
            help="The program that saved it: "
            + ", ".join(f"{k} ({v})" for k, v in PROGRAMS.items())
            + ".",
        ),
        out: Path = typer.Option(..., help="The run folder to write (new or empty)."),
        args: Optional[Path] = typer.Option(
            None,
            "--args",
            help="The program's arguments as a JSON object "
            "(its options merged with its config module: seed, train_data, "
            "kl_start, gamma, ...); they pick the row and the corpus.",
        ),
        corpus: Optional[Path] = typer.Option(
            None,
            help="Folder of the corpus it was trained on (train.txt "
            "valid.txt test.txt; default: the folder of --args' train_data).",
        ),
        recipe: Optional[str] = typer.Option(
            None,
            help="The textvae recipe hosting the model (default: "
            "inferred from its tensors and --args).",
        ),
        overrides: Optional[list[str]] = SetOption,
        final_kl_weight: Optional[float] = typer.Option(
            None,
            "--final-kl-weight",
            min=0.0,
            max=1.0,
            help="DU-VAE: the KL weight of the run's last training step, which decides whether "
            "the program scored the model with its variance floor (only at 1); default: from "
            "--args' kl_start, warm_up and epochs, else 1 (as the program's --eval).",
        ),
        evaluate: bool = typer.Option(
            False,
            help="Also score the test split and write results.json "
            "(a finished run, listed by textvae report).",
        ),
        limit: Optional[int] = typer.Option(
            None, min=1, help="With --evaluate: the first N test sentences."
        ),
    ):
        """Turn a reference program's saved model into a textvae run folder."""
        from ..reference.importing import import_reference, score_imported

        # the config records the scored subset, as a trained run's does (report reads it there)
        sets = [*(overrides or []), *([f"eval.limit={limit}"] if evaluate and limit else [])]
        record = import_reference(
            from_.value, model, out, args, corpus, recipe, sets, final_kl_weight
        )["imported_from"]
        typer.echo(
            f"imported {model} ({record['program']}) as recipe {record['recipe']} into {out}"
        )
        if evaluate:
            results = score_imported(out)
            typer.echo(
                f"test: IW-NLL {results['nll']:.2f}, KL {results['kl']:.2f}, "
                f"MI {results['mi']:.2f}, "
                f"AU {results['au']} (saved {out / 'results.json'})"
            )
