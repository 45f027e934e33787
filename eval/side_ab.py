"""One side of the parity comparison against itself, across two eval/parity.py invocations.

    python -m eval.side_ab FIRST SECOND --side {reference,textvae} --title TITLE --out DIR

FIRST and SECOND are ``--out`` folders of two ``eval/parity.py`` invocations on the same rows, seeds
and corpus, differing in one thing; their paired differences (second − first, per seed) are judged by
the same rule and margins as textvae against the reference (textvae.reference.verdict):

- ``--side reference``: the noise floor. SECOND ran ``--reference-only --reference-torch-seed-offset N``:
  the same numpy draws (batch order) of each seed, other torch draws (initial weights, dropout masks,
  posterior samples). What a paired comparison of a program with *itself* shows, so the textvae rows
  can be read against it.
- ``--side textvae``: a textvae option's A/B on the reference's batch order. SECOND ran with
  ``--textvae-set KEY=VALUE --label …`` (DU-VAE's in-place renormalisation, the frozen last word,
  random bucket contents), FIRST with textvae's defaults: what the option changes in the final
  figures, to be read against the noise floor.

Writes ``OUT/ab.json`` and ``OUT/ab.md``.
"""


from __future__ import annotations

import argparse
import json
from pathlib import Path

from textvae.reference.verdict import MARGINS, paired_verdict

ROOT = Path(__file__).resolve().parent.parent


def runs_by_side(folder: Path) -> dict[str, dict[str, dict[int, dict]]]:
    """``{side: {row: {seed: run}}}`` of an eval/parity.py ``--out`` folder."""
    rows = json.loads((folder / "parity.json").read_text())["rows"]
    return {side: {r["row"]: {run["seed"]: run for run in r[side]["runs"]} for r in rows if side in r}
            for side in ("reference", "textvae")}


def compare(first: Path, second: Path, side: str = "reference") -> list[dict]:
    """Per row of both folders: the paired verdict of second − first on ``side``'s runs, per metric,
    the per-seed figures, and beside them (``parity``) textvae − reference in FIRST on the same
    seeds, the comparison the A/B is read against."""
    first_runs = runs_by_side(first)
    a, b = first_runs[side], runs_by_side(second)[side]
    ours, theirs = first_runs["textvae"], first_runs["reference"]
    rows = []
    for row in a:
        if row not in b:
            continue
        seeds = sorted(set(a[row]) & set(b[row]))
        # a language model's record has no latent figures
        keys = [k for k in MARGINS if all(k in a[row][s] and k in b[row][s] for s in seeds)]
        metrics = {k: paired_verdict([float(b[row][s][k]) - float(a[row][s][k]) for s in seeds], MARGINS[k])
                   for k in keys} if seeds else {}
        per_seed = [{"seed": s, "first": {k: a[row][s][k] for k in keys}, "second": {k: b[row][s][k] for k in keys}}
                    for s in seeds]
        both = [s for s in seeds if s in ours.get(row, {}) and s in theirs.get(row, {})]
        parity = {k: paired_verdict([float(ours[row][s][k]) - float(theirs[row][s][k]) for s in both], MARGINS[k])
                  for k in keys} if both else {}
        rows.append({"row": row, "seeds": seeds, "metrics": metrics, "per_seed": per_seed, "parity": parity})
    return rows


def cell(metric: dict | None) -> str:
    if not metric:
        return "—"
    if metric["diff_ci90"] is None:
        return f"{metric['mean']:+.2f} (one seed)"
    lo, hi = metric["diff_ci90"]
    return f"{metric['mean']:+.2f} [{lo:+.2f}, {hi:+.2f}] (sd {metric['sd']:.2f})"


def render(rows: list[dict], title: str) -> str:
    lines = [
        f"# {title}",
        "",
        "Paired differences, second − first per seed; mean [90 % interval] (sample SD of the differences).",
        "",
        "| row | seeds | IW-NLL Δ [90 % CI] | KL Δ [90 % CI] | MI Δ [90 % CI] | AU Δ [90 % CI] |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['row']} | {len(r['seeds'])} | " + " | ".join(cell(r["metrics"].get(k)) for k in MARGINS)
                     + " |")
        if r.get("parity"):
            lines.append("| beside it: textvae − reference, same seeds | | "
                         + " | ".join(cell(r["parity"].get(k)) for k in MARGINS) + " |")
    lines += ["", "| row | seed | first: IW-NLL / KL | second: IW-NLL / KL |", "|---|---|---|---|"]
    for r in rows:
        for s in r.get("per_seed", []):
            pair = [" / ".join(f"{side[k]:.2f}" for k in ("iw_nll", "kl") if k in side)
                    for side in (s["first"], s["second"])]
            lines.append(f"| {r['row']} | {s['seed']} | {pair[0]} | {pair[1]} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("first", type=Path)
    p.add_argument("second", type=Path)
    p.add_argument("--side", choices=["reference", "textvae"], default="reference")
    p.add_argument("--title", default="Noise floor: the reference program against itself (same batch order, "
                   "other torch seed)")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    rows = compare(a.first, a.second, a.side)
    a.out.mkdir(parents=True, exist_ok=True)
    record = {"title": a.title, "side": a.side, "first": portable(a.first), "second": portable(a.second), "rows": rows}
    (a.out / "ab.json").write_text(json.dumps(record, indent=1) + "\n")
    (a.out / "ab.md").write_text(render(rows, a.title))
    print(render(rows, a.title))


def portable(folder: Path) -> str:
    """The folder relative to the repository when it is inside it: committed records name no machine's paths."""
    try:
        return str(folder.resolve().relative_to(ROOT))
    except ValueError:
        return folder.name


if __name__ == "__main__":
    main()
