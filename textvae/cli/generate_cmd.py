"""``textvae generate``, ``reconstruct``, ``interpolate``: sentences from a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..data.reader import read_text, split_lines
from ..errors import DataError
from .common import MAX_SEED, DeviceOption, check_output_file, cli_errors, print_table


def decoding_options(mode: str, temperature: float, top_k: int, top_p: float, beam_size: int, max_length: int):
    from ..generation import DecodingConfig

    config = DecodingConfig(mode=mode, temperature=temperature, top_k=top_k, top_p=top_p, beam_size=beam_size,
                            max_length=max_length)
    config.validate()
    return config


ModeOption = typer.Option("greedy", "--mode", help="Decoding: greedy, sample or beam.")
TemperatureOption = typer.Option(1.0, help="Sampling temperature (--mode sample).")
TopKOption = typer.Option(0, "--top-k", help="Sample among the k most likely words; 0 = all.")
TopPOption = typer.Option(1.0, "--top-p", help="Nucleus sampling threshold; 1 = all.")
BeamOption = typer.Option(5, "--beam-size", min=1, help="Beam width (--mode beam).")
MaxLengthOption = typer.Option(100, "--max-length", min=1, help="Most words per generated sentence.")
SeedOption = typer.Option(0, min=0, max=MAX_SEED,
                          help="Random seed: same seed and batch size give the same output.")
CheckpointOption = typer.Option("best", help="best, last or a .pt file of the run.")
BatchOption = typer.Option(256, "--batch-size", min=1, help="Sentences decoded at once.")


def read_inputs(texts: list[str], input_file: Optional[Path]) -> list[str]:
    if input_file is not None:
        if not input_file.is_file():
            raise DataError(f"{input_file}: input file not found")
        texts = texts + split_lines(read_text(input_file))
    if not texts:
        raise DataError("nothing to reconstruct: give texts or --input FILE")
    return texts


def register(app: typer.Typer) -> None:
    @app.command()
    @cli_errors
    def generate(
        run_dir: Path = typer.Argument(..., help="A trained run folder."),
        n: int = typer.Option(10, "-n", min=1, help="Number of sentences."),
        mode: str = ModeOption, temperature: float = TemperatureOption, top_k: int = TopKOption,
        top_p: float = TopPOption, beam_size: int = BeamOption, max_length: int = MaxLengthOption,
        seed: int = SeedOption, checkpoint: str = CheckpointOption, device: str = DeviceOption,
        batch_size: int = BatchOption,
        out: Optional[Path] = typer.Option(None, help="Write the sentences to this file instead of stdout."),
        metrics: bool = typer.Option(False, "--metrics", help="Also compute Dist-n, Ent-n, self-BLEU, Gram-n "
                                     "(vs the run's train split) and save them beside the run."),
        lm: Optional[Path] = typer.Option(
            None, help="An LSTM-LM run folder: with --metrics, add the PPL of the samples."),
        data_dir: Optional[Path] = typer.Option(None, help="Data root for the train split (--metrics)."),
    ):
        """Sample N sentences from the prior (the strategy's generation rule) and decode them."""
        from ..generation.report import generation_report
        from ..rundir import RunDir, atomic_write, write_json
        from ..runs import load_run

        decoding = decoding_options(mode, temperature, top_k, top_p, beam_size, max_length)
        if out is not None:
            check_output_file(out, "--out")
        run = load_run(run_dir, checkpoint, device)
        train_texts = lm_pair = None
        if metrics:
            from ..data import load_corpus

            train_texts = load_corpus(run.config.data, data_dir).splits["train"].texts
            if lm is not None:
                lm_run = load_run(lm, "best", device)
                lm_pair = (lm_run.model, lm_run.vocab)
        report = generation_report(run.model, run.vocab, n, decoding, seed, batch_size, train_texts, lm_pair)
        samples = report.pop("samples")
        if out is not None:
            atomic_write(check_output_file(out, "--out"), "\n".join(samples) + "\n")
        else:
            for text in samples:
                typer.echo(text)
        if metrics:
            path = RunDir(run_dir).generation_record(f"{mode}-n{n}-seed{seed}")
            write_json(path, report)
            print_table(report["metrics"], title=f"generation metrics (saved to {path}):")

    @app.command()
    @cli_errors
    def reconstruct(
        run_dir: Path = typer.Argument(..., help="A trained run folder."),
        texts: Optional[list[str]] = typer.Argument(None, help="Sentences to reconstruct."),
        input_file: Optional[Path] = typer.Option(None, "--input", help="A file of sentences, one per line."),
        mode: str = ModeOption, temperature: float = TemperatureOption, top_k: int = TopKOption,
        top_p: float = TopPOption, beam_size: int = BeamOption, max_length: int = MaxLengthOption,
        seed: int = SeedOption, checkpoint: str = CheckpointOption, device: str = DeviceOption,
        batch_size: int = BatchOption,
    ):
        """Encode sentences, decode their posterior means: prints input<TAB>reconstruction, BLEU on stderr."""
        from ..generation import reconstruct_texts
        from ..generation.metrics import reconstruction_bleu
        from ..generation.report import model_view
        from ..probing.features import input_max_length
        from ..runs import load_run

        decoding = decoding_options(mode, temperature, top_k, top_p, beam_size, max_length)
        inputs = read_inputs(list(texts or []), input_file)
        run = load_run(run_dir, checkpoint, device)
        outputs = reconstruct_texts(run.model, run.vocab, inputs, decoding, seed, batch_size,
                                    input_max_length(run.config))
        for source, output in zip(inputs, outputs):
            typer.echo(f"{source}\t{output}")
        bleu = reconstruction_bleu(outputs, model_view(run.vocab, inputs, input_max_length(run.config)))
        typer.echo(f"rec-bleu: {bleu:.2f}", err=True)

    @app.command()
    @cli_errors
    def interpolate(
        run_dir: Path = typer.Argument(..., help="A trained run folder."),
        text_a: str = typer.Argument(..., help="Start sentence."),
        text_b: str = typer.Argument(..., help="End sentence."),
        steps: int = typer.Option(5, min=1, help="Sentences on the path, both ends included (>= 2)."),
        mode: str = ModeOption, temperature: float = TemperatureOption, top_k: int = TopKOption,
        top_p: float = TopPOption, beam_size: int = BeamOption, max_length: int = MaxLengthOption,
        seed: int = SeedOption, checkpoint: str = CheckpointOption, device: str = DeviceOption,
    ):
        """Decode points on the line between two sentences' posterior means (in the prior's base space)."""
        from ..generation import interpolate_texts
        from ..probing.features import input_max_length
        from ..runs import load_run

        decoding = decoding_options(mode, temperature, top_k, top_p, beam_size, max_length)
        run = load_run(run_dir, checkpoint, device)
        path = interpolate_texts(run.model, run.vocab, text_a, text_b, steps, decoding, seed,
                                 input_max_length(run.config))
        for i, text in enumerate(path):
            typer.echo(f"{i / (steps - 1):.2f}\t{text}")
