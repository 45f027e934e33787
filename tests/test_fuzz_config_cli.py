"""Property-based fuzzing of the configuration and the command line (issue 30).

Values of every type (integers of any size, floats with inf/nan/1e308/-0.0, strings with unicode,
control characters or nothing, booleans, lists, tables, null) go into every config key — enumerated
from the config dataclasses and the strategy, prior and procedure registries — through a JSON config
file and through ``--set``; numbers and odd paths go into the command line's numeric and path
arguments. Every example must end in exit 0 with a valid resolved config, or exit 2 with exactly one
``error:`` line; never a traceback, never a change outside the command's output folder. Validation
only: ``--dry-run`` where training would follow, a run folder that does not exist where a model
would be loaded, and ``data synthesize`` with its generator replaced by a tiny stand-in.

``TEXTVAE_FUZZ_EXAMPLES`` sets the examples per test (default 100, four tests).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import types
import typing
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from textvae import resolution
from textvae.cli.main import app
from textvae.config import RunConfig
from textvae.data.reader import split_lines
from textvae.priors import PRIORS
from textvae.procedures import PROCEDURES
from textvae.rundir import RunDir
from textvae.strategies import STRATEGIES

EXAMPLES = int(os.environ.get("TEXTVAE_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("TEXTVAE_FUZZ_EXAMPLES"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
runner = CliRunner()


# ---- what is fuzzed ----------------------------------------------------------------------------
def config_keys() -> list[tuple[tuple[str, ...], dict, typing.Any]]:
    """Every config key as (path, the rest of the config it needs, its annotation), from the
    dataclasses and the strategy, prior and procedure registries."""
    keys: list[tuple[tuple[str, ...], dict, typing.Any]] = []

    def fields_of(cls: type, prefix: tuple[str, ...], needs: dict) -> None:
        hints = typing.get_type_hints(cls)
        for g in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[g.name]):
                fields_of(hints[g.name], prefix + (g.name,), needs)
            else:
                keys.append((prefix + (g.name,), needs, hints[g.name]))

    fields_of(RunConfig, (), {})
    for name in STRATEGIES.names():
        fields_of(STRATEGIES.entry(name).config_cls, ("strategies", name), {})
    for section, registry in (("prior", PRIORS), ("procedure", PROCEDURES)):
        keys.append(((section, "name"), {}, typing.Literal[tuple(registry.names())]))
        for name in registry.names():
            fields_of(registry.entry(name).config_cls, (section,), {section: {"name": name}})
    return keys


def plausible(annotation) -> st.SearchStrategy:
    """Values of the key's own type near the useful range, so that valid configs are drawn too."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(plausible(a) for a in args))
    if annotation is type(None):
        return st.none()
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(0, 40)
    if annotation is float:
        return st.floats(0, 2)
    if annotation is str:
        return st.sampled_from(["", "demo", "lstm", "x"])
    return values


KEYS = config_keys()
SPECIAL_FLOATS = [math.inf, -math.inf, math.nan, 1e308, -1e308, -0.0, 0.0, 3.5e38, 5e-324, 1e-45]
SPECIAL_INTS = [0, -1, 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, -(10**30)]
scalars = st.one_of(
    st.integers(),
    st.sampled_from(SPECIAL_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(SPECIAL_FLOATS),
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "\x00",
            "\n",
            "\u2028",
            "é",
            "demo",
            "vae",
            "adam",
            "bf16",
            "lstm",
            "sgd",
            "word",
            "padded",
            "test",
            "\x1b[31m",
        ]
    ),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def toml_literal(value) -> str:
    """``value`` as ``--set`` reads it (a TOML literal; None has none and becomes the bare word)."""
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_literal(v)}" for k, v in value.items()) + "}"


def nest(path: tuple[str, ...], value) -> dict:
    for part in reversed(path):
        value = {part: value}
    return value


