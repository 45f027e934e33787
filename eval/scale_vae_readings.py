"""Scale-VAE in a sweep folder under both evaluation readings, beside chosen baselines: the table of
the Scale-VAE demo readings and of the Scale-VAE study (eval/sweeps/scale_vae_study_*.toml).

For every Scale-VAE run it reads ``results.json`` (the run's own reading) and, when present,
``eval-scaled-prior.json`` / ``eval-scaled-posterior.json`` written by

    textvae eval RUN --scale-reading scaled-prior --out RUN/eval-scaled-prior.json

and tabulates NLL, the KL of the scored model, the training KL, MI and AU of the scored and of the
unscaled posterior (mean ± std over seeds), the f_bar trajectory per seed and the Table-4 probe
accuracy at the largest labelled subset. A row is a run folder below ``SWEEP/runs`` without its seed
(``ptb/scale-vae-slides/epoch-std``), so the variants and grid points of a study stay apart.

    python -m eval.scale_vae_readings eval/results/table1_demo --baselines bn-vae kl-annealing \\
        --out eval/results/scale_vae_study/demo_readings.md
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from textvae.report.records import read_records


def fmt(values: list[float | None], digits: int = 1) -> str:
    """Mean ± sample std of the values present; '-' when none is."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def probe_accuracy(record, probe: str) -> float | None:
    if not record.probes:
        return None
    accuracy = next(iter(record.probes.values()))["probes"][probe]["accuracy"]
    return accuracy[max(accuracy, key=int)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dirs", type=Path, nargs="+")
    parser.add_argument("--baselines", nargs="*", default=["bn-vae", "kl-annealing"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    rows: dict[tuple[str, str], list[dict]] = {}
    trajectories: list[str] = []
    records = [(sweep / "runs", record) for sweep in args.sweep_dirs for record in read_records([sweep / "runs"])]
    for runs_root, record in records:
        scale = record.strategy.startswith("scale-vae")
        if not scale and record.strategy not in args.baselines:
            continue
        folder = record.run_dir
        recipe = folder.resolve().relative_to(runs_root.resolve()).parent.as_posix()
        readings = {record.results.get("scale_reading", "–"): record.results}
        for name in ("eval-scaled-prior.json", "eval-scaled-posterior.json"):
            if (folder / name).is_file():
                other = json.loads((folder / name).read_text())
                readings[other["scale_reading"]] = other
        for reading, res in readings.items():
            rows.setdefault((recipe, reading), []).append(
                {**res, "probe_sgd": probe_accuracy(record, "sgd-linear"),
                 "probe_logreg": probe_accuracy(record, "sklearn-logreg")})
        if scale:
            epochs = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
            f = ", ".join(f"{e['strategy']['scale-vae/f_mean']:.3g}" for e in epochs)
            rec = ", ".join(f"{e['train']['rec']:.1f}" for e in epochs)
            trajectories.append(f"| {recipe} | {folder.name} | {f} | {rec} |")

    lines = ["# Scale-VAE under both readings, beside baselines (eval/scale_vae_readings.py)", "",
             f"Sweep folders: {', '.join(f'`{d.name}`' for d in args.sweep_dirs)}; test split as in each "
             "results.json; mean ± sample std over seeds.", "",
             "| recipe | reading | seeds | NLL | KL (scored) | KL (trained) | MI | AU | MI unscaled | AU unscaled "
             "| probe acc. (largest subset): sgd-linear | sklearn-logreg |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (recipe, reading), results in sorted(rows.items()):
        col = lambda k: [r.get(k) for r in results]  # noqa: E731
        lines.append(f"| {recipe} | {reading} | {len(results)} | {fmt(col('nll'), 2)} | {fmt(col('kl'), 2)} | "
                     f"{fmt(col('kl_train'), 2)} | {fmt(col('mi'), 2)} | {fmt(col('au'), 1)} | "
                     f"{fmt(col('mi_unscaled'), 2)} | "
                     f"{fmt(col('au_unscaled'), 1)} | {fmt(col('probe_sgd'), 1)} | {fmt(col('probe_logreg'), 1)} |")
    lines += ["", "## f_bar (mean over dimensions) and training reconstruction per epoch", "",
              "| recipe | seed | f_bar per epoch | train rec per epoch |", "|---|---|---|---|", *sorted(trajectories)]
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
