"""Agg-VAE side by side: textvae's ``aggressive`` procedure against He et al.'s public implementation
(github.com/jxhe/vae-lagging-encoder, ``text.py --aggressive 1``) on the same data, model sizes,
seeds and epoch budget.

The textvae side is a sweep (eval/sweeps/agg_vae_side_by_side.toml, with its commands); the reference
code is not part of textvae and is run by hand from its own checkout (the exact commands, the data
preparation and the local changes it needs on current torch/numpy are in
eval/results/agg_vae_side_by_side.md). This script reads both sides:

    # both sides -> Markdown table (per seed, mean +- std, difference in units of the seed spread)
    python -m eval.agg_vae_side_by_side compare --runs-dir sweeps/agg_vae_side_by_side/runs/demo/agg-vae \\
        --peer-log peer_t0.out --peer-log peer_t1.out --peer-log peer_t2.out \\
        --out eval/results/agg_vae_side_by_side/table.md

Compared per run: test importance-weighted NLL (the same number of samples on both sides), KL,
MI with the reference's per-batch estimator (textvae also with its whole-set default), active units,
how many epochs trained aggressively, and seconds per epoch. The reference's seed is picked through
``--taskid`` (its list starts 783435, 101, 202), so the seed values are equal on both sides while the
random streams are not: agreement is judged against the spread over seeds.

    # the sampling noise of the per-batch validation MI that ends aggressive mode
    python -m eval.agg_vae_side_by_side mi-noise sweeps/agg_vae_side_by_side/runs/demo/agg-vae/seed101 \\
        --checkpoint best --draws 20
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from textvae.reference.logs import read_final_test, read_seed

METRICS = ("nll", "kl", "mi", "au")


@dataclass
class SideRun:
    side: str
    seed: int
    nll: float
    kl: float
    mi: float
    au: int
    aggressive_epochs: int
    epoch_seconds: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


# ---- the reference's stdout ----------------------------------------------------------------------
_EPOCH = re.compile(r"epoch (\d+) train seconds ([\d.]+) aggressive (\d)(?: encoder_steps (\d+) batches (\d+))?")


def parse_peer_log(text: str, where: str = "peer log") -> SideRun:
    """The final test numbers of one ``text.py`` run from its stdout.

    The reference prints TEST lines during training too; the last one (after it reloads its best
    checkpoint) and the active-unit count after it are the final ones (textvae.reference.logs, the
    one reader of these logs; nan and inf read as floats). Epoch lines are the one-line
    print added to the local copy (``epoch E train seconds S aggressive FLAG``, FLAG after the epoch's
    MI check, optionally followed by ``encoder_steps N batches B``), so an epoch whose check switched
    aggressive mode off still counts as aggressive.
    """
    seed, final = read_seed(text), read_final_test(text)
    if seed is None or not final:
        raise ValueError(f"{where}: not a finished text.py run (need its seed=, TEST ---, active units and "
                         "iw nll: lines)")
    epochs = list(_EPOCH.finditer(text))
    aggressive = sum(int(m[3]) for m in epochs) + (1 if "STOP BURNING" in text else 0)
    return SideRun("reference", seed, nll=final["iw_nll"], kl=final["kl"], mi=final["mi"], au=final["au"],
                   aggressive_epochs=aggressive, epoch_seconds=[float(m[2]) for m in epochs],
                   extra={"elbo_1_sample": final["elbo"], "iw_ppl": final["iw_ppl"],
                          "inner_steps_per_batch": [int(m[4]) / int(m[5]) if m[4] else None for m in epochs]})


# ---- textvae run folders -------------------------------------------------------------------------
def read_textvae_run(run_dir: Path) -> SideRun:
    results = json.loads((run_dir / "results.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    aggressive = sum(1 for r in records if r.get("procedure", {}).get("inner_steps_per_batch", 0) > 0)
    extra = {"elbo": results["elbo"], "iw_ppl": results["iw_ppl"], "mi_estimator": results["mi_estimator"],
             "best_epoch": results["best_epoch"],
             "inner_steps_per_batch": [r.get("procedure", {}).get("inner_steps_per_batch") for r in records]}
    whole = run_dir / "eval_test_whole_set.json"
    if whole.is_file():
        extra["mi_whole_set"] = json.loads(whole.read_text())["mi"]
    return SideRun("textvae", int(config["seed"]), nll=results["nll"], kl=results["kl"], mi=results["mi"],
                   au=int(results["au"]), aggressive_epochs=aggressive,
                   epoch_seconds=[float(r["seconds"]) for r in records], extra=extra)


# ---- comparison ----------------------------------------------------------------------------------
def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else math.nan)


def spread_units(a: list[float], b: list[float]) -> float:
    """|mean(a) - mean(b)| over the standard error of that difference (Welch): ~2 or less is seed noise."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    se = math.sqrt(sa ** 2 / len(a) + sb ** 2 / len(b))
    return abs(ma - mb) / se if se > 0 else (0.0 if ma == mb else math.inf)


