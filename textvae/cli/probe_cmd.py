"""``textvae probe``: the Table-4 linear probe of a run's posterior means on short Yelp."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import ConfigError
from .common import MAX_SEED, DeviceOption, check_output_file, cli_errors


def parse_list(value: str, what: str, cast=str) -> tuple:
    try:
        items = tuple(cast(v.strip()) for v in value.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--{what}: expected a comma-separated list, got {value!r}") from None
    if not items:
        raise ConfigError(f"--{what}: empty list")
    return items


def format_row(name: str, accuracy: dict[str, float], subsets: tuple[int, ...]) -> str:
    return f"| {name} | " + " | ".join(f"{accuracy[str(n)]:.1f}" for n in subsets) + " |"


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_errors
    def probe(
        run_dir: Path = typer.Argument(..., help="A trained run folder."),
        data: str = typer.Option("short-yelp", help="Corpus name under the data root, or a folder with "
                                 "train.N.txt, valid.txt and test.txt (label<TAB>text)."),
        data_dir: Optional[Path] = typer.Option(None, help="Data root (default $TEXTVAE_DATA or the user cache)."),
        subsets: Optional[str] = typer.Option(None, help="Labeled subset sizes, comma-separated "
                                              "(train.N.txt; default 100,500,1000,2000,10000)."),
        probes: Optional[str] = typer.Option(None, help="Classifiers, comma-separated "
                                             "(default sgd-linear,sklearn-logreg)."),
        seed: int = typer.Option(0, min=0, max=MAX_SEED, help="Seed of the SGD probe."),
        checkpoint: str = typer.Option("best", help="best, last or a .pt file of the run."),
        device: str = DeviceOption,
        out: Optional[Path] = typer.Option(None, help="Result file (default RUN_DIR/probe/DATA.json)."),
    ):
        """Linear classifiers on frozen posterior means: accuracy (%) on the full test set per labeled subset."""
        from ..probing import PROBES, SUBSETS, probe_record
        from ..probing.protocol import check_subsets
        from ..rundir import RunDir, write_json

        if out is not None:
            check_output_file(out, "--out")
        sizes = SUBSETS if subsets is None else check_subsets(parse_list(subsets, "subsets", int), "--subsets")
        names = PROBES if probes is None else parse_list(probes, "probes")
        record = probe_record(run_dir, data, data_dir, sizes, names, seed, checkpoint, device)
        typer.echo(f"| {record['name']} probe | " + " | ".join(str(n) for n in sizes) + " |")
        typer.echo("|---|" + "---|" * len(sizes))
        for name in names:
            typer.echo(format_row(name, record["probes"][name]["accuracy"], sizes))
        path = out or RunDir(run_dir).probe_record(Path(data).name)
        write_json(path, record)
        typer.echo(f"saved to {path}")
