"""``textvae data list|prepare|download``: the registered corpora and getting them into the data root."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..data.catalog import CATALOG, corpus_dir, resolve_data_root
from ..data.download import download_corpus
from ..data.prepare import PreparedFile, prepare_corpus
from .common import cli_errors

DataDirOption = typer.Option(None, "--data-dir", help="Data root (default $TEXTVAE_DATA or the user cache).")
NoVerifyOption = typer.Option(False, "--no-verify", help="Accept files whose sha256 differs from the published one.")
ForceOption = typer.Option(False, "--force", help="Replace the corpus if it is already in the data root.")


def report(name: str, target: Path, files: list[PreparedFile], show_source: bool) -> None:
    typer.echo(f"{name}: ready in {target}")
    width = max(len(f.name) for f in files)
    for f in files:
        source = f"  <- {f.source}" if show_source else ""
        typer.echo(f"  {f.name:<{width}}  {f.check}{source}")


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(no_args_is_help=True, help="Registered corpora: list them, prepare or download them.")
    app.add_typer(data_app, name="data")

    @data_app.command("list")
    @cli_errors
    def list_corpora(data_dir: Optional[Path] = DataDirOption):
        """Each registered corpus, whether it is in the data root, and its folder."""
        typer.echo(f"data root: {resolve_data_root(data_dir)}")
        width = max(len(name) for name in CATALOG)
        for name, info in CATALOG.items():
            folder = corpus_dir(name, data_dir)
            state = "present" if folder.is_dir() else "missing"
            typer.echo(f"  {name:<{width}}  {state:<7}  {folder}")
            typer.echo(f"  {'':<{width}}  {info.description}")

    @data_app.command()
    @cli_errors
    def prepare(
        name: str = typer.Argument(..., help="Registered corpus name (textvae data list)."),
        source: Path = typer.Option(..., "--from", help="Folder holding the corpus files (published names are fine)."),
        data_dir: Optional[Path] = DataDirOption,
        no_verify: bool = NoVerifyOption,
        force: bool = ForceOption,
    ):
        """Copy a corpus from local files into the data root, normalising names and checking sha256."""
        target, files = prepare_corpus(name, source, data_dir, verify=not no_verify, force=force)
        report(name, target, files, show_source=True)

    @data_app.command()
    @cli_errors
    def synthesize(
        out: Path = typer.Argument(..., help="Folder to write train/valid/test.txt (label<TAB>sentence) into."),
        seed: int = typer.Option(0, help="Seed of the component means, the generator's weights and the samples."),
        components: int = typer.Option(16, help="Gaussian mixture components (labels c0 .. cK-1)."),
        spacing: float = typer.Option(4.0, help="Distance between neighbouring component means (a grid)."),
        component_std: float = typer.Option(0.15, help="Std of each component."),
        vocab_size: int = typer.Option(1000, help="Tokens w0 .. wV-1."),
        length: int = typer.Option(10, help="Tokens per sentence."),
        weight_scale: float = typer.Option(3.0, help="Std of the generator's random weights (larger: sentences "
                                           "follow z more closely)."),
        n_train: int = typer.Option(20_000, help="Training sentences."),
        n_valid: int = typer.Option(2_000, help="Validation sentences."),
        n_test: int = typer.Option(2_000, help="Test sentences."),
        force: bool = typer.Option(False, "--force", help="Overwrite files in a non-empty folder."),
    ):
        """Generate a labeled synthetic corpus: 2-D mixture-of-Gaussians latents, sentences from a random LSTM LM."""
        from ..data.synthesize import SynthesisConfig, write_synthetic_corpus

        config = SynthesisConfig(seed=seed, components=components, spacing=spacing, component_std=component_std,
                                 vocab_size=vocab_size, length=length, weight_scale=weight_scale, n_train=n_train,
                                 n_valid=n_valid, n_test=n_test)
        folder = write_synthetic_corpus(config, out, force=force)
        typer.echo(f"synthetic corpus ready in {folder} (use data.corpus = \"{folder}\")")

    @data_app.command()
    @cli_errors
    def download(
        name: str = typer.Argument(..., help="Registered corpus name (textvae data list)."),
        data_dir: Optional[Path] = DataDirOption,
        no_verify: bool = NoVerifyOption,
        force: bool = ForceOption,
    ):
        """Fetch a corpus from its original public release into the data root and check sha256."""
        target, files = download_corpus(name, data_dir, verify=not no_verify, force=force, log=typer.echo)
        report(name, target, files, show_source=False)
