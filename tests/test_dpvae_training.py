"""dpVAE regularisers and the decoupled prior through the real trainer: auxiliary optimiser, resume."""

from __future__ import annotations

import json
import math

from textvae.evaluation.posterior_pass import KL_MONTE_CARLO
from textvae.training import StopAfter, Trainer, train

FACTOR = {"factor-vae": {"gamma": 2.0, "disc_hidden": 8, "disc_layers": 1, "disc_lr": 1e-3}}
DECOUPLED = {"name": "decoupled", "blocks": 2, "hidden": 8}


def metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("seconds")
    return lines


def test_discriminator_stays_out_of_the_vae_optimiser(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, FACTOR, prior=DECOUPLED)
    trainer = Trainer(cfg, tmp_path / "run")
    optimised = {id(p) for p in trainer.groups.parameters(trainer.groups.main)}
    discriminator = trainer.model.strategy.items[0].discriminator
    assert not optimised & {id(p) for p in discriminator.parameters()}
    assert {id(p) for p in trainer.model.prior.parameters()} <= optimised


def test_factor_dpvae_resumes_exactly(tiny_corpus, make_config, tmp_path):
    # The discriminator's Adam state and weights must travel in the checkpoint for this to hold.
    cfg = make_config(tiny_corpus, FACTOR, prior=DECOUPLED)
    straight = train(cfg, tmp_path / "straight")
    assert train(cfg, tmp_path / "crashed", callbacks=[StopAfter(1)]) == {}
    resumed = train(cfg, tmp_path / "crashed", resume=True)
    assert metrics(tmp_path / "straight") == metrics(tmp_path / "crashed")
    assert straight == resumed
    assert "factor-vae/disc_loss" in metrics(tmp_path / "straight")[-1]["strategy"]


def test_each_regulariser_trains_with_the_decoupled_prior(tiny_corpus, make_config, tmp_path):
    for name, params in {"beta-vae-b": {"c_max": 2.0, "anneal_epochs": 1.0}, "beta-tcvae": {}}.items():
        results = train(make_config(tiny_corpus, {name: params}, prior=DECOUPLED, train={"epochs": 1}),
                        tmp_path / name)
        assert results["kl_estimator"] == KL_MONTE_CARLO and results["kl_dims"] is None
        assert math.isfinite(results["nll"]) and results["nll"] > 0
