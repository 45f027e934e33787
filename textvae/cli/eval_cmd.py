"""``textvae eval``: IW-NLL, -ELBO, KL, PPL, MI and AU of a trained run on a split."""

from __future__ import annotations

import math
import os
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..errors import CheckpointError
from .common import MAX_SEED, DeviceOption, check_output_file, cli_errors, print_table

SHOWN = ("nll", "iw_ppl", "elbo", "rec", "kl", "kl_estimator", "ppl", "mi", "mi_estimator", "au", "n_sentences",
         "n_targets", "iw_samples", "precision")
EXTRA = ("scale_reading", "kl_train", "mi_unscaled", "au_unscaled", "iw_gain", "rec_posterior",
         "rec_prior", "latent_use", "latent_use_samples")
"""Shown when present: a model that decodes rescaled latents (Scale-VAE); ``--latent-use``."""


class SplitName(str, Enum):
    train = "train"
    valid = "valid"
    test = "test"


class MIEstimatorName(str, Enum):
    whole_set = "whole-set"
    per_batch = "per-batch"


class ScaleReadingName(str, Enum):
    scaled_posterior = "scaled-posterior"
    scaled_prior = "scaled-prior"


class PrecisionName(str, Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"


def register(app: typer.Typer) -> None:
    @app.command("eval")
    @cli_errors
    def eval_(
        run_dir: Path = typer.Argument(..., help="A trained run folder."),
        split: SplitName = typer.Option(SplitName.test, help="Split of the run's corpus to evaluate."),
        iw_samples: Optional[int] = typer.Option(
            None, "--iw-samples", min=1, help="Importance samples per sentence (default: the run's eval.iw_samples)."),
        mi_estimator: Optional[MIEstimatorName] = typer.Option(
            None, "--mi-estimator",
            help="Aggregate posterior over the whole set or per batch (default: the run's eval.mi_estimator)."),
        max_tokens: Optional[int] = typer.Option(
            None, "--max-tokens", min=1, help="Sentences x samples x tokens per forward pass (memory budget; "
            "default: the run's eval.max_tokens, else sized for the device)."),
        limit: Optional[int] = typer.Option(None, min=1, help="Evaluate only the first N sentences of the split."),
        precision: Optional[PrecisionName] = typer.Option(
            None, help="bfloat16: decoder matrix products in bfloat16 autocast (faster on CPUs with AVX512-BF16 "
            "and on GPUs); sums stay float32+ (default: the run's eval.precision)."),
        seed: Optional[int] = typer.Option(None, min=0, max=MAX_SEED,
                                           help="Sampling seed (default: the run's seed)."),
        checkpoint: str = typer.Option("best", help="best, last or a .pt file of the run."),
        device: str = DeviceOption,
        data_dir: Optional[Path] = typer.Option(None, help="Data root (default $TEXTVAE_DATA or the user cache)."),
        progress: bool = typer.Option(True, help="Show progress bars."),
        out: Optional[Path] = typer.Option(None, help="Results file (default RUN_DIR/eval_SPLIT.json)."),
        scale_reading: Optional[ScaleReadingName] = typer.Option(
            None, help="Scale-VAE: the generative model scored (default: the run's eval.scale_reading)."),
        latent_use: Optional[int] = typer.Option(
            None, "--latent-use", min=1, metavar="SAMPLES",
            help="Also score how much the decoder uses z: reconstruction with z from the posterior "
            "against z from the prior, SAMPLES latents per sentence, and the NLL split "
            "(docs/evaluation.md)."),
    ):
        """Evaluate a run's checkpoint on a split; print a table and save the results as JSON."""
        from ..capability import require_eval_precision
        from ..data import encode_texts, load_corpus, make_batches
        from ..evaluation import evaluate
        from ..evaluation.evaluate import latent_clutter
        from ..rundir import RunDir, write_json, write_latents
        from ..runs import load_run

        if out is not None:
            check_output_file(out, "--out")
        run = load_run(run_dir, checkpoint, device)
        config, data = run.config, run.config.data
        require_eval_precision(precision.value if precision else config.eval.precision, device,
                               "--precision" if precision else f"{run_dir}: eval.precision", "use --precision float32")
        if scale_reading is not None:
            run.model.scale_reading = scale_reading.value
        texts = load_corpus(data, data_dir).splits[split.value].head(limit)
        sentences = encode_texts(run.vocab, texts.texts, texts.labels, max_length=data.max_length)
        batches = list(make_batches(sentences, data.batch_size, data.batching))
        results = evaluate(
            run.model, batches,
            iw_samples=iw_samples or config.eval.iw_samples,
            max_tokens=max_tokens or config.eval.max_tokens,
            mi_estimator=(mi_estimator.value if mi_estimator else config.eval.mi_estimator),
            au_threshold=config.eval.au_threshold,
            seed=config.seed if seed is None else seed,
            precision=precision.value if precision else config.eval.precision,
            progress=progress,
        )
        bad = [k for k in ("nll", "elbo", "kl") if not math.isfinite(results[k])]
        if bad:
            values = ", ".join(f"{k} is {results[k]}" for k in bad)
            raise CheckpointError(f"{run.checkpoint}: {values} on {split.value}: "
                                  "the model is numerically unstable (diverged); nothing saved")
        latents = None
        if config.eval.latent_clutter:
            scores, latents = latent_clutter(run.model, batches, seed=config.seed if seed is None else seed)
            results.update(scores)
        if latent_use is not None:
            from ..evaluation.latent_use import latent_use as score_latent_use
            from ..evaluation.latent_use import nll_decomposition

            use = score_latent_use(run.model, batches, samples=latent_use,
                                   seed=config.seed if seed is None else seed)
            results.update(iw_gain=nll_decomposition(results)["iw_gain"],
                           latent_use_samples=use.pop("samples"), **use)
        # The checkpoint relative to its run folder: a record names no machine path.
        checkpoint_file = os.path.relpath(run.checkpoint, run_dir)
        results.update({"split": split.value, "limit": limit, "checkpoint": Path(checkpoint_file).as_posix()})
        if getattr(run.model, "decodes_other_posterior", lambda: False)():
            results["scale_reading"] = run.model.scale_reading
        out = out or RunDir(run_dir).eval_record(split.value)
        write_json(out, results)
        if latents is not None:  # beside its record: the training's own latents_SPLIT.json stays as it was
            write_latents(out.with_suffix(".latents.json"), split.value, latents.means, latents.labels, latents.index)
        shown = SHOWN + tuple(k for k in EXTRA if k in results)
        print_table({k: results[k] for k in shown}, title=f"{run_dir} ({split.value}, {checkpoint} checkpoint):")
        typer.echo(f"saved {out}")
