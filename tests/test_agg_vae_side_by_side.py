"""eval/agg_vae_side_by_side.py: reading both sides' outputs and the comparison table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from eval import agg_vae_side_by_side

# The shape of a reference text.py stdout: a TEST line during training, a later one after the best
# checkpoint is reloaded, and the local per-epoch timing line.
PEER_LOG = """\
Namespace(dataset='demo', iw_nsamples=100, warm_up=3, kl_start=0.1, aggressive=1, seed=101, jobid=0)
epoch: 0, iter: 0, avg_loss: 78.3594, kl: 0.0000, mi: 0.0044, recon: 78.3594,au 0, time elapsed 14.72s
pre mi:0.0000. cur mi:0.8000
kl weight 0.4000
epoch 0 train seconds 120.5 aggressive 1
VAL --- avg_loss: 60.0000, kl: 2.0000, mi: 0.8000, recon: 58.0000, nll: 60.0000, ppl: 100.0000
7 active units
TEST --- avg_loss: 61.0000, kl: 2.1000, mi: 0.8100, recon: 58.9000, nll: 61.0000, ppl: 101.0000
pre mi:0.8000. cur mi:0.7000
STOP BURNING
kl weight 0.7000
epoch 1 train seconds 110.0 aggressive 0 encoder_steps 300 batches 20
kl weight 1.0000
epoch 2 train seconds 12.0 aggressive 0
TEST --- avg_loss: 59.5000, kl: 3.2500, mi: 1.2500, recon: 56.2500, nll: 59.5000, ppl: 90.0000
5 active units
iw nll computing 00%
iw nll: 58.7500, iw ppl: 85.0000
"""


@pytest.fixture(scope="module")
def side():
    return agg_vae_side_by_side


def test_peer_log_final_numbers_come_after_the_reload(side):
    run = side.parse_peer_log(PEER_LOG)
    assert (run.seed, run.nll, run.kl, run.mi, run.au) == (101, 58.75, 3.25, 1.25, 5)
    assert run.epoch_seconds == [120.5, 110.0, 12.0]
    # epoch 1 switched aggressive mode off at its end, so it was trained aggressively
    assert run.aggressive_epochs == 2
    assert run.extra["inner_steps_per_batch"] == [None, 15.0, None]


def test_peer_log_without_final_numbers_is_refused(side):
    unfinished = PEER_LOG.split("iw nll computing")[0]
    with pytest.raises(ValueError, match="peer_t0.out: not a finished text.py run"):
        side.parse_peer_log(unfinished, "peer_t0.out")


def _fake_run(root: Path, seed: int, nll: float, inner: list[float]) -> Path:
    run = root / f"seed{seed}"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"seed": seed}))
    (run / "results.json").write_text(json.dumps({"nll": nll, "kl": 3.0, "mi": 1.0, "au": 4, "elbo": nll + 1,
                                                   "iw_ppl": 80.0, "mi_estimator": "per-batch", "best_epoch": 3}))
    (run / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": i + 1, "seconds": 10.0 * (i + 1), "procedure": {"inner_steps_per_batch": n}}) + "\n"
        for i, n in enumerate(inner)))
    (run / "eval_test_whole_set.json").write_text(json.dumps({"mi": 2.5}))
    return run


def test_textvae_run_counts_epochs_with_inner_steps(side, tmp_path):
    run = side.read_textvae_run(_fake_run(tmp_path, 7, 58.0, [40.0, 25.5, 0.0]))
    assert (run.seed, run.nll, run.au, run.aggressive_epochs) == (7, 58.0, 4, 2)
    assert run.epoch_seconds == [10.0, 20.0, 30.0]
    assert run.extra["mi_whole_set"] == 2.5


def test_table_reports_both_sides_and_the_difference_in_seed_spread(side, tmp_path):
    peer = [side.parse_peer_log(PEER_LOG.replace("seed=101", f"seed={s}").replace("58.7500", f"{v:.4f}"))
            for s, v in [(101, 58.0), (202, 60.0)]]
    ours = [side.read_textvae_run(_fake_run(tmp_path, s, v, [30.0, 0.0, 0.0])) for s, v in [(101, 61.0), (202, 63.0)]]
    text = side.table(peer + ours)
    assert "| reference | 101 | 58.00 |" in text and "| textvae | 202 | 63.00 |" in text
    # NLL means 59 and 62, both stds sqrt(2): standard error of the difference 1.41 -> 2.1 units
    assert "| nll | 59.000 ± 1.414 | 62.000 ± 1.414 | +3.000 | 2.1 |" in text
    assert side.spread_units([1.0, 1.0], [1.0, 1.0]) == 0.0
    assert math.isinf(side.spread_units([1.0, 1.0], [2.0, 2.0]))


def test_mi_noise_draws_the_switch_off_check_under_several_seeds(side, tiny_corpus, make_config, tmp_path):
    from textvae.training import train

    run = tmp_path / "run"
    train(make_config(tiny_corpus, procedure={"name": "aggressive", "max_inner_steps": 4, "window": 2},
                      train={"epochs": 1}), run, evaluate_test=False)
    draws = side.mi_draws(run, "last", 3)
    assert draws == side.mi_draws(run, "last", 3), "seeded: the replay is deterministic"
    assert len(set(draws)) == 3