def merge(base: dict, delta: dict) -> dict:
    out = dict(base)
    for k, v in delta.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# ---- the sandbox -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A working folder holding what a user might point the command line at."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "notes.txt").write_text("mine")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "user").mkdir()
    (root / "user" / "a.txt").write_text("a")
    (root / "appcfg").mkdir()
    (root / "appcfg" / "config.json").write_text('{"my": "app settings"}')
    run = RunDir(root / "run")
    run.write_config(RunConfig().to_dict())
    run.write_results({"nll": 1.0})
    (root / "input.txt").write_text("the food\u2028was good\nslow\n")
    return root


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def invoke(args: list[str], root: Path, output: Path | None = None):
    """Run the command in ``root``; check the outcome and that nothing outside ``output`` changed."""
    before = snapshot(root)
    try:
        result = runner.invoke(app, args, catch_exceptions=True)
    finally:
        torch.set_num_threads(1)  # --threads is process-wide
    after = snapshot(root)
    def inside(k: str) -> bool:
        if output is None:
            return False
        path = (root / k).resolve()
        return path.is_relative_to(output.resolve()) or output.resolve().is_relative_to(path)

    changed = sorted(
        k for k in set(before) | set(after) if before.get(k, 0) != after.get(k, 0) and not inside(k)
    )
    context = f"{args!r}\n{result.output}\n{result.exception!r}"
    assert changed == [], f"changed outside the output folder: {changed}\n{context}"
    assert result.exit_code in (0, 2), context
    assert "Traceback" not in result.output, context
    if result.exit_code == 2:
        lines = split_lines(result.stderr)  # the package's own definition of a line
        assert len(lines) == 1 and lines[0].startswith("error: "), context
    return result


def resolved(result) -> RunConfig:
    """The config a dry run printed, checked again from scratch."""
    return resolution.from_dict(json.loads(result.stdout))


# ---- the properties ----------------------------------------------------------------------------
def key_and_value(literal: bool = False) -> st.SearchStrategy:
    """A key, and a value of any type or of the key's own (as a ``--set`` literal or raw text)."""

    def value_for(key):
        value = st.one_of(values, plausible(key[2]))
        return value.map(toml_literal) | st.text(max_size=20) if literal else value

    return st.sampled_from(KEYS).flatmap(lambda key: st.tuples(st.just(key), value_for(key)))


@FUZZ
@given(key_value=key_and_value())
def test_any_value_of_any_key_in_a_config_file(sandbox, monkeypatch, key_value):
    monkeypatch.chdir(sandbox)
    (path, needs, _), value = key_value
    config = merge(merge({"name": "fuzz", "data": {"corpus": "demo"}}, needs), nest(path, value))
    cfg = sandbox / "fuzz.json"
    cfg.write_text(json.dumps(config))
    try:
        result = invoke(
            ["train", str(cfg), "--dry-run", "--out", str(sandbox / "new-run")], sandbox
        )
    finally:
        cfg.unlink()
    if result.exit_code == 0:
        resolved(result)


@FUZZ
@given(key_value=key_and_value(literal=True))
def test_any_value_of_any_key_on_the_command_line(sandbox, monkeypatch, key_value):
    monkeypatch.chdir(sandbox)
    (path, needs, _), value = key_value
    sets = [
        f"{'.'.join(p)}={toml_literal(v)}"
        for p, v in ((tuple(path[:1]) + (k,), v) for k, v in needs.get(path[0], {}).items())
    ]
    args = ["recipe", "demo", "vae", "--dry-run", "--out", str(sandbox / "new-run")]
    for item in [*sets, f"{'.'.join(path)}={value}"]:
        args += ["--set", item]
    result = invoke(args, sandbox)
    if result.exit_code == 0:
        resolved(result)


NUMBERS = st.one_of(
    st.integers().map(str),
    st.sampled_from(SPECIAL_INTS).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(SPECIAL_FLOATS).map(str),
    st.sampled_from(["", "-", "1e400", "0x10", "1_000", "٣", "²", " 5", "5 ", "1,2", "nan", "inf"]),
    st.text(max_size=8),
)
NO_RUN = "no-such-run"
NUMERIC = {  # command line -> where the value goes
    "recipe --seed": ["recipe", "demo", "vae", "--dry-run", "--out", "new-run", "--seed", "{}"],
    "--threads": ["--threads", "{}", "recipe", "demo", "vae", "--dry-run", "--out", "new-run"],
    **{
        f"sweep {opt}": [
            "sweep",
            "--dataset",
            "demo",
            "--strategy",
            "vae",
            "--dry-run",
            "--out",
            "sw",
            opt,
            "{}",
        ]
        for opt in ("--seeds", "--cpus-per-run", "--gpus-per-run", "--cpus")
    },
    **{
        f"generate {opt}": ["generate", NO_RUN, opt, "{}"]
        for opt in (
            "-n",
            "--temperature",
            "--top-k",
            "--top-p",
            "--beam-size",
            "--max-length",
            "--seed",
            "--batch-size",
        )
    },
    **{
        f"reconstruct {opt}": ["reconstruct", NO_RUN, "a b", opt, "{}"]
        for opt in ("--temperature", "--seed")
    },
    "interpolate --steps": ["interpolate", NO_RUN, "a", "b", "--steps", "{}"],
    **{
        f"eval {opt}": ["eval", NO_RUN, opt, "{}"]
        for opt in ("--iw-samples", "--max-tokens", "--limit", "--seed")
    },
    **{
        f"synthesize {opt}": ["data", "synthesize", "syn", opt, "{}"]
        for opt in (
            "--seed",
            "--components",
            "--spacing",
            "--component-std",
            "--vocab-size",
            "--length",
            "--weight-scale",
            "--n-train",
            "--n-valid",
            "--n-test",
        )
    },
}


