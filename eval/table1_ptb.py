"""Table-1-style study on PTB with the PTB-small model (embedding 256, LSTMs 512, z 32).

Every strategy trains for the same number of epochs on the same data, over several seeds, with its
recipe's hyper-parameters; the KL warm-up of the annealed recipes is shortened to half the run so that
it completes. Writes eval/results/table1_ptb.md (mean ± std, published Yahoo values beside) and the
per-run results as JSON lines.

    python eval/table1_ptb.py --data-dir DATA --epochs 4 --train-limit 3000 --test-limit 1000 --jobs 2

DATA must hold ptb/{train,valid,test}.txt (e.g. ``textvae data prepare ptb --from ../shared/data/ptb``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

STRATEGIES = ["kl-annealing", "cyclical", "free-bits", "bn-vae", "du-vae", "scale-vae", "infovae-mmd"]
SEEDS = [783435, 101, 202]


def run_one(args: tuple[str, int, argparse.Namespace]) -> dict:
    strategy, seed, opts = args
    import torch

    torch.set_num_threads(opts.threads)
    from textvae import recipes
    from textvae.training import train

    overrides = [f"train.epochs={opts.epochs}", f"data.train_limit={opts.train_limit}",
                 f"eval.limit={opts.test_limit}", f"eval.iw_samples={opts.iw_samples}", "train.progress=false"]
    config_dict = recipes.resolve_dict("ptb", strategy, overrides, seed)
    for name, params in config_dict["strategies"].items():
        if "warm_up" in params:  # finish annealing within the shortened run
            params["warm_up"] = opts.epochs / 2
    from textvae.config import RunConfig

    config = RunConfig.from_dict(config_dict, where=f"ptb/{strategy}")
    run_dir = opts.out / "runs" / strategy / f"seed{seed}"
    start = time.perf_counter()
    results = train(config, run_dir, data_dir=opts.data_dir, overwrite=True)  # the script recomputes its table
    return {"strategy": strategy, "seed": seed, "seconds": round(time.perf_counter() - start, 1), **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("TEXTVAE_DATA"))
    parser.add_argument("--out", type=Path, default=Path("eval/results/table1_ptb"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-limit", type=int, default=3000)
    parser.add_argument("--test-limit", type=int, default=1000)
    parser.add_argument("--iw-samples", type=int, default=50)
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    parser.add_argument("--seeds", nargs="+", type=int, default=SEEDS)
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (one process each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--report-only", action="store_true", help="re-render the table from finished runs")
    opts = parser.parse_args()

    from textvae.report.tables import read_run, render_markdown

    jobs = [(s, seed, opts) for s in opts.strategies for seed in opts.seeds]
    opts.out.mkdir(parents=True, exist_ok=True)
    log = opts.out / "runs.jsonl"
    with ProcessPoolExecutor(max_workers=opts.jobs) as pool, log.open("a") as f:
        for result in [] if opts.report_only else pool.map(run_one, jobs):
            f.write(json.dumps(result) + "\n")
            f.flush()
            print(f"{result['strategy']:>12} seed {result['seed']}: nll {result['nll']:.2f} kl {result['kl']:.2f} "
                  f"mi {result['mi']:.2f} au {result['au']}  ({result['seconds']} s)", flush=True)
    runs = [read_run(opts.out / "runs" / s / f"seed{seed}") for s, seed, _ in jobs]
    table = render_markdown(runs, published="table1", column="yahoo")
    header = (f"# Table-1-style study on PTB (PTB-small: embedding 256, LSTMs 512, z 32)\n\n"
              f"{opts.epochs} epochs on the first {opts.train_limit} PTB training sentences, test metrics on the "
              f"first {opts.test_limit} PTB test sentences, IW-NLL with K = {opts.iw_samples}, seeds "
              f"{', '.join(map(str, opts.seeds))}. Published columns are Yahoo (a different corpus, full "
              f"training): compare orderings, not values.\n\n"
              f"Command: `python eval/table1_ptb.py --epochs {opts.epochs} --train-limit {opts.train_limit} "
              f"--test-limit {opts.test_limit} --iw-samples {opts.iw_samples} --jobs {opts.jobs}`\n\n")
    (opts.out.parent / "table1_ptb.md").write_text(header + table)
    print(header + table)


if __name__ == "__main__":
    main()
