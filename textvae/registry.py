"""Name -> (class, config dataclass) registries for strategies, priors and decoder variants.

Checkpoints and configs store registry names and plain parameters, never pickled classes.
Third-party packages can add entries through the ``textvae.strategies`` / ``textvae.priors`` /
``textvae.decoders`` entry-point groups.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable

from .config import from_dict
from .errors import ConfigError, suggest


@dataclass
class Entry:
    cls: type
    config_cls: type
    help: str


class Registry:
    def __init__(self, kind: str, entry_point_group: str, key_prefix: str = ""):
        self.kind = kind
        self.group = entry_point_group
        self.key_prefix = key_prefix
        """Where an entry's parameters sit in a run config, e.g. ``strategies.{name}.``: errors name the dotted key."""
        self._entries: dict[str, Entry] = {}
        self._plugins_loaded = False

    def register(self, name: str, config: type) -> Callable[[type], type]:
        def deco(cls: type) -> type:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            # the docstring's first paragraph, however it is wrapped, is the one-line help
            summary = (cls.__doc__ or "").strip().split("\n\n")[0]
            self._entries[name] = Entry(cls, config, " ".join(summary.split()))
            cls.registry_name = name
            return cls

        return deco

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            ep.load()

    def names(self) -> list[str]:
        self._load_plugins()
        return list(self._entries)

    def entry(self, name: str, where: str = "") -> Entry:
        self._load_plugins()
        if name not in self._entries:
            prefix = f"{where}: " if where else ""
            raise ConfigError(f"{prefix}unknown {self.kind} '{name}'" + suggest(name, self._entries))
        return self._entries[name]

    def param_names(self, name: str) -> list[str]:
        return [f.name for f in dataclasses.fields(self.entry(name).config_cls)]

    def config(self, name: str, params: dict[str, Any], where: str = "config"):
        """The typed config of entry ``name``; unknown keys, wrong types and out-of-range values are
        :class:`ConfigError` errors naming the dotted key."""
        entry = self.entry(name, where)
        return from_dict(entry.config_cls, params, where=where, prefix=self.key_prefix.format(name=name))

    def build(self, name: str, params: Any, where: str = "config", **kwargs):
        """An instance of ``name`` from its typed config (as resolution builds it) or a plain table."""
        entry = self.entry(name, where)
        config = params if isinstance(params, entry.config_cls) else self.config(name, params, where)
        return entry.cls(config, **kwargs)


def import_object(name: str, where: str = "config") -> Any:
    """The object ``"package.module:attribute"`` names (a user's class in a config, for instance);
    a name that does not import raises :class:`ConfigError` prefixed with ``where``."""
    module_name, sep, attribute = name.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"{where}: '{name}' is not of the form 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any failure of the user's module is this config's error
        raise ConfigError(f"{where}: cannot import '{name}' ({type(e).__name__}: {e})".splitlines()[0]) from None
    obj = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{where}: cannot import '{name}' (module '{module_name}' has no '{attribute}')")
        obj = getattr(obj, part)
    return obj
