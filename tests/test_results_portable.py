"""Committed records under eval/results travel: no absolute or machine paths in them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from textvae.sweeps.manifest import Entry, Manifest, portable_command, portable_path

RESULTS = Path(__file__).resolve().parents[1] / "eval" / "results"
TEXT = {".json", ".jsonl", ".md", ".out", ".txt", ".csv", ".tex", ".toml", ".log"}
# A path from the file-system root (not the tail of a relative path, a URL or "~/"), or a drive letter.
ABSOLUTE = re.compile(r"(?<![\w.~:/-])/(?:work|home|tmp|root|Users|mnt|scratch|opt|usr|var|private|srv|media|data)/"
                      r"|\b[A-Z]:\\\\")


def absolute_paths(text: str) -> list[str]:
    return [text[max(0, m.start() - 20): m.end() + 30].replace("\n", " ") for m in ABSOLUTE.finditer(text)]


def test_the_pattern_finds_machine_paths_and_spares_urls_and_relative_ones():
    assert absolute_paths('"run_dir": "/work/main/eval/results/x"') and absolute_paths("--data-dir /tmp/h12/data")
    assert absolute_paths("at /root/.pyenv/versions/3.11/lib") and absolute_paths(r'"C:\\Users\\me"')
    assert not absolute_paths("https://github.com/jxhe/vae-lagging-encoder/tmp/x eval/results/work/y ~/home/z")


def test_committed_records_hold_no_absolute_paths():
    files = [p for p in RESULTS.rglob("*") if p.is_file() and p.suffix in TEXT]
    assert files, RESULTS
    found = {str(p.relative_to(RESULTS)): hits[0] for p in files
             if (hits := absolute_paths(p.read_text(encoding="utf-8", errors="replace")))}
    assert not found, f"machine paths in {len(found)} records, e.g. {dict(list(found.items())[:5])}"


def test_portable_path_and_command(tmp_path):
    assert portable_path(tmp_path / "runs" / "a", tmp_path) == "runs/a"
    assert portable_path("/elsewhere/data", tmp_path) == ".../data"
    command = f"textvae sweep s.toml --out {tmp_path}/sw --data-dir=/x/data --set 'a=\"b c\"'"
    assert portable_command(command, tmp_path) == "textvae sweep s.toml --out sw --data-dir=.../data --set 'a=\"b c\"'"
    assert portable_command("unbalanced 'quote", tmp_path) == "unbalanced 'quote"


def test_manifest_names_run_folders_relative_to_the_sweep(tmp_path):
    import json

    sweep = tmp_path / "sweep"
    manifest = Manifest(sweep, {}, [Entry("demo/vae/seed1", str(sweep / "runs" / "demo" / "vae" / "seed1"))],
                        f"textvae sweep s.toml --out {sweep}")
    manifest.save()
    saved = json.loads((sweep / "manifest.json").read_text())
    assert saved["points"][0]["run_dir"] == "runs/demo/vae/seed1"
    assert str(tmp_path) not in json.dumps(saved)
    # in memory the engine still has the absolute folder it runs in
    assert Path(manifest.entries["demo/vae/seed1"].run_dir).is_absolute()


@pytest.mark.parametrize("name", ["demo_agg_sa_skip_mae_pretrain", "scale_vae_study", "latent_clutter"])
def test_results_folders_are_named_by_what_they_hold(name):
    assert (RESULTS / name).is_dir()
    assert not any(p.name.startswith("issue") and p.is_dir() for p in RESULTS.iterdir())
