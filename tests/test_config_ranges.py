"""Every numeric config key has a range, checked when the config is resolved, before any work:
a bad value is one line naming the key, exit code 2, no traceback, no file written."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from typer.testing import CliRunner

from textvae.cli.main import app
from textvae.config import RunConfig
from textvae.errors import ConfigError

runner = CliRunner()


def numeric_keys(cls: type = RunConfig, prefix: str = "") -> dict[str, dataclasses.Field]:
    """Dotted key -> field, for every int/float (or optional int/float) key of the schema."""
    out = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.update(numeric_keys(tp, f"{prefix}{f.name}."))
        elif {a for a in typing.get_args(tp) or (tp,) if a is not type(None)} & {int, float} \
                and bool not in (typing.get_args(tp) or (tp,)):
            out[prefix + f.name] = f
    return out


def bad_values(field: dataclasses.Field) -> list[str]:
    """TOML literals just outside the field's range, on each bounded side."""
    r = field.metadata["range"]
    step = 1
    values = []
    if r.ge is not None:
        values.append(r.ge - step)
    if r.gt is not None:
        values.append(r.gt)
    if r.le is not None:
        values.append(r.le + step)
    if r.lt is not None:
        values.append(r.lt)
    return [str(v) for v in values if abs(v) < 2**63]


KEYS = numeric_keys()
CASES = [(key, value) for key, f in KEYS.items() for value in bad_values(f)] + [
    # the cases found by hand in issue 13
    ("data.batch_size", "-3"), ("model.embed_dim", "-1"), ("model.dec_dropout_in", "1.5"),
    ("eval.iw_samples", "0"), ("train.epochs", "0"), ("train.epochs", "-1"), ("model.latent_dim", "0"),
    ("data.max_length", "0"), ("train.lr", "nan"), ("train.clip_grad", "-inf"),
]


def test_every_numeric_key_has_a_range():
    assert len(KEYS) >= 25
    missing = [key for key, f in KEYS.items() if "range" not in f.metadata]
    assert missing == []


def test_defaults_are_in_range():
    defaults = RunConfig().to_dict()
    for key, f in KEYS.items():
        section, _, name = key.rpartition(".")
        value = defaults[section][name] if section else defaults[name]
        assert value is None or f.metadata["range"].holds(value), key


@pytest.mark.parametrize("key, value", CASES)
def test_out_of_range_value_is_refused_before_any_work(key, value, tmp_path, monkeypatch):
    data_root = tmp_path / "data"
    data_root.mkdir()
    monkeypatch.setenv("TEXTVAE_DATA", str(data_root))
    out = tmp_path / "run"
    for args in (["recipe", "demo", "vae", "--set", f"{key}={value}", "--out", str(out)],
                 ["train", str(config_file(tmp_path, key, value)), "--out", str(out)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and f"'{key}'" in errors[0], result.output
        assert not out.exists() and list(data_root.iterdir()) == []


def config_file(tmp_path, key: str, value: str):
    section, _, name = key.rpartition(".")
    path = tmp_path / "bad.toml"
    path.write_text((f"[{section}]\n" if section else "") + f"{name} = {value}\n")
    return path


def test_range_message_states_the_bounds():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"model": {"dec_dropout_out": 1.0}}, where="x.toml")
    assert str(err.value) == "x.toml: key 'model.dec_dropout_out' must be >= 0 and < 1, got 1.0"
    with pytest.raises(ConfigError, match="key 'train.lr' must be a finite number within float32's range .*, "
                                          "got nan"):
        RunConfig.from_dict({"train": {"lr": float("nan")}})


def test_min_batch_size_above_batch_size_is_refused():
    with pytest.raises(ConfigError, match="'data.min_batch_size' \\(16\\) must be <= data.batch_size \\(8\\)"):
        RunConfig.from_dict({"data": {"batch_size": 8, "min_batch_size": 16}})


@pytest.mark.parametrize("other", [{"batching": "padded"}, {"batch_split": "fixed"}])
def test_argsort_bucket_order_needs_reshuffled_buckets(other):
    with pytest.raises(ConfigError, match="'data.bucket_order' 'argsort' groups same-length buckets"):
        RunConfig.from_dict({"data": {"bucket_order": "argsort", **other}})
    with pytest.raises(ConfigError, match="data.bucket_order"):
        RunConfig.from_dict({"data": {"bucket_order": "sorted"}})


def registered_ranges():
    """(registry, name, key, bad value) for every ranged parameter of every strategy and prior."""
    from textvae.priors import PRIORS
    from textvae.strategies import STRATEGIES

    cases = []
    for registry in (STRATEGIES, PRIORS):
        for name in registry.names():
            for f in dataclasses.fields(registry.entry(name).config_cls):
                if "range" in f.metadata:
                    cases += [(registry, name, f.name, float(v) if "." in v else int(v)) for v in bad_values(f)]
    return cases


def test_strategy_and_prior_parameters_are_range_checked_at_resolution():
    from textvae import resolution

    cases = registered_ranges()
    assert {name for _, name, _, _ in cases} >= {"kl-annealing", "beta-vae", "cyclical", "factor-vae", "decoupled",
                                                 "scale-vae", "bn-vae", "du-vae", "free-bits", "delta-vae",
                                                 "infovae-mmd", "encoder-pretraining"}
    for registry, name, key, value in cases:
        if registry.kind == "strategy":
            d, dotted = {"strategies": {name: {key: value}}}, f"strategies.{name}.{key}"
        else:
            d, dotted = {"prior": {"name": name, key: value}}, f"prior.{key}"
        with pytest.raises(ConfigError, match=f"^x.toml: key '{dotted}' must be "):
            resolution.from_dict(d, where="x.toml")
