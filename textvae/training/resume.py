"""Which config keys a resumed run may change, and the changes it records.

A resume continues the saved optimiser, model and batch order, so keys that shape those (the data,
the model, the strategies, the seed, the optimiser kind) must stay as they were; schedule and
evaluation keys may change, and the change is written to config.json and the next metrics record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..resolution import normalized

MUTABLE_ON_RESUME = (
    "name",
    "train.lr", "train.epochs", "train.decay_epoch", "train.lr_decay", "train.max_decay", "train.load_best_epoch",
    "train.clip_grad", "train.momentum", "train.prior_lr", "train.device", "train.amp", "train.diagnostics",
    "train.progress", "train.deterministic", "train.callbacks",
    "eval.",
)
"""Keys (or ``section.`` prefixes) a resume may change. ``train.lr`` replaces the current, possibly
decayed, learning rate from the next epoch on."""


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def mutable(key: str) -> bool:
    return any(key == m or (m.endswith(".") and key.startswith(m)) for m in MUTABLE_ON_RESUME)


def config_changes(saved: dict[str, Any], new: dict[str, Any], where: Path) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (saved, new)}`` for every key that differs; a key that cannot change mid-run is
    a :class:`ConfigError` naming all such keys."""
    a, b = flatten(normalized(saved)), flatten(normalized(new))
    changed = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
    frozen = [k for k in changed if not mutable(k)]
    if frozen:
        listed = ", ".join(f"{k} ({changed[k][0]!r} -> {changed[k][1]!r})" for k in frozen)
        raise ConfigError(f"{where}: --resume cannot change {listed}: they fix the model, data or batch order "
                          "of the run; start a new run for them")
    return changed


def describe_changes(changes: dict[str, tuple[Any, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {"from": old, "to": new} for k, (old, new) in changes.items()}
