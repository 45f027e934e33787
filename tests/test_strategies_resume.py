"""``textvae train --resume`` for every registered strategy: an interrupted run resumed from its last
checkpoint ends exactly like the uninterrupted one (metrics log, strategy scalars and test results)."""

from __future__ import annotations

import json

import pytest

from textvae.strategies import STRATEGIES
from textvae.training import StopAfter, train


def metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("seconds")
    return lines


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_interrupted_and_resumed_run_matches_the_straight_run(name, tiny_corpus, make_config, tmp_path):
    stack = {"kl-annealing": {"kl_start": 0.5, "warm_up": 0.5}} if name != "kl-annealing" else {}
    stack[name] = {}
    cfg = make_config(tiny_corpus, stack, eval={"iw_samples": 2})
    straight = train(cfg, tmp_path / "straight")
    assert train(cfg, tmp_path / "crashed", callbacks=[StopAfter(1)]) == {}
    resumed = train(cfg, tmp_path / "crashed", resume=True)
    assert metrics(tmp_path / "straight") == metrics(tmp_path / "crashed"), name
    assert straight == resumed, name