def tiny_synthesis(c):
    """The synthesizer's output shape without its cost: the fuzz checks the command line, not torch."""
    return {
        split: ([" ".join(f"w{i % c.vocab_size}" for i in range(min(c.length, 3)))], [0])
        for split in ("train", "valid", "test")
    }


@FUZZ
@given(command=st.sampled_from(sorted(NUMERIC)), number=NUMBERS)
def test_any_number_in_any_numeric_argument(sandbox, monkeypatch, command, number):
    from textvae.data import synthesize

    monkeypatch.chdir(sandbox)
    monkeypatch.setattr(synthesize, "synthesize", tiny_synthesis)
    args = [a.replace("{}", number) for a in NUMERIC[command]]
    output = sandbox / ("syn" if command.startswith("synthesize") else "sw")
    try:
        invoke(args, sandbox, output)
    finally:
        shutil.rmtree(output, ignore_errors=True)


PATHS = st.one_of(
    st.sampled_from(
        [
            "",
            ".",
            "..",
            "/",
            "~",
            "/proc/nope/x",
            "notes.txt",
            "notes.txt/below",
            "user",
            "appcfg",
            "run",
            ".git",
            "input.txt",
            "a\x00b",
            "x" * 300,
            "/".join(["d"] * 60),
            "new/dir/out",
            "-",
            "--help",
            "\u2028",
            " ",
        ]
    ),
    st.text(max_size=16),
)
PATH_COMMANDS = {
    "recipe --out": (["recipe", "demo", "vae", "--dry-run", "--out", "{}"], None),
    "recipe --out --overwrite": (
        ["recipe", "demo", "vae", "--dry-run", "--overwrite", "--out", "{}"],
        None,
    ),
    "train CONFIG": (["train", "{}", "--dry-run", "--out", "new-run"], None),
    "train --resume": (["train", "--resume", "{}", "--dry-run"], None),
    "reconstruct --input": (["reconstruct", NO_RUN, "--input", "{}"], None),
    "data prepare --from": (
        ["data", "prepare", "yelp", "--from", "{}", "--data-dir", "dataroot"],
        None,
    ),
    "data prepare --data-dir": (
        ["data", "prepare", "yelp", "--from", "user", "--data-dir", "{}"],
        None,
    ),
    "data synthesize OUT": (["data", "synthesize", "{}"], "{}"),
    "sweep --out": (
        ["sweep", "--dataset", "demo", "--strategy", "vae", "--dry-run", "--out", "{}"],
        None,
    ),
    "generate --out": (["generate", NO_RUN, "--out", "{}"], None),
}


@FUZZ
@given(command=st.sampled_from(sorted(PATH_COMMANDS)), path=PATHS)
def test_any_path_in_any_path_argument(sandbox, monkeypatch, command, path):
    from textvae.data import synthesize

    monkeypatch.chdir(sandbox)
    monkeypatch.setattr(synthesize, "synthesize", tiny_synthesis)
    template, output = PATH_COMMANDS[command]
    args = [a.replace("{}", path) for a in template]
    out = None
    if output is not None and path and "\x00" not in path:
        out = sandbox / path
    before = set(os.listdir(sandbox))
    try:
        invoke(args, sandbox, out)
    finally:
        for name in set(os.listdir(sandbox)) - before:  # what the command made (its output folder)
            shutil.rmtree(sandbox / name, ignore_errors=True)
