"""Recipes: TOML deltas layered into a :class:`RunConfig`.

``defaults.toml`` -> ``datasets/<dataset>.toml`` -> ``strategies/<strategy>.toml`` ->
``datasets/<dataset>/<strategy>.toml`` -> ``protocols/<protocol>.toml`` (a strategy named
``<strategy>@<protocol>``) -> ``priors/<prior>.toml`` (with ``--prior``) -> ``--set key=value``.
Each file lists only what differs from the layers below it. A strategy recipe's ``[strategies]``
table replaces the stack; the dataset-specific layer then only adjusts parameters of that stack. A dataset recipe's
``[strategy_defaults.<name>]`` tables adjust strategy ``<name>`` in whichever stack contains it
(e.g. a shorter KL warm-up for a short demo run). A protocol sets only ``[train]`` keys: how a
recipe is optimised, so that one method can be trained exactly as another is (``bn-vae@scale-vae``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .config import RunConfig, deep_merge, read_mapping
from .errors import ConfigError, suggest
from .resolution import apply_overrides, resolve_config
from .resources import shipped_dir

RECIPES_DIR = Path(os.environ.get("TEXTVAE_RECIPES", shipped_dir("recipes")))


def _names(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.toml"))


def datasets() -> list[str]:
    return _names(RECIPES_DIR / "datasets")


LAYER_FOLDERS = ("datasets", "strategies", "priors", "protocols")
PROTOCOL_MARK = "@"


def strategies() -> list[str]:
    """Strategy recipes: ``strategies/NAME.toml`` as ``NAME``, then those of other folders, such as
    ``dpvae/NAME.toml``, as ``dpvae/NAME``."""
    grouped = [f"{folder.name}/{name}" for folder in sorted(RECIPES_DIR.iterdir())
               if folder.is_dir() and folder.name not in LAYER_FOLDERS for name in _names(folder)]
    return _names(RECIPES_DIR / "strategies") + grouped


def protocols() -> list[str]:
    return _names(RECIPES_DIR / "protocols")


def split_protocol(strategy: str) -> tuple[str, str | None]:
    """``bn-vae@scale-vae`` -> (``bn-vae``, ``scale-vae``); a name without ``@`` has no protocol."""
    base, mark, protocol = strategy.partition(PROTOCOL_MARK)
    return (base, protocol) if mark else (strategy, None)


def _protocol_layer(protocol: str) -> dict[str, Any]:
    check_name("protocol", protocol)
    if protocol not in protocols():
        raise ConfigError(f"unknown recipe protocol '{protocol}'" + suggest(protocol, protocols())
                          + f"; available: {', '.join(protocols()) or 'none'}")
    path = RECIPES_DIR / "protocols" / f"{protocol}.toml"
    layer = read_mapping(path)
    if set(layer) != {"train"}:
        found = ", ".join(sorted(layer))
        raise ConfigError(f"{path}: a protocol sets only [train] keys (found {found})")
    return layer


def _layer(path: Path) -> dict[str, Any]:
    return read_mapping(path) if path.is_file() else {}


def priors() -> list[str]:
    return _names(RECIPES_DIR / "priors")


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def check_name(kind: str, name: str, grouped: bool = False) -> None:
    """Recipe names are file names inside recipes/ (``GROUP/NAME`` for a grouped strategy): no ``..``,
    no absolute path, so no name loads a TOML from elsewhere or puts its run folder outside runs/."""
    parts = (name.split("/") if grouped else [name]) if isinstance(name, str) else [""]
    if not all(NAME.fullmatch(p) and ".." not in p for p in parts) or len(parts) > 2:
        raise ConfigError(f"recipe {kind} {name!r}: not a recipe name (letters, digits, '_', '.', '+', '-'"
                          + (", one '/' for a group" if grouped else "") + ")")


def resolve_dict(dataset: str, strategy: str, overrides: list[str] | None = None,
                 seed: int | None = None, prior: str | None = None) -> dict[str, Any]:
    check_name("dataset", dataset)
    full_name = strategy
    strategy, protocol = split_protocol(strategy)
    check_name("strategy", strategy, grouped=True)
    protocol_layer = _protocol_layer(protocol) if protocol is not None else {}
    if prior is not None:
        check_name("prior", prior)
    if not RECIPES_DIR.is_dir():
        raise ConfigError(f"{RECIPES_DIR}: recipes folder not found (set TEXTVAE_RECIPES)")
    if dataset not in datasets():
        raise ConfigError(f"unknown recipe dataset '{dataset}'" + suggest(dataset, datasets())
                          + f"; available: {', '.join(datasets())}")
    grouped = "/" in strategy  # a recipe outside strategies/, e.g. "dpvae/factor-vae-dp"
    strategy_file = RECIPES_DIR / (f"{strategy}.toml" if grouped else f"strategies/{strategy}.toml")
    if not strategy_file.is_file():
        raise ConfigError(f"unknown recipe strategy '{strategy}'" + suggest(strategy, strategies())
                          + f"; available: {', '.join(strategies())}")
    d = _layer(RECIPES_DIR / "defaults.toml")
    dataset_layer = _layer(RECIPES_DIR / "datasets" / f"{dataset}.toml")
    strategy_defaults = dataset_layer.pop("strategy_defaults", {})
    d = deep_merge(d, dataset_layer)
    strategy_layer = _layer(strategy_file)
    if "strategies" in strategy_layer:
        d["strategies"] = {}
    d = deep_merge(d, strategy_layer)
    for name, params in strategy_defaults.items():
        if name in d["strategies"]:
            d["strategies"][name] = {**d["strategies"][name], **params}
    d = deep_merge(d, _layer(RECIPES_DIR / "datasets" / dataset / f"{strategy}.toml"))
    d = deep_merge(d, protocol_layer)
    if prior is not None:
        d = deep_merge(d, _layer(RECIPES_DIR / "priors" / f"{prior}.toml") or {"prior": {"name": prior}})
    d["name"] = f"{dataset}/{full_name}"
    if seed is not None:
        d["seed"] = seed
    return apply_overrides(d, overrides or [])


def resolve(dataset: str, strategy: str, overrides: list[str] | None = None, seed: int | None = None,
            prior: str | None = None) -> RunConfig:
    """The validated config of recipe ``dataset`` x ``strategy`` (under ``prior`` when given)."""
    where = f"recipe {dataset}/{strategy}"
    return resolve_config(RunConfig.from_dict(resolve_dict(dataset, strategy, overrides, seed, prior), where), where)
