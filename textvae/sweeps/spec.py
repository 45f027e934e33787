"""A sweep: datasets x recipes x seeds x a grid of overrides, expanded into run points.

A sweep file is TOML with the keys of :class:`SweepSpec`::

    datasets = ["demo"]
    strategies = ["vae", "bn-vae", "scale-vae"]
    seeds = 3                          # 3 -> seeds 1, 2, 3; or an explicit list [783435, 101]
    set = ["train.epochs=20"]          # overrides for every point (``--set`` syntax)

    [grid]                             # optional: one point per combination of these values
    "strategy.des_std" = [0.7, 0.9, 1.1]

    [variants]                         # optional: named override lists, one point each (times the grid)
    recipe = []
    adam = ["train.optimizer=adam", "train.lr=0.001"]

    [probe]                            # optional: the Table-4 probe after each run
    data = "short-yelp"

Every point is resolved to its full config before anything runs, and every corpus is checked
(its folder and split files, ``data.vocab_file``, ``data.batch_schedule``), so a typo in any recipe,
key or value, or a bad per-corpus file, is reported (one line) before Ray starts.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import recipes
from ..config import DataConfig, from_dict, read_mapping
from ..errors import ConfigError, TextVAEError
from ..strategies import STRATEGIES

MAX_SEEDS = 1000
MAX_POINTS = 10_000
"""Bounds checked before any point is expanded: every point is resolved before the sweep starts, so a
count past these (``--seeds 99999999``) would only ever be a long wait and an exhausted memory."""


@dataclass
class ProbeStep:
    data: str = "short-yelp"
    """Catalog corpus name under the data root, or a folder with train.N.txt, valid.txt, test.txt."""
    subsets: list[int] = field(default_factory=lambda: [100, 500, 1000, 2000, 10000])
    probes: list[str] = field(default_factory=lambda: ["sgd-linear", "sklearn-logreg"])
    seed: int = 0


@dataclass
class SweepSpec:
    datasets: list[str] = field(default_factory=list)
    strategies: list[str] = field(default_factory=list)
    seeds: int | list[int] = 1
    """N (seeds 1..N) or an explicit list of seeds."""
    prior: str | None = None
    set: list[str] = field(default_factory=list)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    variants: dict[str, list[str]] = field(default_factory=dict)
    """``{name: [override, ...]}``: one point per variant (times the grid), its overrides after ``set``
    and its name in the point id; for studies that change one option at a time, which a grid's
    product cannot express."""
    strategy_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``{strategy: {param: value}}``: applied to every point whose stack contains that strategy (as a
    dataset recipe's own table does), e.g. a KL warm-up that fits a shortened run."""
    cpus_per_run: float = 1.0
    gpus_per_run: float | None = None
    """None: one GPU per run where the Ray cluster has GPUs, else none."""
    probe: ProbeStep | None = None

    def seed_list(self) -> list[int]:
        return list(range(1, self.seeds + 1)) if isinstance(self.seeds, int) else list(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Point:
    """One run of the sweep: its id (also its folder below ``SWEEP/runs``) and its resolved config."""

    id: str
    dataset: str
    strategy: str
    seed: int
    overrides: list[str]
    config: dict[str, Any]

    def run_dir(self, sweep_dir: Path) -> Path:
        return Path(sweep_dir) / "runs" / self.id


def _check(spec: SweepSpec, where: str) -> SweepSpec:
    for key in ("datasets", "strategies"):
        if not getattr(spec, key):
            raise ConfigError(f"{where}: '{key}' is empty; list at least one")
    if isinstance(spec.seeds, int) and not 1 <= spec.seeds <= MAX_SEEDS:
        raise ConfigError(f"{where}: 'seeds' must be a count from 1 to {MAX_SEEDS}, got {spec.seeds}")
    # the elements' type is the config reader's check; their range is this one
    if isinstance(spec.seeds, list) and (not spec.seeds or not all(0 <= s < 2**63 for s in spec.seeds)):
        raise ConfigError(f"{where}: 'seeds' must be a number or a non-empty list of integers >= 0, "
                          f"got {spec.seeds!r}")
    if spec.cpus_per_run <= 0 or (spec.gpus_per_run is not None and spec.gpus_per_run < 0):
        raise ConfigError(f"{where}: cpus_per_run must be > 0 and gpus_per_run >= 0")
    for key, values in spec.grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid key '{key}' must list at least one value")
    for name in spec.strategy_defaults:
        STRATEGIES.entry(name, where=f"{where}: strategy_defaults")
    if spec.probe is not None:
        from ..probing import PROBES
        from ..probing.protocol import check_subsets

        check_subsets(spec.probe.subsets, f"{where}: [probe] subsets")
        unknown = [p for p in spec.probe.probes if p not in PROBES]
        if unknown:
            raise ConfigError(f"{where}: [probe] probes: unknown probe {unknown[0]!r}; choose from {', '.join(PROBES)}")
    for name, overrides in spec.variants.items():
        if not name or "/" in name or not all(isinstance(o, str) for o in overrides):
            raise ConfigError(f"{where}: variant '{name}' needs a name without '/' and a list of overrides")
    points = len(spec.seed_list()) * len(spec.datasets) * len(spec.strategies)
    points *= max(len(spec.variants), 1)
    for values in spec.grid.values():
        points *= len(values)
    if points > MAX_POINTS:
        raise ConfigError(f"{where}: {points} points; a sweep holds at most {MAX_POINTS} "
                          "(split it into several)")
    return spec


def load_spec(path: Path) -> SweepSpec:
    """Read a sweep file; unknown keys and wrong types are one-line errors naming the file and key."""
    return _check(from_dict(SweepSpec, read_mapping(Path(path)), where=str(path)), str(path))


def prepare(spec: SweepSpec, where: str, data_dir: str | Path | None = None) -> list[Point]:
    """Every point resolved (:func:`expand`) and every corpus and the probe data found, so that a
    typo anywhere in the sweep is one line naming ``where`` before anything runs."""
    from ..probing.protocol import load_probe_data, probe_data_dir

    try:
        points = expand(spec)
        datas = {json.dumps(p.config["data"], sort_keys=True): p.config["data"] for p in points}
        for data in datas.values():
            check_data_files(DataConfig(**data), data_dir)
    except TextVAEError as e:
        raise ConfigError(f"{where}: {e}") from None
    if spec.probe is not None:
        try:
            load_probe_data(probe_data_dir(spec.probe.data, data_dir), tuple(spec.probe.subsets))
        except TextVAEError as e:
            raise ConfigError(f"{where}: [probe] data = {spec.probe.data!r}: {e}") from None
    return points


def check_data_files(data: DataConfig, data_dir: str | Path | None) -> None:
    """What a point's data settings name and can be checked cheaply, before any run starts: the
    corpus folder and its split files, the vocabulary file, the batch schedule."""
    from ..data.catalog import locate_corpus
    from ..data.corpus import SPLITS, find_split_file
    from ..data.loading import configured_vocab, load_vocab_file
    from ..data.schedule import load_schedule

    root = locate_corpus(data.corpus, data_dir)
    if root is not None:
        for split in SPLITS:
            find_split_file(root, split)
    vocab_file = configured_vocab(data)
    if vocab_file is not None:
        load_vocab_file(vocab_file, data)
    if data.batch_schedule:
        load_schedule(data.batch_schedule)


def split_list(value: str, option: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise ConfigError(f"{option}: empty list")
    return items


def parse_seeds(value: str) -> int | list[int]:
    """``5`` -> 5 seeds (1..5); ``1,7,42`` -> those seeds."""
    try:
        items = [int(v) for v in split_list(value, "--seeds")]
    except ValueError:
        raise ConfigError(f"--seeds: expected a count or a comma-separated list of integers, got {value!r}") from None
    return items[0] if len(items) == 1 and "," not in value else items


def shorthand_spec(dataset: str, strategy: str, seeds: str, overrides: list[str], prior: str | None = None
                   ) -> SweepSpec:
    """The spec of ``textvae sweep --dataset demo --strategy vae,bn-vae --seeds 5 --set k=v``."""
    spec = SweepSpec(datasets=split_list(dataset, "--dataset"), strategies=split_list(strategy, "--strategy"),
                     seeds=parse_seeds(seeds), prior=prior, set=list(overrides))
    return _check(spec, "command line")


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _grid_tag(combo: dict[str, Any]) -> str:
    """``des_std=0.9,f_epo=7``: the last part of each key, or the whole key where that is ambiguous."""
    tails = [k.split(".")[-1] for k in combo]
    names = [t if tails.count(t) == 1 else k for t, k in zip(tails, combo)]
    tag = ",".join(f"{n}={v}" for n, v in zip(names, combo.values())).replace("/", "_")
    return tag if len(tag) <= 80 else hashlib.sha1(tag.encode()).hexdigest()[:12]


def expand(spec: SweepSpec) -> list[Point]:
    """Every point of the sweep, configs resolved and validated (recipe errors surface here)."""
    keys = list(spec.grid)
    combos = [dict(zip(keys, values)) for values in itertools.product(*(spec.grid[k] for k in keys))]
    variants = list(spec.variants.items()) or [(None, [])]
    points = []
    # Seed-major: a sweep stopped early has every row of the table with fewer seeds rather than
    # some rows with all seeds and others with none.
    for seed in spec.seed_list():
        for dataset in spec.datasets:
            for strategy in spec.strategies:
                for (variant, extra), combo in itertools.product(variants, combos):
                    overrides = list(spec.set) + list(extra) + [f"{k}={_format_value(v)}" for k, v in combo.items()]
                    stack = recipes.resolve_dict(dataset, strategy, overrides, seed, spec.prior)["strategies"]
                    overrides[len(spec.set):len(spec.set)] = [
                        f"strategies.{name}.{k}={_format_value(v)}"
                        for name, params in spec.strategy_defaults.items() if name in stack for k, v in params.items()]
                    config = recipes.resolve(dataset, strategy, overrides, seed, spec.prior)
                    name = strategy if spec.prior is None else f"{strategy}+{spec.prior}"
                    parts = ([dataset, name] + ([variant] if variant else []) + ([_grid_tag(combo)] if combo else [])
                             + [f"seed{seed}"])
                    points.append(Point("/".join(parts), dataset, strategy, seed, overrides, config.to_dict()))
    ids = [p.id for p in points]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate is not None:
        raise ConfigError(f"sweep lists point {duplicate} twice (a repeated dataset, strategy or seed)")
    return points
