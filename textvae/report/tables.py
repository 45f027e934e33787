"""Paper-style tables from run folders: mean ± std over seeds, published values side by side."""

from __future__ import annotations

import math
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import ConfigError
from ..resources import shipped_dir
from ..rundir import RunDir

PUBLISHED_DIR = shipped_dir("published")


@dataclass
class RunResult:
    run_dir: Path
    recipe: str  # the strategy part of the recipe name ("scale-vae")
    prior: str
    seed: int
    results: dict


def read_run(run_dir: Path) -> RunResult:
    run = RunDir(run_dir)
    results = run.read_results()
    config = run.read_config()
    recipe = config.get("name", run.path.name).split("/")[-1]
    return RunResult(run.path, recipe, config["prior"]["name"], config["seed"], results)


def aggregate(runs: list[RunResult], metrics: list[str]) -> dict[tuple[str, str], dict[str, tuple[float, float, int]]]:
    """(recipe, prior) -> metric -> (mean, std, n); std is the sample std (0 for a single seed)."""
    groups: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for run in runs:
        groups[(run.recipe, run.prior)].append(run)
    table = {}
    for key, members in groups.items():
        row = {}
        for metric in metrics:
            values = [float(m.results[metric]) for m in members if metric in m.results]
            if values:
                std = statistics.stdev(values) if len(values) > 1 else 0.0
                row[metric] = (statistics.fmean(values), std, len(values))
        table[key] = row
    return table


def load_published(name: str) -> dict:
    path = PUBLISHED_DIR / f"{name}.toml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in PUBLISHED_DIR.glob("*.toml")))
        raise ConfigError(f"no published table '{name}' in {PUBLISHED_DIR} (available: {available})")
    return tomllib.loads(path.read_text())


def _fmt(cell: tuple[float, float, int] | None, digits: int) -> str:
    if cell is None:
        return "–"
    mean, std, n = cell
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"


def _pub(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:g}"


EXTRA_COLUMNS = {"kl_train": "KL (training objective)"}


def render_markdown(runs: list[RunResult], published: str = "table1", column: str = "yahoo",
                    metrics: list[str] | None = None) -> str:
    """One row per (recipe, prior) in the published table's row order, then any extra recipes.

    A ``kl_train`` column follows when some run's training-objective KL differs from the evaluator's
    (Scale-VAE: unscaled posterior vs the consistent generative model).
    """
    spec = load_published(published)
    metrics = metrics or spec["metrics"]
    extras = [key for key in EXTRA_COLUMNS
              if any(key in r.results and abs(r.results[key] - r.results.get("kl", r.results[key])) > 1e-3 for r in runs)]
    table = aggregate(runs, metrics + extras)
    digits = {"au": 1}
    header = (["model", "seeds"] + [m.upper() for m in metrics] + [EXTRA_COLUMNS[k] for k in extras]
              + [f"published {m.upper()} ({column})" for m in metrics])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    published_rows = {row["recipe"]: row for row in spec["rows"]}
    order = [row["recipe"] for row in spec["rows"]]
    keys = sorted(table, key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[0], k[1]))
    for recipe, prior in keys:
        cells = table[(recipe, prior)]
        pub = published_rows.get(recipe, {}).get(column, [None] * len(metrics))
        label = published_rows.get(recipe, {}).get("label", recipe).replace("|", "\\|")
        if prior != "standard-normal":
            label += f" + {prior} prior"
        n = max((c[2] for c in cells.values()), default=0)
        row = ([label, str(n)] + [_fmt(cells.get(m), digits.get(m, 2)) for m in metrics + extras]
               + [_pub(v) for v in pub])
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append(f"Published: {spec['source']}. Ours: mean ± sample std over seeds, test split, "
                 f"NLL importance-weighted; MI estimator: "
                 + ", ".join(sorted({str(r.results.get('mi_estimator', '?')) for r in runs})) + ".")
    return "\n".join(lines) + "\n"
