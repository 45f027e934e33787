"""Table-4-style linear-probe table on short Yelp for several runs, published values side by side.

For every run folder: posterior means of the frozen encoder for the fixed labeled subsets
``train.{100,500,1000,2000,10000}.txt``, the full valid and test sets; both probes (the reference's
SGD ``Linear`` layer and scikit-learn logistic regression) per subset, selected on validation,
accuracy on the full test set (docs/evaluation.md, "Linear probe"). Runs sharing a recipe name are averaged over seeds.
Each run's row is also saved as RUN/probe/<data>.json (as ``textvae probe`` does); ``--reuse`` reads
those instead of recomputing.

    python eval/table4_probe.py runs/short-yelp/*/seed* --data ../shared/data/short_yelp \\
        --out eval/results/table4_probe.md
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

PUBLISHED = Path(__file__).resolve().parent / "published" / "table4.toml"


def probe_run(run_dir: Path, data: Path, subsets: tuple[int, ...], seed: int, reuse: bool) -> dict:
    saved = run_dir / "probe" / f"{data.name}.json"
    if reuse and saved.is_file():
        return json.loads(saved.read_text())
    from textvae.probing import load_probe_data, run_probe
    from textvae.probing.features import input_max_length
    from textvae.runs import load_run

    run = load_run(run_dir)
    result = run_probe(run.model, run.vocab, load_probe_data(data, subsets), subsets, seed=seed,
                       max_length=input_max_length(run.config))
    record = {"run": str(run_dir), "name": run.config.name, "checkpoint": str(run.checkpoint), "data": str(data),
              "seed": seed, "features": "posterior mean (frozen encoder)", "metric": "test accuracy (%)",
              "probes": result}
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(record, indent=2) + "\n")
    return record


def cell(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f}"


def render(records: list[dict], subsets: tuple[int, ...]) -> str:
    spec = tomllib.loads(PUBLISHED.read_text())
    published = {row["recipe"]: row for row in spec["rows"]}
    columns = [str(n) for n in subsets]
    groups: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        groups[record["name"]].append(record)
    header = ["model", "probe", "runs"] + [f"{n}" for n in columns] + [f"published {n}" for n in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in sorted(groups):
        members = groups[name]
        recipe = name.split("/")[-1]
        pub_row = published.get(recipe)
        pub = [pub_row["short-yelp"][spec["metrics"].index(n)] if pub_row and n in spec["metrics"] else None
               for n in columns]
        for probe in members[0]["probes"]:
            accs = [[m["probes"][probe]["accuracy"][n] for m in members if n in m["probes"][probe]["accuracy"]]
                    for n in columns]
            row = [name, probe, str(len(members))] + [cell(a) for a in accs] + \
                  ["–" if p is None else f"{p:.1f}" for p in pub]
            lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append(f"Published: {spec['source']} (label in the paper → our recipe: "
                 + ", ".join(f"{r['label']} → {r['recipe']}" for r in spec["rows"]) + ").")
    lines.append("Ours: test accuracy (%) on the full test set, mean ± sample std over runs of the same recipe; "
                 "sgd-linear = reference SGD Linear layer selected on validation CE; sklearn-logreg = "
                 "standardised features + LogisticRegression, C selected on validation log-loss.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (each with config.json and checkpoints/)")
    parser.add_argument("--data", type=Path, required=True,
                        help="folder with train.N.txt, valid.txt, test.txt (e.g. ../shared/data/short_yelp)")
    parser.add_argument("--subsets", type=int, nargs="+", default=[100, 500, 1000, 2000, 10000])
    parser.add_argument("--seed", type=int, default=0, help="seed of the SGD probe")
    parser.add_argument("--reuse", action="store_true", help="read RUN/probe/<data>.json when present")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    opts = parser.parse_args()

    import torch

    torch.set_num_threads(opts.threads)
    subsets = tuple(opts.subsets)
    records = []
    for run_dir in opts.runs:
        record = probe_run(run_dir, opts.data, subsets, opts.seed, opts.reuse)
        records.append(record)
        summary = "  ".join(f"{p}: " + " ".join(f"{record['probes'][p]['accuracy'][str(n)]:.1f}" for n in subsets)
                            for p in record["probes"])
        print(f"{run_dir}: {summary}", file=sys.stderr, flush=True)
    table = render(records, subsets)
    print(table)
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(table)


if __name__ == "__main__":
    main()
