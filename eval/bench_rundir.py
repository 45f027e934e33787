"""Cost of the run folder's guarantees per epoch: the folder lock, the fsynced metrics append and the
metrics records carried inside ``last.pt``, next to the time of one training epoch.

Old and new variants alternate in one process (timings drift with machine load); medians and the
inter-quartile range are reported. The epoch time comes from a real run of the ``demo`` recipe.

    python -m eval.bench_rundir --out eval/results/benchmarks/rundir.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from textvae import recipes
from textvae.rundir import RunDir
from textvae.training import Trainer, train
from textvae.training.environment import describe_cpu

from .timing import spread


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(xs: list[float]) -> str:
    return spread([x * 1e3 for x in xs], show="iqr") + " ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--history", type=int, default=100, help="Epoch records carried in last.pt (worst case).")
    parser.add_argument("--out", type=Path)
    opts = parser.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-rundir-"))
    config = recipes.resolve("demo", "vae", ["train.epochs=2", "train.progress=false"])
    train(config, tmp / "demo", evaluate_test=False)
    run = RunDir(tmp / "demo")
    records = run.read_metrics()
    epoch_seconds = [r["seconds"] for r in records]
    record = records[-1]

    trainer = Trainer(config, tmp / "scratch")
    trainer.state.history = [dict(record, epoch=i + 1) for i in range(opts.history)]
    with_log = trainer.checkpoint_state()
    without_log = {k: v for k, v in with_log.items() if k != "log"}
    scratch = RunDir(tmp / "scratch")
    scratch.path.mkdir(parents=True, exist_ok=True)
    old_log = scratch.path / "old.jsonl"

    def old_append():  # what the trainer did before: buffered append, no fsync
        with old_log.open("a") as f:
            f.write(json.dumps(record) + "\n")

    times: dict[str, list[float]] = {k: [] for k in ("ckpt_without_log", "ckpt_with_log", "append_old", "append_new",
                                                     "claim_release", "resume_rewrite")}
    for _ in range(opts.repeats):
        times["ckpt_without_log"].append(timed(lambda: scratch.save_checkpoint("last", without_log)))
        times["ckpt_with_log"].append(timed(lambda: scratch.save_checkpoint("last", with_log)))
        times["append_old"].append(timed(old_append))
        times["append_new"].append(timed(lambda: scratch.append_metrics(record)))
        times["claim_release"].append(timed(lambda: (scratch.claim(fresh=False), scratch.release())
                                            if scratch.is_run() else None))
        times["resume_rewrite"].append(timed(lambda: scratch.rewrite_metrics(trainer.state.history)))
        if not scratch.is_run():
            scratch.write_config(config.to_dict())
    epoch = statistics.median(epoch_seconds)
    log_cost = [a - b for a, b in zip(times["ckpt_with_log"], times["ckpt_without_log"])]
    append_cost = [a - b for a, b in zip(times["append_new"], times["append_old"])]
    per_epoch = statistics.median(log_cost) + statistics.median(append_cost)
    lines = [
        "# Cost of the run-folder guarantees (eval/bench_rundir.py)",
        "",
        f"Machine: {describe_cpu()}; load average {os.getloadavg()[0]:.1f} at the end; torch threads 1; "
        f"{opts.repeats} alternating repeats; demo recipe model (vae), last.pt "
        f"{(scratch.checkpoint('last')).stat().st_size / 1e6:.1f} MB with {opts.history} epoch records.",
        "",
        "| what | median (IQR) |",
        "|---|---|",
        f"| demo epoch (training + validation), {len(epoch_seconds)} epochs | {epoch * 1e3:.0f} ms "
        f"({', '.join(f'{s:.1f} s' for s in epoch_seconds)}) |",
        f"| last.pt without the log | {summary(times['ckpt_without_log'])} |",
        f"| last.pt with {opts.history} records | {summary(times['ckpt_with_log'])} |",
        f"| difference (paired) | {summary(log_cost)} |",
        f"| metrics append, old (buffered, no fsync) | {summary(times['append_old'])} |",
        f"| metrics append, new (one write + fsync) | {summary(times['append_new'])} |",
        f"| difference (paired) | {summary(append_cost)} |",
        f"| claim + release of the lock (once per run) | {summary(times['claim_release'])} |",
        f"| log rewrite from the checkpoint (once per resume) | {summary(times['resume_rewrite'])} |",
        "",
        f"Per-epoch cost of the crash-proof log: {per_epoch * 1e3:.2f} ms = {per_epoch / epoch * 100:.3f}% of a demo "
        f"epoch; the lock costs {statistics.median(times['claim_release']) * 1e3:.2f} ms once per run.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if opts.out:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(text)


if __name__ == "__main__":
    main()
