"""The README's command blocks, executed in the order shown, as a newcomer on a fresh machine would.

A line of several commands (``pip install ... && textvae recipe demo bn-vae``) is split at ``&&``:
the install needs the network and is skipped (the suite runs where textvae is installed), the
textvae commands after it run, so that every later block is checked in the state the README's own
first command leaves behind (its run folder included). Commands whose comment says they need the
network or the user's own copy of a corpus (``# network``, ``# your copy``, ``# needs ...``) are
skipped with that reason. Training, evaluation and probe
commands get toy-size options appended (``--set``, ``--limit``, ``--subsets``: forms the README shows)
so that the whole path runs in seconds; everything else runs as written.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from textvae.cli.main import app

README = Path(__file__).resolve().parents[1] / "README.md"
SKIP_MARKERS = {"network": "needs the network", "your copy": "needs the user's copy of a corpus",
                "needs": "needs a corpus an earlier skipped command fetches"}
TOY_SETS = ["model.embed_dim=8", "model.enc_hidden=8", "model.dec_hidden=8", "model.latent_dim=2",
            "train.epochs=1", "data.train_limit=200", "eval.iw_samples=2", "eval.limit=50"]
TOY_OPTIONS = {"eval": ["--limit", "50", "--iw-samples", "2"], "probe": ["--subsets", "100,500"],
               "sweep": ["--dry-run"]}


def readme_commands() -> list[tuple[str, list[str], str]]:
    """(line, argv, comment) for every command of every ```bash block, in order; the commands joined
    by ``&&`` on one line each get an entry, the first with the line's comment, the rest with
    "after: " and the first command."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S):
        for line in block.splitlines():
            if not line.strip():
                continue
            words = shlex.split(line, comments=True)
            comment = line[len(line.split("  #")[0]):].strip().lstrip("#").strip() if "  #" in line else ""
            parts = [[]]
            for word in words:
                if word == "&&":
                    parts.append([])
                else:
                    parts[-1].append(word)
            out.append((line, parts[0], comment))
            out += [(line, argv, "after: " + " ".join(parts[0])) for argv in parts[1:]]
    return out


COMMANDS = readme_commands()


def toy(argv: list[str]) -> list[str]:
    command = argv[0]
    if command == "recipe" and "--list" not in argv:
        return argv + [item for s in TOY_SETS for item in ("--set", s)]
    return argv + TOY_OPTIONS.get(command, [])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("newcomer")


def test_the_readme_shows_the_demo_path_first():
    textvae = [argv[1:] for _, argv, _ in COMMANDS if argv and argv[0] == "textvae"]
    assert textvae[0] == ["recipe", "demo", "bn-vae"]  # the README's first command, after the install
    assert textvae[1] == ["recipe", "--list"] and textvae[2][:3] == ["recipe", "demo", "bn-vae"]  # the tour
    for line, argv, comment in COMMANDS:  # every command that needs the network says so
        if argv[0] == "pip" or argv[:3] == ["textvae", "data", "download"]:
            assert comment.startswith("network"), line


def test_the_tour_does_not_train_over_the_first_commands_run():
    first = next(argv for _, argv, comment in COMMANDS if argv[0] == "textvae" and comment.startswith("after: pip"))
    trained = [argv for _, argv, _ in COMMANDS if argv[:2] == ["textvae", "recipe"] and "--list" not in argv
               and "--dry-run" not in argv]
    assert trained[0] == first and first not in trained[1:]  # the commands themselves run in test_readme_command


@pytest.mark.parametrize("line, argv, comment", COMMANDS, ids=[" ".join(argv) for _, argv, _ in COMMANDS])
def test_readme_command(line, argv, comment, workdir, monkeypatch):
    reason = next((why for marker, why in SKIP_MARKERS.items() if comment.startswith(marker)), None)
    if argv[0] != "textvae" and comment.startswith("after: "):
        reason = "the test suite itself" if argv[:3] == ["python", "-m", "pytest"] else "not a textvae command"
    if reason:
        pytest.skip(reason)
    assert argv[0] == "textvae", f"only textvae commands run here: {line}"
    monkeypatch.chdir(workdir)
    argv, redirect = argv[1:], None
    if ">" in argv:
        argv, redirect = argv[:argv.index(">")], argv[argv.index(">") + 1]
    result = CliRunner().invoke(app, toy(argv))
    assert result.exit_code == 0, f"{line}\n{result.output}"
    assert "Traceback" not in result.output
    if redirect:
        Path(redirect).write_text(result.stdout)
