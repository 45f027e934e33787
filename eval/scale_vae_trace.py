"""Scale-VAE per update: the factor the decoder's means were scaled by, the std of the raw and of the
scaled means, the KL, the reconstruction and the gradient norm before clipping, for the first epochs
of a run (why f_bar runs away under SGD lr 1 with clipping at 5).

Every update of each traced run records, on its own training batch: ``f`` (mean over dimensions of
the factor applied: the batch's own during the first ``f_epo`` epochs, f_bar afterwards),
``raw_std`` / ``scaled_std`` (mean over dimensions of the batch std of mu and of the means the
decoder read), ``kl`` and ``rec`` (per sentence), ``grad_norm`` (the norms ``clip_grad_norm_`` saw,
one per clipping scope). Every ``--probe-every`` updates it also encodes a fixed sample of training
sentences and records the std of their raw means and of the means scaled by the evaluation factor
(``probe_raw_std``, ``probe_scaled_std``): the decoder's input drifting away from des_std between
two updates of f_bar shows there.

    python -m eval.scale_vae_trace --recipe scale-vae-slides --epochs 3 --name slides \\
        --out eval/results/scale_vae_fair/trace
    python -m eval.scale_vae_trace --summarize eval/results/scale_vae_fair/trace \\
        > eval/results/scale_vae_fair/trace.md

A run stops at the end of ``--epochs`` or when training diverges (non-finite loss), which is recorded.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from textvae import recipes
from textvae.errors import TrainingDiverged
from textvae.strategies.scale_vae import ScaleVAE
from textvae.training.trainer import Trainer


def scale_vae_strategy(model) -> ScaleVAE:
    return next(s for s in model.strategy if isinstance(s, ScaleVAE))


def trace_run(dataset: str, recipe: str, overrides: list[str], epochs: int, seed: int,
              probe_every: int, probe_size: int, data_dir: Path | None) -> dict:
    config = recipes.resolve(dataset, recipe, [*overrides, "train.progress=false", "train.tensorboard=false",
                                               "train.diagnostics=false"], seed)
    updates: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(config, Path(scratch) / "run", data_dir)
        scale = scale_vae_strategy(trainer.model)
        step: dict = {}

        own_decoder_posterior = scale.decoder_posterior

        def decoder_posterior(posterior, ctx):
            scaled = own_decoder_posterior(posterior, ctx)
            if ctx.training and posterior.mu.size(0) > 1:
                mu, out = posterior.mu.detach(), scaled.mu.detach()
                ratio = (out - out.mean(0)).std(0) / (mu.std(0) + 1e-12)
                step.update(raw_std=float(mu.std(0).mean()), scaled_std=float(out.std(0).mean()),
                            f=float(ratio.mean()))
            return scaled

        scale.decoder_posterior = decoder_posterior
        own_clip = torch.nn.utils.clip_grad_norm_

        def clip(parameters, max_norm, *args, **kwargs):
            norm = own_clip(parameters, max_norm, *args, **kwargs)
            step.setdefault("grad_norm", []).append(float(norm))
            return norm

        own_train_step = trainer.train_step

        def train_step(batch):
            terms = own_train_step(batch)
            step.update(kl=float(terms.kl.detach().mean()), rec=float(terms.rec.detach().mean()))
            return terms

        trainer.train_step = train_step
        sample = trainer.training_sample(probe_size)

        def after_update(i: int, batch) -> None:
            record = {"epoch": trainer.state.epoch + 1, "update": i + 1, "step": trainer.state.step, **step}
            if i % probe_every == 0:
                with torch.no_grad():
                    was_training = trainer.model.training
                    trainer.model.eval()
                    mu = torch.cat([trainer.model.trained_posterior(b).mu for b in sample])
                    f, m = scale.eval_map()
                    scaled = scale._scale(mu, f, m)
                    trainer.model.train(was_training)
                record.update(probe_raw_std=float(mu.std(0).mean()), probe_scaled_std=float(scaled.std(0).mean()),
                              f_eval=float(f.mean()))
            updates.append(record)
            step.clear()

        status = "finished"
        torch.nn.utils.clip_grad_norm_ = clip
        try:
            for _ in range(epochs):
                trainer.run_epoch(after_update=after_update)
                trainer.state.epoch += 1
                trainer.state.stage_epoch += 1
        except TrainingDiverged as error:
            status = f"diverged: {error}"
        finally:
            torch.nn.utils.clip_grad_norm_ = own_clip
    return {"dataset": dataset, "recipe": recipe, "overrides": overrides, "seed": seed, "epochs": epochs,
            "status": status, "config": {k: v for k, v in config.to_dict()["train"].items()
                                         if k in ("optimizer", "lr", "clip_grad", "clip_scope")}
            | {"scale-vae": config.to_dict()["strategies"]["scale-vae"]}, "updates": updates}


def _window(values: list[float]) -> str:
    """Median, then the range: batches of two sentences give extreme batch stds."""
    return f"{statistics.median(values):.3g} ({min(values):.3g}–{max(values):.3g})" if values else "–"


def summarize(folder: Path) -> str:
    """One line per traced run and epoch: ranges of f, of the scaled std and of the KL, the median
    gradient norm, and the first update at which the scaled std left [0.5, 2] x des_std."""
    lines = ["# Scale-VAE per update (eval/scale_vae_trace.py)", "",
             ("Per epoch: median (range) over its updates of f (mean over dimensions), of the batch std of the means "
              "the decoder read and of the raw means, of the KL per sentence; median of the pre-clip gradient "
              "norm (sum over scopes); the probe's scaled std (a fixed training sample under the evaluation "
              "factor) at the epoch's first and last probe."), "",
             ("| run | status | epoch | f | scaled std | raw std | KL | rec | grad norm (median) | probe scaled std "
              "(first → last) |"), "|---|---|---|---|---|---|---|---|---|---|"]
    for path in sorted(folder.glob("*.json.gz")):
        run = json.loads(gzip.decompress(path.read_bytes()))
        name = path.name.removesuffix(".json.gz")
        for epoch in sorted({u["epoch"] for u in run["updates"]}):
            ups = [u for u in run["updates"] if u["epoch"] == epoch and "f" in u]
            probes = [u["probe_scaled_std"] for u in ups if "probe_scaled_std" in u]
            norms = [sum(u["grad_norm"]) for u in ups if u.get("grad_norm")]
            lines.append(
                f"| {name} | {run['status'].split(':')[0]} | {epoch} | {_window([u['f'] for u in ups])} "
                f"| {_window([u['scaled_std'] for u in ups])} | {_window([u['raw_std'] for u in ups])} "
                f"| {_window([u['kl'] for u in ups])} | {_window([u['rec'] for u in ups])} "
                f"| {statistics.median(norms):.3g} | "
                + (f"{probes[0]:.3g} → {probes[-1]:.3g}" if probes else "–") + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="demo")
    parser.add_argument("--recipe", default="scale-vae-slides")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--probe-every", type=int, default=10)
    parser.add_argument("--probe-size", type=int, default=500)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--name", help="file stem under --out (default: the recipe)")
    parser.add_argument("--out", type=Path, help="folder for NAME.json.gz")
    parser.add_argument("--summarize", type=Path, help="print the table of the traces in this folder")
    args = parser.parse_args(argv)
    if args.summarize:
        sys.stdout.write(summarize(args.summarize))
        return
    torch.set_num_threads(1)
    result = trace_run(args.dataset, args.recipe, args.overrides, args.epochs, args.seed, args.probe_every,
                       args.probe_size, args.data_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    # gzip: a trace is a record per update; mtime 0 keeps a re-run's bytes equal to the committed file's
    (args.out / f"{args.name or args.recipe}.json.gz").write_bytes(
        gzip.compress((json.dumps(result) + "\n").encode(), mtime=0))
    print(result["status"], len(result["updates"]), "updates")


if __name__ == "__main__":
    main()
