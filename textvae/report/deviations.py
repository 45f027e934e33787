"""What a report must say about its runs beyond the table: the settings in which they differ from
their recipes or from the published protocol, and the estimates the test set caps (MI <= log N).

A table beside the published values invites reading the numbers as a replication; a narrower model,
a shortened warm-up or a 100-sentence test set changes what the numbers can be, so the notes name
them. Settings that differ between rows are in the row labels already (:mod:`textvae.report.records`).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

from ..config import EXECUTION_KEYS
from ..errors import ConfigError
from ..training.resume import flatten
from .records import Row

# Keys compared with the published protocol (the recipe of the published column's corpus): what
# bounds the numbers, not how the data are read.
PROTOCOL_KEYS = ("model.", "strategies.", "procedure.", "prior.", "train.epochs", "data.train_limit",
                 "data.max_length", "eval.split", "eval.limit", "eval.iw_samples", "eval.mi_estimator")
# Stated elsewhere in the notes, or not a setting.
NOT_STATED = ("seed", "name", "data.corpus", *EXECUTION_KEYS)


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    return f"{value:g}" if isinstance(value, float) else str(value)


@lru_cache(maxsize=None)
def recipe_config(dataset: str, strategy: str, prior: str | None) -> dict[str, Any] | None:
    """The flattened config of recipe ``dataset/strategy`` (under ``prior``), None when there is none."""
    from .. import recipes

    try:
        if prior is not None and prior not in recipes.priors():
            prior = None
        return flatten(recipes.resolve(dataset, strategy, prior=prior).to_dict())
    except ConfigError:
        return None


def _recipe_of(row: Row, dataset: str | None = None) -> dict[str, Any] | None:
    if "/" not in row.recipe:
        return None
    own_dataset, strategy = row.recipe.split("/", 1)
    prior = row.setting("prior.name")
    return recipe_config(dataset or own_dataset, strategy, None if prior in (None, "standard-normal") else prior)


def _differences(config: dict[str, Any], reference: dict[str, Any], keys=None) -> dict[str, tuple[Any, Any]]:
    out = {}
    for key in sorted(set(config) | set(reference)):
        if key in NOT_STATED or (keys is not None and not key.startswith(keys)):
            continue
        if _text(config.get(key)) != _text(reference.get(key)):
            out[key] = (config.get(key), reference.get(key))
    return out


def _describe(found: dict[str, dict[str, tuple[Any, Any]]], rows: list[Row], names: dict[int, str],
              reference: str) -> list[str]:
    """``key = ours (reference theirs)``, once per key and value, naming the rows unless it is all of them."""
    in_labels = {k for row in rows for k in row.distinct}
    by_setting: dict[tuple[str, str, str], list[str]] = {}
    for i, row in enumerate(rows):
        for key, (ours, theirs) in found.get(i, {}).items():
            if key not in in_labels:
                by_setting.setdefault((key, _show(ours), _show(theirs)), []).append(names[i])
    parts = []
    for (key, ours, theirs), where in by_setting.items():
        scope = "" if len(where) == len(rows) else f" in {', '.join(where)}"
        parts.append(f"{key} = {ours} ({reference} {theirs}){scope}")
    return parts


def deviation_notes(rows: list[Row], labels: list[str], published_dataset: str | None) -> list[str]:
    """Notes naming every setting that differs from the rows' recipes, and from the recipe of the
    published column's corpus (the published protocol) when the runs are on another corpus."""
    names = dict(enumerate(labels))
    notes = []
    own = {}
    for i, row in enumerate(rows):
        recipe = _recipe_of(row)
        if recipe is not None:
            own[i] = _differences(row.runs[0].config, recipe)
    parts = _describe(own, rows, names, "recipe")
    if parts:
        notes.append("Differs from the recipe: " + "; ".join(parts) + ".")
    if published_dataset is not None:
        protocol = {}
        for i, row in enumerate(rows):
            if row.corpus == published_dataset:
                continue  # its own recipe is the protocol: compared above
            recipe = _recipe_of(row, published_dataset)
            if recipe is not None:
                protocol[i] = _differences(row.runs[0].config, recipe, PROTOCOL_KEYS)
        parts = _describe(protocol, rows, names, f"{published_dataset} protocol")
        if parts:
            notes.append(f"Differs from the published protocol (the {published_dataset} recipe): "
                         + "; ".join(parts) + ".")
    return notes


def mi_cap_note(rows: list[Row], labels: list[str], published_mi: dict[int, float] | None = None) -> str | None:
    """A warning where an MI estimate is capped: the whole-set estimator cannot exceed log N on N test
    sentences (the per-batch one log B on batches of B); rows whose MI is within 10% of the cap, or
    whose published MI lies above it, are named."""
    caps: dict[tuple[str, int], list[int]] = {}
    for i, row in enumerate(rows):
        first = row.runs[0].results
        estimator = first.get("mi_estimator")
        if estimator == "whole-set" and first.get("n_sentences"):
            caps.setdefault(("N", int(first["n_sentences"])), []).append(i)
        elif estimator == "per-batch" and row.setting("data.batch_size"):
            caps.setdefault(("B", int(row.setting("data.batch_size"))), []).append(i)
    warnings = []
    for (symbol, n), members in caps.items():
        cap = math.log(n)
        near = []
        for i in members:
            mi = rows[i].stat(lambda r: r.results.get("mi"))
            if mi is not None and mi.mean >= 0.9 * cap:
                near.append(f"{labels[i]} ({mi.mean:.2f})")
        above = [f"{labels[i]} ({published_mi[i]:g})" for i in members
                 if published_mi and published_mi.get(i) is not None and published_mi[i] > cap]
        if near or above:
            what = f"N = {n} test sentences" if symbol == "N" else f"batches of B = {n} (per-batch estimator)"
            text = f"MI cannot exceed log {symbol} = {cap:.2f} nats on {what}"
            if near:
                text += f"; at the cap: {', '.join(near)}"
            if above:
                text += f"; published MI above the cap: {', '.join(above)}"
            warnings.append(text)
    return "Warning: " + ". ".join(warnings) + "." if warnings else None
