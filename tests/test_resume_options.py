"""Exact resume for the options added with Scale-VAE's study: its factor modes and centring,
per-module gradient clipping, the batch split modes and the scaled-prior reading."""

from __future__ import annotations

import json

import pytest

from textvae.training import StopAfter, train


# ---- exact resume for every new option ----------------------------------------------------------------------
def metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("seconds")
    return lines


RESUME_CASES = {
    "epoch-std+centre": ({"scale-vae": {"f_bar": "epoch-std", "centre": True}}, {}),
    "sample-std+centre": ({"scale-vae": {"f_bar": "sample-std", "centre": True, "sample_size": 5}}, {}),
    "median": ({"scale-vae": {"f_bar": "batch-median"}}, {}),
    "ema": ({"scale-vae": {"f_bar": "batch-ema"}}, {}),
    "per-module": ({"scale-vae": {}}, {"train": {"clip_scope": "per-module"}}),
    "fixed": ({"scale-vae": {}}, {"data": {"batching": "padded", "batch_split": "fixed"}}),
    "by-label": ({"bn-vae": {}}, {"data": {"batching": "padded", "batch_split": "by-label", "min_batch_size": 2}}),
    "scaled-prior": ({"scale-vae": {"centre": True}}, {"eval": {"scale_reading": "scaled-prior", "iw_samples": 2}}),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_interrupted_and_resumed_run_matches_the_straight_run(case, tiny_corpus, make_config, tmp_path):
    stack, sections = RESUME_CASES[case]
    cfg = make_config(tiny_corpus, stack, **{"train": {"epochs": 3, "progress": False}, **sections})
    straight = train(cfg, tmp_path / "straight")
    assert train(cfg, tmp_path / "crashed", callbacks=[StopAfter(1)]) == {}
    resumed = train(cfg, tmp_path / "crashed", resume=True)
    assert metrics(tmp_path / "straight") == metrics(tmp_path / "crashed"), case
    assert straight == resumed, case
