"""Scale-VAE under the paper's optimiser (SGD lr 1, global clip 5): which stabilising option keeps f_bar
bounded, and how the adopted setting compares with BN-VAE and KL annealing on held-out real text.

    python eval/scale_vae_study.py run --corpus DIR --runs-dir RUNS --epochs 8 --jobs 4 \\
        --variant slides epoch-std centre per-module median adopted --seeds 1 \\
        --variant bn-vae kl-annealing adopted --seeds 1 2 3
    python eval/scale_vae_study.py evaluate --runs-dir RUNS   # runs stopped early: test their best.pt
    python eval/scale_vae_study.py table --runs-dir RUNS --out eval/results/issue11/study.md

Every run is ``textvae recipe ptb STRATEGY`` (PTB-small) on the corpus folder DIR with a KL warm-up
shortened to ``--warm-up`` epochs, followed for Scale-VAE by ``textvae eval`` under the other
``eval.scale_reading``. Variants differ from the slides' Scale-VAE only in the options listed in VARIANTS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SCALE = "strategies.scale-vae"
SGD = ["train.optimizer=sgd", "train.lr=1.0"]
VARIANTS: dict[str, tuple[str, list[str]]] = {
    # The slides' rule, then one option at a time (SGD lr 1, global clip 5 as the paper).
    "slides": ("scale-vae-slides", []),
    "epoch-std": ("scale-vae-slides", [f"{SCALE}.f_bar=epoch-std"]),
    "sample-std": ("scale-vae-slides", [f"{SCALE}.f_bar=sample-std"]),
    "median": ("scale-vae-slides", [f"{SCALE}.f_bar=batch-median"]),
    "ema": ("scale-vae-slides", [f"{SCALE}.f_bar=batch-ema"]),
    "centre": ("scale-vae-slides", [f"{SCALE}.centre=true"]),
    "per-module": ("scale-vae-slides", ["train.clip_scope=per-module"]),
    "slides-adam": ("scale-vae-slides", ["train.optimizer=adam", "train.lr=0.001"]),
    # Each f_bar estimate with centring and per-module clipping, still under SGD lr 1.
    "sgd-epoch-std-all": ("scale-vae", [*SGD, f"{SCALE}.f_bar=epoch-std"]),
    "sgd-sample-std-all": ("scale-vae", [*SGD, f"{SCALE}.f_bar=sample-std"]),
    "sgd-median-all": ("scale-vae", [*SGD, f"{SCALE}.f_bar=batch-median"]),
    "sgd-ema-all": ("scale-vae", [*SGD, f"{SCALE}.f_bar=batch-ema"]),
    # The recipe scale-vae: Adam lr 1e-3, f_bar sample-std, centre, per-module clipping.
    "adopted": ("scale-vae", []),
    "bn-vae": ("bn-vae", []),
    "bn-vae-adam": ("bn-vae", ["train.optimizer=adam", "train.lr=0.001"]),
    "kl-annealing": ("kl-annealing", []),
}
READINGS = ("scaled-posterior", "scaled-prior")


def run_one(variant: str, seed: int, args) -> str:
    strategy, extra = VARIANTS[variant]
    out = Path(args.runs_dir) / variant / f"seed{seed}"
    if (out / "results.json").is_file() and (not strategy.startswith("scale-vae") or (out / "eval_other.json").is_file()):
        return f"{out}: done before"
    sets = [f"data.corpus={args.corpus}", f"train.epochs={args.epochs}", "train.progress=false",
            f"strategies.kl-annealing.warm_up={args.warm_up}", f"eval.iw_samples={args.iw_samples}",
            f"eval.limit={args.eval_limit}", *extra]
    cmd = ["textvae", "recipe", "ptb", strategy, "--seed", str(seed), "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = Path(args.runs_dir) / f"{variant}-seed{seed}.log"
    with log.open("w") as f:
        code = subprocess.call(["nice", "-n", str(args.nice), *cmd], stdout=f, stderr=subprocess.STDOUT, env=env)
        if code == 0 and strategy.startswith("scale-vae"):
            config = json.loads((out / "config.json").read_text())
            other = next(r for r in READINGS if r != config["eval"]["scale_reading"])
            code = subprocess.call(["nice", "-n", str(args.nice), "textvae", "eval", str(out), "--scale-reading", other,
                                    "--limit", str(args.eval_limit), "--iw-samples", str(args.iw_samples),
                                    "--no-progress", "--out", str(out / "eval_other.json")],
                                   stdout=f, stderr=subprocess.STDOUT, env=env)
    return f"{out}: exit {code}"


def cmd_evaluate(args) -> None:
    """Test every run folder's best checkpoint under each reading (runs stopped early by the budget
    have no results.json): eval_test.json (scaled-posterior) and eval_other.json (scaled-prior)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    folders = sorted(p.parent.parent for p in Path(args.runs_dir).glob("*/seed*/checkpoints/best.pt"))

    def one(folder: Path) -> str:
        config = json.loads((folder / "config.json").read_text())
        scale = "scale-vae" in config["strategies"]
        outputs = [("eval_test.json", "scaled-posterior"), ("eval_other.json", "scaled-prior")] if scale else \
            [("eval_test.json", None)]
        codes = []
        for name, reading in outputs:
            if (folder / name).is_file() or ((folder / "results.json").is_file() and name == "eval_test.json"):
                continue
            cmd = ["nice", "-n", "10", "textvae", "eval", str(folder), "--limit", str(args.eval_limit),
                   "--iw-samples", str(args.iw_samples), "--no-progress", "--out", str(folder / name)]
            if reading:
                cmd += ["--scale-reading", reading]
            codes.append(subprocess.call(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env))
        return f"{folder}: {codes}"

    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(one, folders):
            print(line, flush=True)


