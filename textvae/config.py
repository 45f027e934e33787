"""Typed run configuration, strict dict/TOML loading and dotted overrides.

A run is fully described by :class:`RunConfig`. Recipes are TOML deltas layered on the defaults
(see :mod:`textvae.recipes`); every key is checked against the dataclasses here, so a typo or a
value of the wrong type fails with the dotted key and a close-match suggestion.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError, suggest


@dataclass
class DataConfig:
    corpus: str = "demo"
    """Registered corpus name (``textvae data list``), a directory of train/valid/test files
    (``.txt``, ``.csv``, ``.jsonl``), or ``hf:NAME[:CONFIG]`` for ``datasets.load_dataset(NAME, CONFIG)``."""
    tokenizer: Literal["word", "sentencepiece"] = "word"
    vocab_file: str | None = None
    """Word vocabulary file (one token per line, line index = id); built from train when unset.
    With ``tokenizer = "sentencepiece"``: a ``vocab.txt`` with its ``tokenizer.model`` beside it (a run's)."""
    sp_vocab_size: int = 8000
    batching: Literal["bucket", "padded"] = "bucket"
    """``bucket``: identical-length batches, no padding (the reference code's); ``padded``: masked."""
    batch_size: int = 32
    max_length: int | None = None
    """Truncate sentences to this many words (None keeps them whole)."""
    train_limit: int | None = None
    """Use only the first N training lines (benchmarks, quick studies)."""
    min_batch_size: int = 1
    """Skip training batches smaller than this (DU-VAE skips < 16, BatchNorm needs >= 2)."""


@dataclass
class ModelConfig:
    kind: Literal["vae", "lstm-lm"] = "vae"
    embed_dim: int = 512
    enc_hidden: int = 1024
    dec_hidden: int = 1024
    latent_dim: int = 32
    dec_dropout_in: float = 0.5
    dec_dropout_out: float = 0.5
    init: Literal["he2019", "pytorch"] = "he2019"
    """``he2019``: U(-0.01, 0.01) weights, U(-0.1, 0.1) embeddings; ``pytorch``: library defaults."""
    encoder_init: Literal["he2019", "pytorch"] | None = None
    """Encoder-only override of ``init``: the BN-VAE and DU-VAE reference encoders keep PyTorch's
    defaults (SPEC_NOTES pitfall 9); with He init their posterior means start with a batch variance
    below BatchNorm's eps, so the KL floor does not hold early in training."""


@dataclass
class TrainConfig:
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 1.0
    prior_optimizer: Literal["same", "adam"] = "same"
    """``adam``: a learned prior's parameters (the decoupled flow) get their own Adam optimiser with
    ``prior_lr``; SGD at lr 1 destabilises the flow. Halved with the main lr at each decay."""
    prior_lr: float = 1e-3
    momentum: float = 0.0
    clip_grad: float = 5.0
    """Gradient-norm clip (0: none)."""
    clip_scope: Literal["global", "per-module"] = "global"
    """``global``: one norm over encoder, decoder and prior, as He et al.; ``per-module``: each of them
    clipped to ``clip_grad`` on its own (as separate optimisers with their own clipping would)."""
    epochs: int = 100
    decay_epoch: int = 5
    """Bad validation epochs before the learning rate is halved (and the best checkpoint reloaded)."""
    lr_decay: float = 0.5
    max_decay: int = 5
    load_best_epoch: int = 15
    """Decays happen only from this epoch on."""
    device: str = "auto"
    amp: bool = False
    """bfloat16 autocast for the training step on CUDA and CPU: products and LSTMs in bfloat16, softmax,
    loss and weights in float32 (CPU: worth it only with AVX512-BF16 or AMX; see eval/bench_train.py)."""
    diagnostics: bool = True
    """Per-epoch validation MI, AU and per-dimension KL in the metrics log."""
    progress: bool = True


@dataclass
class EvalConfig:
    iw_samples: int = 500
    max_tokens: int = 200_000
    """Memory budget for one IW forward pass: sentences x samples x tokens per chunk."""
    mi_estimator: Literal["whole-set", "per-batch"] = "whole-set"
    au_threshold: float = 0.01
    precision: Literal["float32", "bfloat16"] = "float32"
    """IW-NLL decoder matrix products in bfloat16 autocast: 2.7-3x the float32 speed on AVX512-BF16 CPUs;
    sums and the log-sum-exp stay float32+ (eval/bench_eval.py measures the difference)."""
    split: Literal["train", "valid", "test"] = "test"
    limit: int | None = None
    """Evaluate only the first N sentences of the split (quick studies; reported in results.json)."""


@dataclass
class RunConfig:
    name: str = "run"
    seed: int = 783435
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    prior: dict[str, Any] = field(default_factory=lambda: {"name": "standard-normal"})
    """``{"name": ..., **params}``; params are checked against the prior's own config class."""
    strategies: dict[str, dict[str, Any]] = field(default_factory=lambda: {"vae": {}})
    """Ordered stack ``{strategy-name: {param: value}}``; each checked against its config class."""
    procedure: dict[str, Any] = field(default_factory=lambda: {"name": "default"})
    """How a batch becomes updates: ``{"name": ..., **params}`` (``default``, ``aggressive``)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> "RunConfig":
        cfg = from_dict(cls, d, where)
        validate(cfg, where)
        return cfg

    @classmethod
    def from_saved(cls, d: dict[str, Any], where: str = "config") -> "RunConfig":
        """A config textvae wrote into a run folder or checkpoint, perhaps in an older version:
        keys textvae has since retired are dropped, everything else is checked as usual."""
        d = {section: {k: v for k, v in value.items() if k not in RETIRED_KEYS.get(section, ())}
             if isinstance(value, dict) else value for section, value in d.items()}
        return cls.from_dict(d, where)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """The config.json of a run folder."""
        path = Path(path)
        return cls.from_saved(read_mapping(path), where=str(path))


RETIRED_KEYS: dict[str, tuple[str, ...]] = {"eval": ("batch_size",)}
"""Keys older run folders hold that textvae no longer has (``eval.batch_size`` was never read:
evaluation batches follow ``data.batch_size``, as in the reference code)."""


def read_mapping(path: Path) -> dict[str, Any]:
    """Read a TOML or JSON file into a dict, with a one-line error naming the file and line."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        lineno = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path}:{lineno}: not UTF-8 text") from None
    try:
        if path.suffix == ".json":
            return json.loads(text)
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints widen to floats, nothing else converts."""
    origin = typing.get_origin(tp)
    bad = ConfigError(f"{where}: key '{key}' expects {_type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(
                f"{where}: key '{key}' must be one of {_type_name(tp)}, got {value!r}"
                + suggest(str(value), [str(a) for a in typing.get_args(tp)])
            )
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key, where)
            except ConfigError:
                continue
        raise bad
    if origin in (dict, list, tuple):
        expected = {dict: dict, list: (list, tuple), tuple: (list, tuple)}[origin]
        if not isinstance(value, expected):
            raise bad
        return value if origin is dict else list(value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad
        return from_dict(tp, value, where, prefix=key + ".")
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise TypeError(f"unsupported config annotation {tp!r} for {key}")


def from_dict(cls: type, d: dict[str, Any], where: str = "config", prefix: str = ""):
    """Build dataclass ``cls`` from ``d``; unknown keys and wrong types raise :class:`ConfigError`."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: '{prefix.rstrip('.') or 'config'}' must be a table")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in d.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key '{prefix}{key}'" + suggest(key, names))
        kwargs[key] = coerce(value, hints[key], prefix + key, where)
    return cls(**kwargs)


