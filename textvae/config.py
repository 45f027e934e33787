"""The run configuration's schema: typed sections, strict dict/TOML reading, value ranges,
merging and ``--set`` parsing.

A run is fully described by :class:`RunConfig`. Recipes are TOML deltas layered on the defaults
(see :mod:`textvae.recipes`); every key is checked against the dataclasses here, so a typo, a value
of the wrong type or a value out of range fails with the dotted key (and a close-match suggestion).

This module is the bottom layer: it imports neither torch nor the strategy and prior registries
(which import it for their own config classes). Checking the ``strategies`` and ``prior`` tables
against those registries is :mod:`textvae.resolution`'s job.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError, suggest
from .formats import check_format

FLOAT32_MAX = 3.4028234663852886e38
"""Every float key ends up in a float32 tensor or torch's float32 arithmetic (a learning rate, a loss
weight): a value past this, or an infinite or NaN one, is refused here, not after training started."""
INT64_LIMIT = 2**63
"""Every int key fits a 64-bit integer (torch's sizes and seeds are int64)."""


@dataclass(frozen=True)
class Range:
    """Closed or open bounds of a numeric key; ``None`` leaves a side unbounded."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def holds(self, value: float) -> bool:
        # Written as "not within" so that NaN, which compares false with everything, is out of range.
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def __str__(self) -> str:
        parts = [f">= {self.ge:g}" if self.ge is not None else "", f"> {self.gt:g}" if self.gt is not None else "",
                 f"<= {self.le:g}" if self.le is not None else "", f"< {self.lt:g}" if self.lt is not None else ""]
        return " and ".join(p for p in parts if p)


def ranged(default: Any, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
           lt: float | None = None) -> Any:
    """A dataclass field whose value (when not None) must lie in the range; checked by :func:`from_dict`."""
    return field(default=default, metadata={"range": Range(ge, gt, le, lt)})


@dataclass
class DataConfig:
    corpus: str = "demo"
    """Registered corpus name (``textvae data list``), a directory of train/valid/test files
    (``.txt``, ``.csv``, ``.jsonl``), or ``hf:NAME[:CONFIG]`` for ``datasets.load_dataset(NAME, CONFIG)``."""
    tokenizer: Literal["word", "sentencepiece"] = "word"
    vocab_file: str | None = None
    """Word vocabulary file (one token per line, line index = id); built from train when unset.
    With ``tokenizer = "sentencepiece"``: a ``vocab.txt`` with its ``tokenizer.model`` beside it (a run's)."""
    sp_vocab_size: int = ranged(8000, ge=5)
    batching: Literal["bucket", "padded"] = "bucket"
    """``bucket``: identical-length batches, no padding (the reference code's); ``padded``: masked."""
    batch_size: int = ranged(32, ge=1)
    max_length: int | None = ranged(None, ge=1)
    """Truncate sentences to this many words (None keeps them whole)."""
    train_limit: int | None = ranged(None, ge=1)
    """Use only the first N training lines (benchmarks, quick studies)."""
    min_batch_size: int = ranged(1, ge=1)
    """Skip training batches smaller than this (DU-VAE skips < 16, BatchNorm needs >= 2)."""
    lowercase: bool = False
    """Lower-case the text before tokenizing, in training and in every later use of the run
    (the published corpora are lower-cased already)."""
    text_column: str = "text"
    """The text column of ``.csv``/``.jsonl`` splits and ``hf:`` datasets."""
    label_column: str = "label"
    """The label column of tables and ``hf:`` datasets; a table without it is unlabeled."""
    train_split: str = "train"
    """The ``hf:`` dataset split used as train."""
    valid_split: str | None = None
    """The ``hf:`` dataset split used as valid; None takes the first of validation, valid, dev."""
    test_split: str = "test"
    """The ``hf:`` dataset split used as test."""
    batch_split: Literal["reshuffle", "fixed", "by-label"] = "reshuffle"
    """How training sentences are grouped into batches (docs/data.md): ``reshuffle`` re-splits
    every epoch (``padded``; ``bucket`` batches are fixed same-length chunks anyway), ``fixed`` splits
    once at random and keeps the batches, ``by-label`` keeps fixed batches of one label each.
    The order of the batches is shuffled every epoch in all three."""
    bucket_order: Literal["random", "argsort"] = "random"
    """Which same-length sentences share a ``bucket`` (with ``batch_split = "reshuffle"``): ``random``
    draws them from the seed; ``argsort`` groups them as the reference programs' length sort does."""
    batch_schedule: str = ""
    """A JSON file fixing each epoch's order of the training batches per seed (:mod:`textvae.data.schedule`),
    e.g. the order a reference program trained on; empty: a shuffle drawn from the seed."""


@dataclass
class ModelConfig:
    kind: Literal["vae", "lstm-lm"] = "vae"
    decoder: str = "lstm"
    """Registered decoder variant: ``lstm`` (He et al. 2019) or ``skip`` (Skip-VAE: z also feeds the
    vocabulary projection; docs/methods/skip-vae.md)."""
    embed_dim: int = ranged(512, ge=1)
    enc_hidden: int = ranged(1024, ge=1)
    dec_hidden: int = ranged(1024, ge=1)
    latent_dim: int = ranged(32, ge=1)
    dec_dropout_in: float = ranged(0.5, ge=0, lt=1)
    dec_dropout_out: float = ranged(0.5, ge=0, lt=1)
    dec_word_dropout: float = ranged(0.0, ge=0, lt=1)
    """Training-time probability of hiding a decoder input word (its whole embedding set to zero, not
    rescaled; ``<s>`` always kept), as Bowman et al. (2016): with less of the history to read, the
    decoder leans on z (docs/model.md)."""
    dec_freeze_last_word: bool = False
    """Never update the decoder's embedding of the vocabulary's last word, as the reference programs'
    decoders do (their embedding is built with ``padding_idx=-1``). Off by default: the last word is an
    ordinary word; on, textvae's updates match the reference's to rounding (docs/parity.md)."""
    init: Literal["he2019", "pytorch"] = "he2019"
    """``he2019``: U(-0.01, 0.01) weights, U(-0.1, 0.1) embeddings; ``pytorch``: library defaults."""
    encoder_init: Literal["he2019", "pytorch"] | None = None
    """Encoder-only override of ``init``: the BN-VAE and DU-VAE reference encoders keep PyTorch's
    defaults (docs/methods/batchnorm.md); with He init their posterior means start with a batch variance
    below BatchNorm's eps, so the KL floor does not hold early in training."""


@dataclass
class TrainConfig:
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = ranged(1.0, gt=0)
    prior_optimizer: Literal["same", "adam"] = "same"
    """``adam``: a learned prior's parameters (the decoupled flow) get their own Adam optimiser with
    ``prior_lr``; SGD at lr 1 destabilises the flow. Halved with the main lr at each decay."""
    prior_lr: float = ranged(1e-3, gt=0)
    momentum: float = ranged(0.0, ge=0, lt=1)
    clip_grad: float = ranged(5.0, ge=0)
    """Gradient-norm clip (0: none)."""
    clip_scope: Literal["global", "per-module"] = "global"
    """``global``: one norm over encoder, decoder and prior, as He et al.; ``per-module``: each of them
    clipped to ``clip_grad`` on its own (as separate optimisers with their own clipping would)."""
    epochs: int = ranged(100, ge=1)
    decay_epoch: int = ranged(5, ge=1)
    """Bad validation epochs before the learning rate is halved (and the best checkpoint reloaded)."""
    lr_decay: float = ranged(0.5, gt=0, le=1)
    max_decay: int = ranged(5, ge=1)
    load_best_epoch: int = ranged(15, ge=0)
    """Decays happen only from this epoch on."""
    device: str = "auto"
    amp: Literal["off", "bf16", "fp16"] = "off"
    """Mixed precision for the training step. ``bf16``: bfloat16 autocast, products and LSTMs in
    bfloat16, softmax, loss and weights in float32 (CUDA from Ampere on; CPU only with AVX512-BF16
    or AMX, see eval/bench_train.py). ``fp16``: float16 autocast with a gradient scaler, for GPUs
    without fast bfloat16 (see docs/gpu.md). The booleans of older configs still load: true is
    ``bf16``, false ``off``."""
    deterministic: bool = False
    """Bitwise-reproducible training on GPU: deterministic algorithms only (an op without one is an
    error), cuDNN deterministic and not benchmarking, CUBLAS_WORKSPACE_CONFIG=:4096:8. Slower."""
    diagnostics: bool = True
    """Per-epoch validation MI, AU and per-dimension KL in the metrics log."""
    progress: bool = True
    """Progress bars (on a terminal only) and per-epoch lines."""
    tensorboard: bool = True
    """TensorBoard event files in the run folder, when the ``tensorboard`` package is installed."""
    callbacks: list[str] = field(default_factory=list)
    """The user's :class:`textvae.training.Callback` classes, ``"package.module:ClassName"``, built
    without arguments and run after the trainer's own (docs/extending.md#callbacks)."""


@dataclass
class EvalConfig:
    iw_samples: int = ranged(500, ge=1)
    max_tokens: int | None = ranged(None, ge=1)
    """Memory budget for one IW forward pass: sentences x samples x tokens per chunk. None: 200,000 on
    CPU (a cache-friendly size), sized from free memory on a GPU (docs/gpu.md); a number caps it anywhere."""
    mi_estimator: Literal["whole-set", "per-batch"] = "whole-set"
    au_threshold: float = ranged(0.01, ge=0)
    precision: Literal["float32", "bfloat16"] = "float32"
    """IW-NLL decoder matrix products in bfloat16 autocast: 2.7-3x the float32 speed on AVX512-BF16 CPUs;
    sums and the log-sum-exp stay float32+ (eval/bench_eval.py measures the difference)."""
    scale_reading: Literal["scaled-posterior", "scaled-prior"] = "scaled-posterior"
    """For a model that decodes rescaled latents (Scale-VAE), which generative model is scored and
    sampled (docs/methods/scale-vae.md). ``scaled-posterior``: p(z) = N(0, I), the decoder applied to z,
    q(z|x) the scaled posterior N(f * mu, sigma^2). ``scaled-prior``: p(z) = N(0, diag f^2) with the
    decoder on z, i.e. q(z|x) = N(mu, sigma^2 / f^2) under N(0, I). Other models ignore it."""
    split: Literal["train", "valid", "test"] = "test"
    limit: int | None = ranged(None, ge=1)
    """Evaluate only the first N sentences of the split (quick studies; reported in results.json)."""
    latent_clutter: bool = False
    """Also score how well the split's posterior means separate its labels (a labeled corpus, e.g. the
    synthetic one's mixture components): ``knn_accuracy`` (15-NN, 5-fold) and ``silhouette`` in
    results.json (:mod:`textvae.latent_metrics.clutter`)."""


@dataclass
class RunConfig:
    name: str = "run"
    seed: int = ranged(783435, ge=0, lt=2**63)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    prior: dict[str, Any] = field(default_factory=lambda: {"name": "standard-normal"})
    """``{"name": ..., **params}``; resolution checks the params against the prior's config class and
    fills in its defaults."""
    strategies: dict[str, Any] = field(default_factory=lambda: {"vae": {}})
    """Ordered stack ``{strategy-name: params}``. As read, each params is a plain table; resolution
    (:func:`textvae.resolution.resolve_config`) replaces it by the strategy's typed config, built
    once and handed to the strategy itself."""
    procedure: dict[str, Any] = field(default_factory=lambda: {"name": "default"})
    """How a batch becomes updates: ``{"name": ..., **params}`` (``default``, ``aggressive``); resolution
    checks the params against the procedure's config class and fills in its defaults."""
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> "RunConfig":
        """Check ``d`` against the schema: keys, types, ranges and the rules between keys.

        The strategy and prior parameters are checked by :func:`textvae.resolution.resolve_config`
        (which every entry point that trains or loads a model runs first)."""
        require_table(d, where)
        cfg = from_dict(cls, upgrade_values(without_run_format(d, where)), where)
        validate(cfg, where)
        return cfg

    @classmethod
    def from_saved(cls, d: dict[str, Any], where: str = "config") -> "RunConfig":
        """A config textvae wrote into a run folder or checkpoint, perhaps in an older version:
        keys textvae has since retired are dropped, everything else is checked as usual."""
        require_table(d, where)
        d = without_run_format(d, where)
        d = {section: {k: v for k, v in value.items() if k not in RETIRED_KEYS.get(section, ())}
             if isinstance(value, dict) else value for section, value in d.items()}
        return cls.from_dict(d, where)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        """The config.json of a run folder."""
        path = Path(path)
        return cls.from_saved(read_mapping(path), where=str(path))


EXECUTION_KEYS = ("train.progress", "train.device", "train.tensorboard", "train.callbacks", "eval.max_tokens")
"""Keys that change how a run executes or what it displays, never its numbers: runs differing only in
these are the same experiment (a sweep resumes them, a report averages them)."""


RETIRED_KEYS: dict[str, tuple[str, ...]] = {"eval": ("batch_size",)}
"""Keys older run folders hold that textvae no longer has (``eval.batch_size`` was never read:
evaluation batches follow ``data.batch_size``, as in the reference code)."""


LEGACY_VALUES: dict[tuple[str, str], dict[Any, Any]] = {("train", "amp"): {True: "bf16", False: "off"}}
"""Values an older textvae accepted for a key whose type has since widened: ``train.amp`` was a
bool meaning bfloat16 before float16 joined it."""


RUN_FORMAT = 1
"""A run's config.json carries ``"format": RUN_FORMAT`` (written by :mod:`textvae.rundir`): the
run-folder format. A config.json without it was written before the marker existed (see
``RunDir.run_config_problem``); one of a later format is a newer textvae's run, which this one reads
but never replaces."""


def without_run_format(d: dict[str, Any], where: str) -> dict[str, Any]:
    """``d`` without the run-folder ``format`` marker a run's config.json carries (so that a run's
    config.json is also a config ``textvae train`` reads); a marker of a later format is refused."""
    if "format" not in d:
        return d
    check_format(d["format"], RUN_FORMAT, Path(where), "run", ConfigError, use="read or replace")
    return {k: v for k, v in d.items() if k != "format"}


def require_table(d: Any, where: str) -> None:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a table of keys (a JSON object) at the top level, got {_kind(d)}")


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "null"}.get(type(value), type(value).__name__)


def upgrade_values(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with legacy values replaced by what they meant (configs, recipes, saved runs alike)."""
    out = dict(d)
    for (section, key), table in LEGACY_VALUES.items():
        value = out.get(section, {}).get(key) if isinstance(out.get(section), dict) else None
        if isinstance(value, bool) and value in table:
            out[section] = {**out[section], key: table[value]}
    return out


def read_mapping(path: Path) -> dict[str, Any]:
    """Read a TOML or JSON file into a dict, with a one-line error naming the file and line."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        lineno = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"{path}:{lineno}: not UTF-8 text") from None
    try:
        mapping = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    require_table(mapping, str(path))
    return mapping


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
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key, where)
            except ConfigError as e:
                # a list that fails inside a list arm: its element's error names what is wrong
                if isinstance(value, (list, tuple)) and typing.get_origin(arg) in (list, tuple):
                    errors.append(e)
        raise errors[0] if errors else bad
    if origin in (dict, list, tuple):
        expected = {dict: dict, list: (list, tuple), tuple: (list, tuple)}[origin]
        if not isinstance(value, expected):
            raise bad
        if origin is dict:
            return value
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis and len(args) != len(value):
            raise bad
        items = args[:1] * len(value) if origin is list or args[-1:] == (Ellipsis,) else args
        if not items:
            return list(value)
        return [coerce(v, item, f"{key}[{i}]", where) for i, (v, item) in enumerate(zip(value, items))]
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
        if isinstance(value, int) and abs(value) > FLOAT32_MAX:
            raise ConfigError(f"{where}: key '{key}' must be a finite number within float32's range "
                              f"(|x| <= {FLOAT32_MAX:.4g}), got {value!r}")
        value = float(value)
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            raise ConfigError(f"{where}: key '{key}' must be a finite number within float32's range "
                              f"(|x| <= {FLOAT32_MAX:.4g}), got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        if not -INT64_LIMIT <= value < INT64_LIMIT:
            raise ConfigError(f"{where}: key '{key}' must fit a 64-bit integer (|x| < 2**63), got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise TypeError(f"unsupported config annotation {tp!r} for {key}")


def from_dict(cls: type, d: dict[str, Any], where: str = "config", prefix: str = ""):
    """Build dataclass ``cls`` from ``d``; unknown keys, wrong types and values outside a field's
    :func:`ranged` bounds raise :class:`ConfigError` naming the dotted key."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: '{prefix.rstrip('.') or 'config'}' must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in d.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown key '{prefix}{key}'" + suggest(key, fields))
        value = coerce(value, hints[key], prefix + key, where)
        bounds = fields[key].metadata.get("range")
        if bounds is not None and value is not None and not bounds.holds(value):
            raise ConfigError(f"{where}: key '{prefix}{key}' must be {bounds}, got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def validate(cfg: RunConfig, where: str) -> None:
    """The rules between keys that need no registry."""
    if not cfg.strategies:
        raise ConfigError(f"{where}: 'strategies' is empty; use {{vae = {{}}}} for a plain VAE")
    for name, params in cfg.strategies.items():
        if not (isinstance(params, dict) or dataclasses.is_dataclass(params)):
            raise ConfigError(f"{where}: key 'strategies.{name}' expects a table of parameters, got {params!r}")
    name = cfg.prior.get("name")
    if name is None:
        raise ConfigError(f"{where}: key 'prior.name' is missing")
    if not isinstance(name, str):
        raise ConfigError(f"{where}: key 'prior.name' expects str, got {name!r}")
    if cfg.model.kind == "lstm-lm" and cfg.model.decoder != "lstm":
        raise ConfigError(f"{where}: model.decoder '{cfg.model.decoder}' feeds z to the decoder but "
                          f"model.kind 'lstm-lm' has no latent variable; use model.decoder = 'lstm'")
    if cfg.model.kind == "lstm-lm" and list(cfg.strategies) != ["vae"]:
        raise ConfigError(f"{where}: model.kind 'lstm-lm' has no latent variable; strategies must be {{vae = {{}}}}")
    procedure = cfg.procedure.get("name", "default")
    if not isinstance(procedure, str):
        raise ConfigError(f"{where}: procedure.name must be one procedure name (a run has one procedure), "
                          f"got {procedure!r}")
    if cfg.model.kind == "lstm-lm" and procedure != "default":
        raise ConfigError(f"{where}: procedure.name '{procedure}' trains an inference network; model.kind 'lstm-lm' "
                          "has none")
    if cfg.data.min_batch_size > cfg.data.batch_size:
        raise ConfigError(f"{where}: key 'data.min_batch_size' ({cfg.data.min_batch_size}) must be <= "
                          f"data.batch_size ({cfg.data.batch_size}): every training batch would be skipped")
    if cfg.data.bucket_order == "argsort" and (cfg.data.batching, cfg.data.batch_split) != ("bucket", "reshuffle"):
        raise ConfigError(f"{where}: key 'data.bucket_order' 'argsort' groups same-length buckets; it needs "
                          f"data.batching = 'bucket' and data.batch_split = 'reshuffle' (got "
                          f"'{cfg.data.batching}', '{cfg.data.batch_split}')")
    if cfg.data.batch_schedule and (cfg.data.batching, cfg.data.batch_split) == ("padded", "reshuffle"):
        raise ConfigError(f"{where}: key 'data.batch_schedule' orders batches that are the same every epoch; "
                          "padded batches with data.batch_split = 'reshuffle' are cut anew each epoch")


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


def check_override_key(path: list[str], item: str) -> None:
    """``path`` names a section and key of :class:`RunConfig` (the tables of strategies, prior and
    procedure are free-form here; their parameters are checked against the registries later)."""
    key = ".".join(path)
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    hints = typing.get_type_hints(RunConfig)
    sections = [n for n in fields if dataclasses.is_dataclass(hints[n]) or typing.get_origin(hints[n]) is dict]
    if path[0] not in fields:
        raise ConfigError(f"--set {item}: unknown section or key '{key}'" + (
            suggest(path[0], fields) or f"; sections: {', '.join(sections)}; top-level keys: "
            + ", ".join(n for n in fields if n not in sections)))
    tp = hints[path[0]]
    if not dataclasses.is_dataclass(tp):
        if len(path) > 1 and path[0] not in sections:
            raise ConfigError(f"--set {item}: '{path[0]}' is a key, not a section")
        return
    keys = [f.name for f in dataclasses.fields(tp)]
    if len(path) == 1:
        raise ConfigError(f"--set {item}: '{key}' is a section; give {key}.KEY (keys: {', '.join(keys)})")
    if path[1] not in keys:
        raise ConfigError(f"--set {item}: unknown key '{key}'"
                          + (suggest(path[1], keys) or f"; {path[0]} keys: {', '.join(keys)}"))
    if len(path) > 2:
        raise ConfigError(f"--set {item}: '{path[0]}.{path[1]}' is a key, not a section")


def apply_overrides(d: dict[str, Any], overrides: Iterable[str],
                    param_names: Callable[[str], Iterable[str]] | None = None) -> dict[str, Any]:
    """Apply ``--set`` overrides to a config dict (a copy; ``d`` is left alone).

    ``strategy.KEY=V`` is a shorthand for the one strategy in the stack whose config has ``KEY``;
    ``param_names(strategy)`` says which keys a strategy has (the registry's, which this layer
    cannot import: :func:`textvae.resolution.apply_overrides` passes it).
    """
    d = json.loads(json.dumps(d))
    for item in overrides:
        path, value = parse_override(item)
        if path[0] == "strategy" and len(path) == 2:
            if param_names is None:
                raise ConfigError(f"--set {item}: the 'strategy.KEY' shorthand needs the strategy registry; "
                                  "write strategies.NAME.KEY")
            owners = [n for n in d.get("strategies", {}) if path[1] in param_names(n)]
            if len(owners) != 1:
                stack = ", ".join(d.get("strategies", {}))
                raise ConfigError(
                    f"--set {item}: "
                    + ("no" if not owners else "more than one")
                    + f" strategy in the stack [{stack}] has a parameter '{path[1]}'"
                )
            path = ["strategies", owners[0], path[1]]
        check_override_key(path, item)
        node = d
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: '{part}' is not a table")
        node[path[-1]] = value
    return d
