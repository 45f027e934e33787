"""The Scale-VAE slides' latent-space experiment on a labeled synthetic corpus: plain VAE, BN-VAE and
Scale-VAE, each trained under the three mini-batch modes (``data.batch_split``: random batches kept
fixed, random batches re-split every epoch, one-component batches kept fixed), 2-D latent, several
seeds. Clutter is measured on the test posterior means (in the space the decoder reads) by the
5-fold cross-validated accuracy of a 15-nearest-neighbour classifier of the mixture component and by
the silhouette score of the components.

    textvae data synthesize /tmp/syn --seed 1 --n-train 3000 --n-valid 500 --n-test 1000
    python eval/latent_clutter.py run --corpus /tmp/syn --runs-dir /tmp/clutter --seeds 1 2 3 --epochs 6 \
        --warm-up 2 --train-limit 2000
    python eval/latent_clutter.py report --corpus /tmp/syn --runs-dir /tmp/clutter --out eval/results/latent_clutter

``report`` writes ``table.md`` (mean ± std over seeds), ``clutter.json`` (every run) and ``means.png``
(a 3 x 3 grid of the first seed's test means coloured by component).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

STRATEGIES = ("vae", "bn-vae", "scale-vae")
MODES = {"fixed": "random, fixed", "reshuffle": "random, re-split every epoch", "by-label": "one component, fixed"}


def run_one(strategy: str, mode: str, seed: int, args) -> str:
    out = Path(args.runs_dir) / strategy / mode / f"seed{seed}"
    if out.exists():
        return f"{out}: exists (finished, running or failed: remove it to rerun)"
    sets = [f"data.corpus={args.corpus}", "data.batching=padded", f"data.batch_split={mode}",
            f"train.epochs={args.epochs}", "train.progress=false", f"eval.iw_samples={args.iw_samples}",
            f"strategies.kl-annealing.warm_up={args.warm_up}"]
    if args.train_limit:
        sets.insert(0, f"data.train_limit={args.train_limit}")
    if strategy == "vae":
        sets.remove(f"strategies.kl-annealing.warm_up={args.warm_up}")  # the plain VAE recipe has no annealing
    cmd = ["nice", "-n", str(args.nice), "textvae", "recipe", "synthetic", strategy, "--seed", str(seed), "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = Path(args.runs_dir) / f"{strategy}-{mode}-seed{seed}.log"
    with log.open("w") as f:
        code = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    return f"{out}: exit {code}"


def test_means(run_dir: Path, corpus: Path):
    """Decoder-space posterior means of the test split and the component labels."""
    import torch

    from textvae.data import encode_texts, make_batches
    from textvae.data.reader import read_lines
    from textvae.runs import load_run

    run = load_run(run_dir)
    raw = read_lines(corpus / "test.txt")
    split = encode_texts(run.vocab, raw.texts, raw.labels)
    mu = torch.zeros(len(split), run.model.latent_dim)
    with torch.inference_mode():
        for batch in make_batches(split, 256, "padded"):
            mu[batch.index] = run.model.to_decoder_space(run.model.posterior(batch).mu)
    return mu.numpy(), [int(label[1:]) for label in raw.labels]


def clutter(mu, labels, seed: int) -> dict[str, float]:
    import numpy as np
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    labels = np.asarray(labels)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    knn = cross_val_score(KNeighborsClassifier(15), mu, labels, cv=folds).mean()
    spread = float(mu.std(0).min())
    silhouette = silhouette_score(mu, labels) if spread > 0 else float("nan")
    return {"knn_accuracy": float(knn), "silhouette": float(silhouette)}


def cmd_run(args) -> None:
    # The methods the slides' claim is about first, the plain VAE (a reference) last.
    jobs = [(s, m, seed) for s in ("bn-vae", "scale-vae", "vae") for seed in args.seeds for m in MODES]
    Path(args.runs_dir).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda j: run_one(*j, args), jobs):
            print(line, flush=True)


def fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def cmd_report(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, first = [], {}
    for strategy in STRATEGIES:
        for mode in MODES:
            for folder in sorted((Path(args.runs_dir) / strategy / mode).glob("seed*")):
                if not (folder / "results.json").is_file():
                    continue
                mu, labels = test_means(folder, Path(args.corpus))
                results = json.loads((folder / "results.json").read_text())
                seed = int(folder.name[4:])
                rows.append({"strategy": strategy, "mode": mode, "seed": seed, **clutter(mu, labels, seed),
                             "nll": results["nll"], "kl": results["kl"], "au": results["au"]})
                first.setdefault((strategy, mode), (mu, labels, seed))
    (out / "clutter.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["# Latent clutter on the synthetic corpus (measured; eval/latent_clutter.py report)", "",
             "15-NN accuracy of the mixture component from the test posterior means (5-fold CV) and the "
             "silhouette of the components; mean ± std over seeds.", "",
             "| model | batches | seeds | k-NN accuracy | silhouette | test NLL | test KL |", "|---|---|---|---|---|---|---|"]
    for strategy in STRATEGIES:
        for mode, words in MODES.items():
            sel = [r for r in rows if r["strategy"] == strategy and r["mode"] == mode]
            if sel:
                lines.append(f"| {strategy} | {words} | {len(sel)} | {fmt([r['knn_accuracy'] for r in sel])} | "
                             f"{fmt([r['silhouette'] for r in sel])} | {fmt([r['nll'] for r in sel])} | "
                             f"{fmt([r['kl'] for r in sel])} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    fig, axes = plt.subplots(len(STRATEGIES), len(MODES), figsize=(12, 12))
    for i, strategy in enumerate(STRATEGIES):
        for j, (mode, words) in enumerate(MODES.items()):
            ax = axes[i][j]
            if (strategy, mode) in first:
                mu, labels, seed = first[(strategy, mode)]
                ax.scatter(mu[:, 0], mu[:, 1], c=labels, cmap="tab20", s=3)
                ax.set_title(f"{strategy}: {words} (seed {seed})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out / "means.png", dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--corpus", required=True)
    run.add_argument("--runs-dir", required=True)
    run.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    run.add_argument("--epochs", type=int, default=20)
    run.add_argument("--warm-up", type=float, default=5.0)
    run.add_argument("--iw-samples", type=int, default=50)
    run.add_argument("--jobs", type=int, default=2)
    run.add_argument("--nice", type=int, default=10, help="niceness of every run (10: stay out of the way)")
    run.add_argument("--train-limit", type=int, help="Use only the first N training sentences.")
    report = sub.add_parser("report")
    report.add_argument("--corpus", required=True)
    report.add_argument("--runs-dir", required=True)
    report.add_argument("--out", required=True)
    args = parser.parse_args()
    cmd_run(args) if args.command == "run" else cmd_report(args)


if __name__ == "__main__":
    main()