def validate(cfg: RunConfig, where: str) -> None:
    """Resolve strategy and prior names and check their parameters against their config classes."""
    from .priors import PRIORS
    from .procedures import PROCEDURES
    from .strategies import STRATEGIES

    if not cfg.strategies:
        raise ConfigError(f"{where}: 'strategies' is empty; use {{vae = {{}}}} for a plain VAE")
    for name, params in cfg.strategies.items():
        STRATEGIES.config(name, params, where=f"{where}: strategies.{name}")
    prior = dict(cfg.prior)
    name = prior.pop("name", None)
    if name is None:
        raise ConfigError(f"{where}: key 'prior.name' is missing")
    PRIORS.config(name, prior, where=f"{where}: prior")
    if cfg.model.kind == "lstm-lm" and list(cfg.strategies) != ["vae"]:
        raise ConfigError(f"{where}: model.kind 'lstm-lm' has no latent variable; strategies must be {{vae = {{}}}}")
    procedure = dict(cfg.procedure)
    name = procedure.pop("name", "default")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: procedure.name must be one procedure name (a run has one procedure), got {name!r}")
    PROCEDURES.config(name, procedure, where=f"{where}: procedure")
    if cfg.model.kind == "lstm-lm" and name != "default":
        raise ConfigError(f"{where}: procedure.name '{name}' trains an inference network; model.kind 'lstm-lm' "
                          "has none")


def deep_merge(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: tables merge key by key, anything else in ``delta`` wins."""
    out = dict(base)
    for key, value in delta.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value``; the value is read as a TOML literal, falling back to a bare string."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides to a config dict.

    ``strategy.KEY=V`` is a shorthand for the one strategy in the stack whose config has ``KEY``.
    """
    from .strategies import STRATEGIES

    d = json.loads(json.dumps(d))
    for item in overrides:
        path, value = parse_override(item)
        if path[0] == "strategy" and len(path) == 2:
            owners = [n for n in d.get("strategies", {}) if path[1] in STRATEGIES.param_names(n)]
            if len(owners) != 1:
                stack = ", ".join(d.get("strategies", {}))
                raise ConfigError(
                    f"--set {item}: "
                    + ("no" if not owners else "more than one")
                    + f" strategy in the stack [{stack}] has a parameter '{path[1]}'"
                )
            path = ["strategies", owners[0], path[1]]
        node = d
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: '{part}' is not a table")
        node[path[-1]] = value
    return d
