"""The options through which a Table-1 recipe follows the code behind its published row
(docs/methods/*.md, "Which code the row follows"), and the recipes' choice among them."""

from __future__ import annotations

import json
import math

import pytest
import torch

from textvae import recipes
from textvae.errors import ConfigError
from textvae.strategies import STRATEGIES
from textvae.strategies.base import StrategyStack
from textvae.strategies.cyclical import epoch_cycle_weight
from textvae.training.trainer import train
from textvae.types import Posterior, StepContext

FLOOR = 1 / (2 * math.pi * math.e)
EVAL = StepContext(training=False)


def build(name: str, latent_dim: int = 4, **params):
    return STRATEGIES.build(name, params, latent_dim=latent_dim)


def unit_posterior(b: int = 64, d: int = 4) -> Posterior:
    return Posterior(torch.randn(b, d, generator=torch.Generator().manual_seed(0)), torch.zeros(b, d))


# ---- DU-VAE: the variance floor in evaluation ------------------------------------------------------
def evaluated_variance(strategy) -> torch.Tensor:
    strategy.eval()
    return strategy.transform_posterior(unit_posterior(), EVAL).logvar.exp()


@pytest.mark.parametrize("weight, floored", [(0.5, False), (1.0, True)])
def test_du_vae_evaluation_floors_only_once_training_reached_weight_one(weight, floored):
    strategy = build("du-vae", p_drop=0.0).train()
    strategy.transform_posterior(unit_posterior(), StepContext(training=True, kl_weight=weight))
    var = evaluated_variance(strategy)
    assert torch.allclose(var, torch.full_like(var, 1 + FLOOR if floored else 1.0))
    note = strategy.evaluation_note()
    assert (note is None) == floored and (floored or "without the variance floor" in note)


def test_du_vae_eval_floor_always_ignores_the_training_weight():
    strategy = build("du-vae", p_drop=0.0, eval_floor="always").train()
    strategy.transform_posterior(unit_posterior(), StepContext(training=True, kl_weight=0.5))
    assert torch.allclose(evaluated_variance(strategy), torch.full((64, 4), 1 + FLOOR))
    assert strategy.evaluation_note() is None


def test_du_vae_floor_state_travels_with_the_checkpoint():
    warming = build("du-vae", p_drop=0.0).train()
    warming.transform_posterior(unit_posterior(), StepContext(training=True, kl_weight=0.3))
    fresh = build("du-vae", p_drop=0.0)
    fresh.load_state_dict(warming.state_dict())
    assert torch.allclose(evaluated_variance(fresh), torch.ones(64, 4)), "no floor: as the run evaluated"
    older = {k: v for k, v in warming.state_dict().items() if k != "floor_on"}
    fresh.load_state_dict(older)
    assert torch.allclose(evaluated_variance(fresh), torch.full((64, 4), 1 + FLOOR)), \
        "a checkpoint from before the option was always evaluated with the floor"


def test_du_vae_eval_floor_rejects_unknown_values():
    with pytest.raises(ConfigError, match="eval_floor"):
        build("du-vae", eval_floor="sometimes")


# ---- beta-VAE: the model-selection number ----------------------------------------------------------
def test_beta_vae_weighted_selection_is_the_trained_objective():
    metrics = {"rec": 100.0, "kl": 10.0, "elbo": 110.0}
    weighted = StrategyStack([build("beta-vae", beta=0.4, selection="weighted")])
    assert weighted.selection_loss(metrics, EVAL) == pytest.approx(104.0)
    assert StrategyStack([build("beta-vae", beta=0.4)]).selection_loss(metrics, EVAL) == 110.0


def test_beta_vae_weighted_selection_drives_best_checkpoint_in_training(tiny_corpus, make_config, tmp_path):
    run = tmp_path / "run"
    train(make_config(tiny_corpus, {"beta-vae": {"beta": 0.4, "selection": "weighted"}}, train={"epochs": 3}),
          run, evaluate_test=False)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for record in log:
        v = record["valid"]
        assert record["selection_loss"] == pytest.approx(v["rec"] + 0.4 * v["kl"])
    so_far = math.inf
    for record in log:
        assert record["best"] == (record["selection_loss"] < so_far)
        so_far = min(so_far, record["selection_loss"])


# ---- cyclical: cycles in epochs, as the language-model and BN-VAE scripts lay them out -------------
def reference_cycles(epochs: int, updates: int, nominal: float, cycle: int, warm_up: float, start: float,
                     offset: int) -> list[list[float]]:
    """The weight the BN-VAE script uses at every update: reset to ``start`` at the start of each
    restart epoch, then raised by a fixed increment before every update and capped at 1."""
    weights, w = [], start
    step = (1.0 - start) / (warm_up * nominal)
    for epoch in range(epochs):
        if epoch >= offset and (epoch - offset) % cycle == 0:
            w = start
        row = []
        for _ in range(updates):
            w = min(1.0, w + step)
            row.append(w)
        weights.append(row)
    return weights


