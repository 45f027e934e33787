"""Per-run records for reports, and the rows they are grouped into.

A row is every run with the same corpus, recipe and resolved config except the seed (and keys that
only change how a run executes, such as ``train.progress``). Runs whose test evaluation was not the
same (split, sentence and token counts, importance samples, MI estimator, ...) are refused in one row
even when their configs agree: their numbers are not comparable.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import EXECUTION_KEYS
from ..errors import ConfigError
from ..generation.report import check_generation_record
from ..probing.record import check_probe_record
from ..rundir import RunDir, find_runs, read_json
from ..training.checkpoint import normalized
from ..training.resume import flatten

# results.json fields that describe how the test numbers were measured (not what they are).
EVALUATION_FIELDS = ("split", "limit", "n_sentences", "n_targets", "iw_samples", "mi_estimator", "au_threshold",
                     "precision", "kl_estimator")
# Keys a report states for every row: where they differ between rows, the row label names them.
SETTING_KEYS = ("data.corpus", "data.train_limit", "data.max_length", "train.epochs", "eval.split", "eval.limit",
                "eval.iw_samples", "eval.mi_estimator", "eval.au_threshold", "eval.precision")
# Keys that may never be averaged over (``--merge``): they change the data or the evaluation.
UNMERGEABLE_PREFIXES = ("data.", "eval.")


@dataclass
class RunRecord:
    run_dir: Path
    config: dict[str, Any]
    """The resolved config, flattened to dotted keys, defaults filled in."""
    results: dict[str, Any]
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)
    generations: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def recipe(self) -> str:
        return str(self.config.get("name", self.run_dir.name))

    @property
    def strategy(self) -> str:
        """The recipe's strategy part (``scale-vae`` of ``demo/scale-vae``, ``bn-vae`` of
        ``demo/bn-vae@scale-vae``): the published tables' key."""
        return self.recipe.split("/")[-1].split("@")[0]

    @property
    def protocol(self) -> str | None:
        """The recipe's training protocol (``scale-vae`` of ``demo/bn-vae@scale-vae``), else None."""
        _, mark, protocol = self.recipe.split("/")[-1].partition("@")
        return protocol if mark else None

    @property
    def corpus(self) -> str:
        return str(self.config["data.corpus"])


def read_record(run: RunDir) -> RunRecord:
    config = flatten(normalized(run.read_config()))
    probes = {p.stem: check_probe_record(read_json(p), p) for p in sorted((run.path / "probe").glob("*.json"))}
    generations = {p.stem: check_generation_record(read_json(p), p)
                   for p in sorted((run.path / "generation").glob("*.json"))}
    return RunRecord(run.path, config, run.read_results(), probes, generations)


def read_records(paths: list[Path]) -> list[RunRecord]:
    """The finished runs given, or found below the given folders, each run once (:func:`deduplicate`)."""
    runs = find_runs(paths)
    if not runs:
        raise ConfigError(f"no finished runs (results.json) under {', '.join(map(str, paths))}")
    return deduplicate([read_record(run) for run in runs])


def identity(record: RunRecord) -> tuple:
    """What a run is: its corpus, resolved config and seed; not where it lies nor how it was executed
    (progress bars, device, memory budget), which do not change its numbers."""
    return tuple(sorted((k, repr(v)) for k, v in record.config.items() if k not in EXECUTION_KEYS))


def _text(value: Any) -> str:
    """JSON text, so that NaN equals NaN (a diverged metric read from two copies of one file)."""
    return json.dumps(value, sort_keys=True)


def deduplicate(records: list[RunRecord]) -> list[RunRecord]:
    """One record per run identity: the same run found in two folders (a sweep copied or re-run into
    another ``--out``) must count as one seed. Two folders with the same identity but different
    results are refused: which one holds the run's numbers cannot be told from here."""
    kept: dict[tuple, RunRecord] = {}
    for record in records:
        key = identity(record)
        first = kept.get(key)
        if first is None:
            kept[key] = record
            continue
        if _text(first.results) != _text(record.results):
            differ = sorted(k for k in set(first.results) | set(record.results)
                            if _text(first.results.get(k)) != _text(record.results.get(k)))
            raise ConfigError(f"{first.run_dir} and {record.run_dir} hold the same run ({record.recipe} on "
                              f"{record.corpus}, seed {record.config.get('seed')}) with different results "
                              f"({', '.join(differ[:4])}{', ...' if len(differ) > 4 else ''}); remove one of them")
        # Records written after training (probes, generations) may be in either folder.
        first.probes = {**record.probes, **first.probes}
        first.generations = {**record.generations, **first.generations}
    return list(kept.values())


