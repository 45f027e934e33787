"""How much one more training update moves a finished run's validation figures.

A short run with SGD at learning rate 1 on same-length buckets ends wherever its last few updates
left it: an update on a bucket of very short sentences teaches the decoder to end sentences early,
one on ordinary sentences undoes that. This script measures the size of that effect for a run. From
the run's last checkpoint (its model, optimiser state, learning rate and KL weight), it takes ONE
training step on a bucket of each chosen sentence length, each time from the same starting point,
and scores the validation split after it; it also lists the lengths of the last buckets the run
trained on. ``--retrace K`` trains the run again (runs are reproducible) and scores the validation
split after each of its last K updates. A run's final figures are only as precise as these spreads.

    python -m eval.last_step RUN [RUN ...] --data-dir DATA --out eval/results/parity/last_step

Writes OUT.json (every number) and OUT.md. The run folders are not modified (the steps are taken on
a copy).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import tempfile
from pathlib import Path

import torch

from textvae.config import RunConfig
from textvae.rundir import RunDir
from textvae.training import Callback, Trainer, Update


def probe(run: Path, data_dir: Path | None, words: list[int], per_length: int, tail: int) -> dict:
    config = RunConfig.load(RunDir(run).config)
    with tempfile.TemporaryDirectory() as scratch:
        copy_dir = Path(scratch) / run.name
        shutil.copytree(run, copy_dir, ignore=shutil.ignore_patterns("tb", "*.png"))
        trainer = Trainer(config, copy_dir, data_dir)
        trainer.resume()
        last_epoch = trainer.state.epoch - 1
        trained = trainer.epoch_batches(last_epoch)
        start_model = copy.deepcopy(trainer.model.state_dict())
        start_optim = copy.deepcopy(trainer.groups.state_dict())
        trainer.ctx.training = False
        start = trainer.validate()
        # buckets of each length from the next epoch's batches: full ones, as the run would meet them
        upcoming = [b for b in trainer.epoch_batches(last_epoch + 1) if b.size == config.data.batch_size]
        steps, kl_weight = [], None
        for n_words in words:
            # a sentence of n words is n + 2 tokens long with its boundary symbols
            chosen = [b for b in upcoming if b.max_words == n_words][:per_length]
            changes = []
            for batch in chosen:
                trainer.model.load_state_dict(start_model)
                trainer.groups.load_state_dict(copy.deepcopy(start_optim), "start")
                ctx = trainer.ctx
                ctx.training, ctx.epoch, ctx.epoch_updates = True, trainer.state.stage_epoch, len(upcoming)
                ctx.step, ctx.epoch_step = trainer.state.stage_step, 0
                trainer.train_step(batch.to(trainer.device))
                kl_weight = ctx.kl_weight
                ctx.training = False
                after = trainer.validate()
                changes.append({"rec": after["rec"] - start["rec"], "kl": after["kl"] - start["kl"]})
            steps.append({"words": n_words, "buckets": len(chosen), "changes": changes})
    return {"run": run.name, "strategies": list(config.strategies), "seed": config.seed,
            "epoch": last_epoch + 1, "kl_weight": kl_weight,
            "valid": {"rec": start["rec"], "kl": start["kl"]},
            "last_buckets_words": [b.max_words for b in trained[-tail:]],
            "one_step": steps}


class ScoreLastUpdates(Callback):
    """Scores the validation split after each of the last ``last`` updates of epoch ``epoch`` (1-based),
    the random state saved around each scoring so that training goes on as it would have, then stops."""

    def __init__(self, epoch: int, last: int):
        self.epoch, self.last = epoch, last
        self.trace: list[dict] = []

    def on_update_end(self, trainer: Trainer, update: Update) -> None:
        if trainer.state.epoch + 1 != self.epoch or update.index < trainer.ctx.epoch_updates - self.last:
            return
        saved = torch.get_rng_state()
        trainer.ctx.training = False
        valid = trainer.validate()
        trainer.ctx.training = True
        torch.set_rng_state(saved)
        self.trace.append({"update": update.index + 1, "words": update.batch.max_words, "sentences": update.batch.size,
                           "valid_rec": valid["rec"], "valid_kl": valid["kl"]})

    def on_epoch_end(self, trainer: Trainer, record: dict) -> None:
        if record["epoch"] >= self.epoch:
            trainer.should_stop = True


def retrace(run: Path, data_dir: Path | None, epochs: int, last: int) -> list[dict]:
    """Train the run again from scratch with its own config (runs are reproducible) and score the
    validation split after each of the last ``last`` updates of its final epoch."""
    config = RunConfig.load(RunDir(run).config)
    scores = ScoreLastUpdates(epochs, last)
    with tempfile.TemporaryDirectory() as scratch:
        Trainer(config, Path(scratch) / run.name, data_dir, callbacks=[scores]).fit()
    return scores.trace


def render(records: list[dict], command: str) -> str:
    lines = ["# One more update: how far a run's validation figure moves", "",
             f"    {command}", "",
             "Change of the validation reconstruction (nats per sentence) after one training step on a bucket "
             "of sentences of the given number of words, from the run's last checkpoint; one value per bucket.", ""]
    words = sorted({s["words"] for r in records for s in r["one_step"]})
    lines.append("| run | epoch | valid rec | last buckets (words) | " + " | ".join(f"{w} words" for w in words) + " |")
    lines.append("|---|---|---|---|" + "---|" * len(words))
    for r in records:
        cells = {s["words"]: ", ".join(f"{c['rec']:+.1f}" for c in s["changes"]) or "–" for s in r["one_step"]}
        lines.append(f"| {r['run']} ({' + '.join(r['strategies'])}, seed {r['seed']}) | {r['epoch']} "
                     f"| {r['valid']['rec']:.2f} | {', '.join(map(str, r['last_buckets_words']))} | "
                     + " | ".join(cells.get(w, "–") for w in words) + " |")
    for r in records:
        if r.get("retrace"):
            lines += ["", f"{r['run']}: validation after each of the last {len(r['retrace'])} updates of epoch "
                      f"{r['epoch']} (trained again from scratch, `--retrace`).", "",
                      "| update | bucket (words × sentences) | valid rec | valid KL |", "|---|---|---|---|"]
            lines += [f"| {t['update']} | {t['words']} × {t['sentences']} | {t['valid_rec']:.2f} "
                      f"| {t['valid_kl']:.2f} |" for t in r["retrace"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="finished run folders (with checkpoints/last.pt)")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--words", type=int, nargs="+", default=[2, 4, 8, 16, 25, 40],
                   help="sentence lengths (words) of the buckets to step on")
    p.add_argument("--per-length", type=int, default=2, help="buckets per length")
    p.add_argument("--tail", type=int, default=6, help="how many of the last trained buckets to list")
    p.add_argument("--retrace", type=int, default=0, metavar="K",
                   help="also train each run again and score validation after each of its last K updates "
                        "(costs a full training run)")
    p.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    a = p.parse_args(argv)
    for run in a.runs:
        if not RunDir(run).checkpoint("last").is_file():
            raise SystemExit(f"{run}: no checkpoints/last.pt (not a finished textvae run)")
    records = [probe(run, a.data_dir, a.words, a.per_length, a.tail) for run in a.runs]
    if a.retrace:
        for record, run in zip(records, a.runs):
            if record["epoch"] < 2:
                raise SystemExit(f"{run}: --retrace needs a run of at least 2 epochs")
            record["retrace"] = retrace(run, a.data_dir, record["epoch"], a.retrace)
    command = "python -m eval.last_step " + " ".join(
        [*(r.name for r in a.runs), "--words", *map(str, a.words), "--per-length", str(a.per_length)]
        + (["--retrace", str(a.retrace)] if a.retrace else []))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps({"command": command, "runs": records}, indent=1) + "\n")
    a.out.with_suffix(".md").write_text(render(records, command))
    print(a.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