@pytest.mark.parametrize("cycle, warm_up, offset", [(1, 1, 0), (3, 1.5, 1), (4, 4, 1), (10, 5, 0)])
def test_epoch_cycles_match_the_reference_increments(cycle, warm_up, offset):
    # 13 updates per epoch against 10 nominal ones: length buckets make epochs longer than N / B.
    expected = reference_cycles(24, 13, 10.0, cycle, warm_up, 0.1, offset)
    for epoch, row in enumerate(expected):
        for j, w in enumerate(row):
            got = epoch_cycle_weight(epoch, j, 13, 10.0, cycle, warm_up / cycle, start=0.1,
                                     restart_offset=offset)
            assert got == pytest.approx(w, abs=1e-9), (epoch, j)


def test_bn_offset_makes_the_first_epoch_a_cycle_of_its_own():
    first = [epoch_cycle_weight(e, 0, 10, 10.0, 3, 0.5, start=0.1, restart_offset=1) for e in range(5)]
    assert first[0] == first[1] == first[4] and first[2] > first[1] and first[3] > first[2]


def test_cyclical_config_checks_the_epoch_options():
    with pytest.raises(ConfigError, match="restart_offset needs cycle_epochs"):
        build("cyclical", restart_offset=1)
    with pytest.raises(ConfigError, match="restart_offset must be below cycle_epochs"):
        build("cyclical", cycle_epochs=2, restart_offset=2)


def test_trainer_restarts_epoch_cycles_at_epoch_boundaries(tiny_corpus, make_config, tmp_path):
    run = tmp_path / "run"
    cfg = make_config(tiny_corpus, {"cyclical": {"cycle_epochs": 2, "ratio": 1.0}}, train={"epochs": 4})
    train(cfg, run, evaluate_test=False)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    ends = [r["train"]["kl_weight"] for r in log]
    # 60 sentences in batches of 8: 7.5 nominal updates per epoch, more actual (length buckets).
    assert ends[0] == pytest.approx(ends[2]) and ends[1] == ends[3] == 1.0
    assert 0.5 < ends[0] < 1.0, "the ramp over 2 nominal epochs is past half after one actual epoch"


# ---- the recipes carry the choices of the code behind their rows -----------------------------------
def resolved(strategy: str, dataset: str = "yahoo") -> dict:
    return recipes.resolve(dataset, strategy).to_dict()


def test_recipes_follow_the_code_behind_their_rows():
    cyc = resolved("cyclical")
    assert cyc["strategies"] == {"cyclical": {"n_cycles": 4, "ratio": 0.5, "shape": "linear", "start": 0.1,
                                              "stop": 1.0, "cycle_epochs": 10, "restart_offset": 1}}
    fb = resolved("free-bits")
    assert fb["strategies"]["free-bits"] == {"mode": "per-dim", "threshold": 0.1}
    assert fb["strategies"]["kl-annealing"] == {"kl_start": 0.0, "warm_up": 10.0}
    delta = resolved("delta-vae")
    beta = resolved("beta-vae")
    assert beta["strategies"] == {"beta-vae": {"beta": 0.4, "selection": "weighted"}}
    du = resolved("du-vae")
    assert du["strategies"]["du-vae"]["eval_floor"] == "after-warm-up"
    bn = resolved("bn-vae")
    # BN-VAE's script: PyTorch's encoder init and batches of one skipped; its delta encoder keeps He et
    # al.'s init; DU-VAE's script skips batches under 16; Li et al.'s beta script skips none.
    for cfg, init, min_batch in ((cyc, "pytorch", 2), (fb, "pytorch", 2), (bn, "pytorch", 2),
                                 (delta, None, 2), (du, "pytorch", 16), (beta, None, 1)):
        assert (cfg["model"]["encoder_init"], cfg["data"]["min_batch_size"]) == (init, min_batch)
        assert cfg["model"]["init"] == "he2019"
    agg = resolved("agg-vae")
    assert agg["train"]["decay_epoch"] == 2 and agg["eval"]["mi_estimator"] == "per-batch"
    assert resolved("du-vae", "yelp")["train"]["epochs"] == 150
    assert resolved("du-vae")["train"]["epochs"] == 100
    assert resolved("cyclical", "demo")["strategies"]["cyclical"]["cycle_epochs"] == 3
    lm = resolved("lstm-lm")["train"]
    assert (lm["decay_epoch"], lm["load_best_epoch"]) == (2, 0)
