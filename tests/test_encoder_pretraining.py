"""Encoder pretraining + decoder reset + free bits: two stages in one run folder."""

from __future__ import annotations

import json

import pytest
import torch

from textvae.errors import ConfigError
from textvae.strategies import build_stack
from textvae.training import StopAfter, Trainer, train
from textvae.training.checkpoint import load_checkpoint

STACK = {"encoder-pretraining": {"pretrain_epochs": 2}, "kl-annealing": {"kl_start": 0.0, "warm_up": 1},
         "free-bits": {"mode": "per-dim", "threshold": 0.5}}


def metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("seconds")
    return lines


def test_two_stages_in_one_folder(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, STACK, eval={"iw_samples": 2})
    run = tmp_path / "run"
    results = train(cfg, run)
    log = metrics(run)
    assert [r["stage"] for r in log] == ["pretrain", "pretrain", "vae", "vae"]
    assert [r["train"]["kl_weight"] for r in log[:2]] == [0.0, 0.0], "stage 1 is an autoencoder"
    assert log[2]["train"]["kl_weight"] == pytest.approx(1.0), "annealing restarts at stage 2 and completes"
    assert all("selection_loss" in r for r in log[:2]) and "selection_loss" not in log[2]
    assert log[0]["selection_loss"] == pytest.approx(log[0]["valid"]["rec"])
    assert (run / "checkpoints" / "pretrain-best.pt").is_file()
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["state"]["stage"] == 1, "best.pt only ever holds a stage-2 model"
    assert results["best_epoch"] in (3, 4) and results["epochs"] == 4


def test_stage_two_starts_from_the_pretrained_encoder_and_a_fresh_decoder(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, STACK, eval={"iw_samples": 2})
    run = tmp_path / "run"
    train(cfg, run, callbacks=[StopAfter(2)])
    pretrained = load_checkpoint(run / "checkpoints" / "best.pt")["model"]
    trainer = Trainer(cfg, run)
    trainer.resume()
    trainer._start_stage(1)
    state = trainer.model.state_dict()
    for key, value in state.items():
        if key.startswith("encoder."):
            assert torch.equal(value, pretrained[key]), key
    decoder = {k: v for k, v in state.items() if k.startswith("decoder.")}
    assert all(not torch.equal(v, pretrained[k]) for k, v in decoder.items())
    for key, value in decoder.items():
        bound = 0.1 if "embed" in key else 0.01
        assert value.abs().max() <= bound, key
    assert not (run / "checkpoints" / "best.pt").exists(), "a stage-2 decay can never reload stage 1"
    assert trainer.state.lr == cfg.train.lr and trainer.state.best_loss == float("inf")


@pytest.mark.parametrize("stop", [1, 2, 3])
def test_resume_inside_either_stage_matches_the_straight_run(tiny_corpus, make_config, tmp_path, stop):
    cfg = make_config(tiny_corpus, STACK, eval={"iw_samples": 2})
    straight = train(cfg, tmp_path / "straight")
    run = tmp_path / "crashed"
    train(cfg, run, callbacks=[StopAfter(stop)])
    assert train(cfg, run, resume=True) == straight
    assert metrics(run) == metrics(tmp_path / "straight")


def test_resume_repeats_an_interrupted_stage_switch(tiny_corpus, make_config, tmp_path):
    # Killed after stage 2's first best.pt but before its last.pt: the switch must not take that
    # best.pt for the pretraining's.
    cfg = make_config(tiny_corpus, STACK, eval={"iw_samples": 2})
    straight = train(cfg, tmp_path / "straight")
    run = tmp_path / "crashed"
    train(cfg, run, callbacks=[StopAfter(2)])
    trainer = Trainer(cfg, run)
    trainer.resume()
    trainer._start_stage(1)
    trainer.run_epoch()
    trainer.save("best")  # a stray stage-2 best.pt, as a kill before last.pt would leave
    assert train(cfg, run, resume=True) == straight


def test_only_one_strategy_may_split_the_run():
    from textvae.strategies.base import Strategy, StrategyStack
    from textvae.types import Stage

    class Staged(Strategy):
        registry_name = "staged"

        def stages(self):
            return [Stage("a"), Stage("b")]

    pretraining = build_stack({"encoder-pretraining": {}}, latent_dim=2).items[0]
    with pytest.raises(ConfigError, match="stages"):
        StrategyStack([pretraining, Staged(None, 2)])