def table(runs: list[SideRun]) -> str:
    sides = ["reference", "textvae"]
    lines = ["| side | seed | IW-NLL | KL | MI (per-batch) | AU | aggressive epochs | encoder steps/batch | s/epoch |",
             "|---|---|---|---|---|---|---|---|---|"]
    for side in sides:
        for r in sorted((r for r in runs if r.side == side), key=lambda r: r.seed):
            seconds = " / ".join(f"{s:.0f}" for s in r.epoch_seconds)
            inner = " / ".join("?" if n is None else f"{n:.1f}" for n in r.extra.get("inner_steps_per_batch", []))
            lines.append(f"| {side} | {r.seed} | {r.nll:.2f} | {r.kl:.2f} | {r.mi:.3f} | {r.au} | "
                         f"{r.aggressive_epochs} | {inner} | {seconds} |")
    lines += ["", "| metric | reference mean ± std | textvae mean ± std | difference | in seed-spread units |",
              "|---|---|---|---|---|"]
    for metric in METRICS + ("aggressive_epochs",):
        values = {s: [float(getattr(r, metric)) for r in runs if r.side == s] for s in sides}
        if not all(values.values()):
            continue
        (ma, sa), (mb, sb) = mean_std(values["reference"]), mean_std(values["textvae"])
        lines.append(f"| {metric} | {ma:.3f} ± {sa:.3f} | {mb:.3f} ± {sb:.3f} | {mb - ma:+.3f} | "
                     f"{spread_units(values['reference'], values['textvae']):.1f} |")
    return "\n".join(lines) + "\n"


def compare(args: argparse.Namespace) -> None:
    runs = [parse_peer_log(Path(p).read_text(), str(p)) for p in args.peer_log]
    runs += [read_textvae_run(d) for d in sorted(args.runs_dir.glob("seed*")) if (d / "results.json").is_file()]
    text = table(runs)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps([r.__dict__ for r in runs], indent=2) + "\n")


def mi_draws(run_dir: Path, checkpoint: str, draws: int, data_dir: Path | None = None) -> list[float]:
    """The per-batch validation MI of one checkpoint under sampling seeds 0..draws-1.

    The spread over the seeds is the sampling noise of the ``aggressive`` procedure's switch-off check
    (which draws fresh noise at every check; until it did, it always used seed 0) (the encoder pass itself is
    deterministic in eval mode, so only the one z per sentence changes).
    """
    from textvae.data import encode_texts, load_corpus, make_batches
    from textvae.evaluation.information import mutual_information
    from textvae.evaluation.posterior_pass import posterior_pass
    from textvae.evaluation.protocol import evaluation_mode, make_generator, model_device
    from textvae.runs import load_run

    run = load_run(run_dir, checkpoint, "cpu")
    data = run.config.data
    texts = load_corpus(data, data_dir).splits["valid"]
    batches = make_batches(encode_texts(run.vocab, texts.texts, texts.labels, max_length=data.max_length),
                           data.batch_size, data.batching)
    with evaluation_mode(run.model):
        stats = posterior_pass(run.model, batches, generator=make_generator(0, model_device(run.model)),
                               reconstruct=False, kl_samples=1)
        return [mutual_information(stats.posteriors, "per-batch", make_generator(k, model_device(run.model)))
                for k in range(draws)]


def mi_noise(args: argparse.Namespace) -> None:
    rows = ["| run | checkpoint | MI with seed 0 | mean ± std over seeds | min | max |", "|---|---|---|---|---|---|"]
    for run_dir in args.run_dir:
        values = mi_draws(run_dir, args.checkpoint, args.draws)
        m, sd = mean_std(values)
        rows.append(f"| {run_dir.name} | {args.checkpoint} | {values[0]:.3f} | {m:.3f} ± {sd:.3f} | "
                    f"{min(values):.3f} | {max(values):.3f} |")
    print("\n".join(rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare", help="both sides -> Markdown table")
    c.add_argument("--runs-dir", type=Path, required=True)
    c.add_argument("--peer-log", action="append", required=True, help="stdout of one reference text.py run")
    c.add_argument("--out", type=Path, default=None)
    n = sub.add_parser("mi-noise", help="sampling noise of the validation MI that switches aggressive mode off")
    n.add_argument("run_dir", type=Path, nargs="+")
    n.add_argument("--checkpoint", default="best")
    n.add_argument("--draws", type=int, default=20)
    args = parser.parse_args(argv)
    {"compare": compare, "mi-noise": mi_noise}[args.command](args)


if __name__ == "__main__":
    main()
