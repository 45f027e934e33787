"""Resolution: a schema-checked :class:`~textvae.config.RunConfig` checked against the strategy,
prior, procedure and decoder registries.

Layers, each importing only the ones below it::

    config (schema)  <-  registry  <-  strategies, priors, procedures  <-  models  <-  resolution
        <-  training, recipes, CLI

(models registers the decoder variants, so resolution sits above it.)

:func:`resolve_config` builds each strategy's typed config exactly once and stores it in the
config's ``strategies`` table, where :func:`textvae.strategies.build_stack` hands it to the strategy;
the prior's and the procedure's tables get every default filled in. ``to_dict()`` of a resolved config therefore lists
every parameter, which is what a run folder records and what checkpoints are compared by.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterable

from . import config as schema
from .config import RunConfig
from .models.registry import DECODERS
from .priors import PRIORS
from .procedures import PROCEDURES
from .registry import import_object
from .strategies import STRATEGIES


def resolve_config(config: RunConfig, where: str = "config") -> RunConfig:
    """``config`` with typed strategy configs and a complete prior table; unknown names and bad
    parameters raise :class:`~textvae.errors.ConfigError` naming the key. Idempotent."""
    DECODERS.entry(config.model.decoder, where=f"{where}: model.decoder")
    for name in config.train.callbacks:
        import_object(name, where=f"{where}: train.callbacks")
    strategies = {}
    for name, params in config.strategies.items():
        entry = STRATEGIES.entry(name, where=f"{where}: strategies")
        if isinstance(params, entry.config_cls):
            strategies[name] = params
        else:
            strategies[name] = STRATEGIES.config(name, params, where=where)
    prior = dict(config.prior)
    name = prior.pop("name")
    typed_prior = PRIORS.config(name, prior, where=where)
    procedure = dict(config.procedure)
    procedure_name = procedure.pop("name", "default")
    typed_procedure = PROCEDURES.config(procedure_name, procedure, where=where)
    return dataclasses.replace(config, strategies=strategies,
                               prior={"name": name, **dataclasses.asdict(typed_prior)},
                               procedure={"name": procedure_name, **dataclasses.asdict(typed_procedure)})


def from_dict(d: dict[str, Any], where: str = "config") -> RunConfig:
    """:meth:`RunConfig.from_dict` followed by :func:`resolve_config`."""
    return resolve_config(RunConfig.from_dict(d, where), where)


def load(path: str | Path) -> RunConfig:
    """A run folder's config.json, resolved (keys textvae has since retired are dropped)."""
    return resolve_config(RunConfig.load(path), str(path))


def apply_overrides(d: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """:func:`textvae.config.apply_overrides` with the ``strategy.KEY`` shorthand resolved through
    the strategy registry."""
    return schema.apply_overrides(d, overrides, param_names=STRATEGIES.param_names)


def normalized(d: dict[str, Any]) -> dict[str, Any]:
    """A saved config dict with every default filled in, so that a key added to textvae after a run
    was saved compares equal to its default instead of orphaning the run."""
    return resolve_config(RunConfig.from_saved(d)).to_dict()
