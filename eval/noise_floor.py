"""The noise floor of the paired parity comparison: the reference program against itself.

    python -m eval.noise_floor FIRST SECOND [--out eval/results/parity/noise_floor]

FIRST and SECOND are ``--out`` folders of two ``eval/parity.py --reference-only`` invocations on the
same rows, seeds and corpus, the second with ``--reference-torch-seed-offset N``: the same numpy
draws (batch order) of each seed, other torch draws (initial weights, dropout masks, posterior
samples). Their paired differences (second − first, per seed) are judged by the same rule and
margins as textvae against the reference (textvae.reference.verdict): what a paired comparison of a
program with *itself* shows, so the textvae rows can be read against it. Writes
``OUT/noise_floor.json`` and ``OUT/noise_floor.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from textvae.reference.verdict import MARGINS, paired_verdict

ROOT = Path(__file__).resolve().parent.parent


def reference_runs(folder: Path) -> dict[str, dict[int, dict]]:
    data = json.loads((folder / "parity.json").read_text())
    return {r["row"]: {run["seed"]: run for run in r["reference"]["runs"]} for r in data["rows"]}


def floor(first: Path, second: Path) -> list[dict]:
    a, b = reference_runs(first), reference_runs(second)
    rows = []
    for row in a:
        if row not in b:
            continue
        seeds = sorted(set(a[row]) & set(b[row]))
        metrics = (
            {
                k: paired_verdict([float(b[row][s][k]) - float(a[row][s][k]) for s in seeds], m)
                for k, m in MARGINS.items()
            }
            if seeds
            else {}
        )
        rows.append({"row": row, "seeds": seeds, "metrics": metrics})
    return rows


def render(rows: list[dict]) -> str:
    lines = [
        "# Noise floor: the reference program against itself (same batch order, other torch seed)",
        "",
        "| row | seeds | IW-NLL Δ [90 % CI] | KL Δ [90 % CI] | MI Δ [90 % CI] | AU Δ [90 % CI] |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = []
        for k in MARGINS:
            m = r["metrics"].get(k)
            cells.append(
                "—"
                if not m or m["diff_ci90"] is None
                else f"{m['mean']:+.2f} [{m['diff_ci90'][0]:+.2f}, {m['diff_ci90'][1]:+.2f}] (sd {m['sd']:.2f})"
            )
        lines.append(f"| {r['row']} | {len(r['seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("first", type=Path)
    p.add_argument("second", type=Path)
    p.add_argument("--out", type=Path, default=ROOT / "eval" / "results" / "parity" / "noise_floor")
    a = p.parse_args(argv)
    rows = floor(a.first, a.second)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "noise_floor.json").write_text(
        json.dumps({"first": str(a.first), "second": str(a.second), "rows": rows}, indent=1) + "\n"
    )
    (a.out / "noise_floor.md").write_text(render(rows))
    print(render(rows))


if __name__ == "__main__":
    main()