def cmd_run(args) -> None:
    jobs = [(v, s) for group in args.groups for v in group[0] for s in group[1]]
    jobs = list(dict.fromkeys(jobs))
    Path(args.runs_dir).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda j: run_one(j[0], j[1], args), jobs):
            print(line, flush=True)


def load_run(folder: Path) -> dict | None:
    if not (folder / "metrics.jsonl").is_file():
        return None
    epochs = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    if not epochs:  # started, no epoch finished yet
        return None
    best = [e["epoch"] for e in epochs if e.get("best")]
    run = {"epochs": epochs, "best_epoch": best[-1] if best else None}
    for name in ("results.json", "eval_test.json", "eval_other.json"):
        if (folder / name).is_file():
            run[name] = json.loads((folder / name).read_text())
    return run


def fmt(values: list[float], digits: int = 1) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def cmd_table(args) -> None:
    lines = ["# Scale-VAE study (measured; generated by eval/scale_vae_study.py table)", ""]
    runs = {}
    for variant in VARIANTS:
        for folder in sorted(f for root in args.runs_dir for f in (Path(root) / variant).glob("seed*")):
            run = load_run(folder)
            if run is not None:
                runs.setdefault(variant, {})[folder.name] = run
    lines += ["## f_bar (mean over dimensions) and training reconstruction per epoch", "",
              "| variant | seed | f_bar mean per epoch | f_bar max (last epoch) | train rec per epoch |", "|---|---|---|---|---|"]
    for variant, seeds in runs.items():
        for seed, run in seeds.items():
            f = [e["strategy"].get("scale-vae/f_mean") for e in run["epochs"]]
            if f[0] is None:
                f_txt, f_max = "-", "-"
            else:
                f_txt = ", ".join(f"{v:.3g}" for v in f)
                f_max = f"{max(run['epochs'][-1]['strategy']['scale-vae/f']):.3g}"
            rec = ", ".join(f"{e['train']['rec']:.1f}" for e in run["epochs"])
            lines.append(f"| {variant} | {seed} | {f_txt} | {f_max} | {rec} |")
    lines += ["", "## Validation -ELBO (scored model) / selection metric per epoch", "",
              "| variant | seed | valid -ELBO per epoch | valid objective (rec + trained KL) per epoch |", "|---|---|---|---|"]
    for variant, seeds in runs.items():
        for seed, run in seeds.items():
            elbo = ", ".join(f"{e['valid']['elbo']:.1f}" for e in run["epochs"])
            obj = ", ".join(f"{e['valid']['objective']:.1f}" for e in run["epochs"] if "objective" in e["valid"]) or "-"
            lines.append(f"| {variant} | {seed} | {elbo} | {obj} |")
    lines += ["", "## Test results (mean ± std over seeds)", "",
              "| variant | seeds | reading | NLL | KL (trained) | KL (scored) | MI | AU | MI unscaled | AU unscaled | best epoch | epochs run |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for variant, seeds in runs.items():
        by_reading: dict[str, list[dict]] = {}
        for r in seeds.values():
            for name in ("results.json", "eval_test.json", "eval_other.json"):
                if name in r:
                    res = r[name]
                    by_reading.setdefault(res.get("scale_reading", "-"), []).append(
                        {**res, "best_epoch": r["best_epoch"], "epochs_run": len(r["epochs"])})
        for reading, results in by_reading.items():
            col = lambda k: [x.get(k) for x in results]  # noqa: E731
            lines.append(f"| {variant} | {len(results)} | {reading} | {fmt(col('nll'))} | {fmt(col('kl_train'))} | "
                         f"{fmt(col('kl'))} | {fmt(col('mi'), 2)} | {fmt(col('au'))} | {fmt(col('mi_unscaled'), 2)} | "
                         f"{fmt(col('au_unscaled'))} | {fmt(col('best_epoch'), 0)} | {fmt(col('epochs_run'), 0)} |")
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    sys.stdout.write(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--corpus", required=True)
    run.add_argument("--runs-dir", required=True)
    run.add_argument("--epochs", type=int, default=8)
    run.add_argument("--warm-up", type=float, default=2.0)
    run.add_argument("--iw-samples", type=int, default=20)
    run.add_argument("--eval-limit", type=int, default=500)
    run.add_argument("--jobs", type=int, default=3)
    run.add_argument("--nice", type=int, default=10, help="niceness of every run (10: stay out of the way)")
    run.add_argument("--variant", nargs="+", action="append", choices=list(VARIANTS), required=True)
    run.add_argument("--seeds", nargs="+", type=int, action="append", required=True)
    evaluate = sub.add_parser("evaluate")
    evaluate.add_argument("--runs-dir", required=True)
    evaluate.add_argument("--iw-samples", type=int, default=20)
    evaluate.add_argument("--eval-limit", type=int, default=500)
    evaluate.add_argument("--jobs", type=int, default=3)
    table = sub.add_parser("table")
    table.add_argument("--runs-dir", required=True, nargs="+")
    table.add_argument("--out")
    args = parser.parse_args()
    if args.command == "run":
        if len(args.variant) != len(args.seeds):
            parser.error("give one --seeds after each --variant")
        args.groups = list(zip(args.variant, args.seeds))
        cmd_run(args)
    elif args.command == "evaluate":
        cmd_evaluate(args)
    else:
        cmd_table(args)


if __name__ == "__main__":
    main()