@dataclass
class Row:
    key: tuple
    recipe: str
    strategy: str
    corpus: str
    distinct: dict[str, Any]
    """Config keys (beyond the recipe) that set this row apart from other rows: they go in its label."""
    runs: list[RunRecord]

    @property
    def seeds(self) -> int:
        return len(self.runs)

    @property
    def protocol(self) -> str | None:
        return self.runs[0].protocol

    def optimizer(self) -> str:
        """How the row was optimised, e.g. ``sgd lr 1, clip 5 global`` (named where rows differ)."""
        clip = self.setting("train.clip_grad")
        clipping = f"clip {clip:g} {self.setting('train.clip_scope')}" if clip else "no clipping"
        return f"{self.setting('train.optimizer')} lr {self.setting('train.lr'):g}, {clipping}"

    def setting(self, key: str) -> Any:
        return self.runs[0].config.get(key)

    def label(self, base: str) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.distinct.items())
        return f"{base} [{extra}]" if extra else base

    def stat(self, get) -> "Stat | None":
        values = [v for v in (get(r) for r in self.runs) if v is not None]
        return Stat.of(values) if values else None


@dataclass
class Stat:
    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> "Stat":
        values = [float(v) for v in values]
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))


def _ignored(key: str, merge: tuple[str, ...]) -> bool:
    return key in ("seed", "name") or key in EXECUTION_KEYS or key in merge


def check_merge(merge: tuple[str, ...]) -> None:
    for key in merge:
        if key.startswith(UNMERGEABLE_PREFIXES):
            raise ConfigError(f"--merge {key}: refusing to average runs of different corpora or evaluation settings "
                              "in one row (data.* and eval.* keys always separate rows)")


def group_rows(records: list[RunRecord], merge: tuple[str, ...] = ()) -> list[Row]:
    """Rows of runs that differ only in their seed (and ``merge`` keys); see the module docstring."""
    check_merge(merge)
    by_recipe: dict[str, list[RunRecord]] = {}
    for record in records:
        by_recipe.setdefault(record.recipe, []).append(record)
    all_keys = sorted({k for r in records for k in r.config})
    varying_overall = {k for k in all_keys if len({repr(r.config.get(k)) for r in records}) > 1}
    rows = []
    for recipe, members in by_recipe.items():
        # keys that differ between any runs of the recipe, on whichever corpora: a row's label names them,
        # so two rows of one recipe never read alike (the corpus has its own column or note)
        keys = [k for k in all_keys if not _ignored(k, merge) and k != "data.corpus"]
        varying = [k for k in keys if len({repr(m.config.get(k)) for m in members}) > 1]
        groups: dict[tuple, list[RunRecord]] = {}
        for member in members:
            groups.setdefault((member.corpus, *(repr(member.config.get(k)) for k in varying)), []).append(member)
        for (corpus, *values), runs in groups.items():
            shown = [k for k in SETTING_KEYS if k in varying_overall and k not in varying and k != "data.corpus"]
            distinct = {k: runs[0].config.get(k) for k in [*varying, *shown]}
            rows.append(Row((corpus, recipe, tuple(values)), recipe, runs[0].strategy, corpus, distinct, runs))
    for row in rows:
        check_row(row)
    return rows


def check_row(row: Row) -> None:
    """Refuse a row whose runs were evaluated differently (test data or protocol)."""
    for name in EVALUATION_FIELDS:
        values = {repr(r.results.get(name)) for r in row.runs}
        if len(values) > 1:
            where = ", ".join(str(r.run_dir) for r in row.runs[:3])
            raise ConfigError(f"refusing to average {row.recipe} on {row.corpus}: its runs were evaluated with "
                              f"different {name} ({', '.join(sorted(values))}) — different test data or evaluation "
                              f"settings ({where}{', ...' if len(row.runs) > 3 else ''})")


def shared_settings(rows: list[Row]) -> dict[str, Any]:
    """Setting keys with one value across every row (stated once, above the table)."""
    out = {}
    for key in SETTING_KEYS:
        values = {repr(r.setting(key)) for r in rows}
        if len(values) == 1:
            out[key] = rows[0].setting(key)
    return out
