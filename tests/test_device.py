"""Everything runs on the configured device (``--device`` / TEXTVAE_TEST_DEVICE), and nothing inside a
training step, an evaluation or a decoding builds a tensor without naming its device."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from device_audit import DeviceAudit

from textvae.data import make_batches
from textvae.evaluation import evaluate, iw_log_likelihood
from textvae.evaluation.protocol import evaluation_mode
from textvae.generation import DecodingConfig
from textvae.generation.sentences import interpolate_texts, reconstruct_texts, sample_texts
from textvae.strategies import STRATEGIES
from textvae.training import Trainer, train
from textvae.training.device import set_deterministic, staged
from textvae.types import Batch

# Strategy settings that make a tiny run exercise the strategy's own code from the first step.
STRATEGY_PARAMS = {"kl-annealing": {"warm_up": 1}, "cyclical": {}, "free-bits": {"threshold": 0.5}}


def train_and_evaluate(trainer: Trainer) -> None:
    trainer.model.strategy.on_fit_start(trainer.ctx)
    trainer.ctx.training = True
    trainer.model.strategy.on_epoch_start(trainer.ctx)
    batches = [b for b in make_batches(trainer.corpus.splits["train"], 8, "bucket") if b.size >= 2][:3]
    for batch in staged(batches, trainer.device):
        batch = batch.to(trainer.device)
        terms = trainer.train_step(batch)
        trainer.model.strategy.after_step(terms, trainer.ctx)
        trainer.ctx.step += 1
    trainer.ctx.training = False
    trainer.model.strategy.on_epoch_end(trainer.ctx)
    trainer.validate()
    valid = [b.to(trainer.device) for b in trainer.valid_batches]
    evaluate(trainer.model, valid, iw_samples=3, max_tokens=64)


@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_training_and_evaluation_name_their_devices(strategy, tiny_corpus, make_config, tmp_path, device):
    config = make_config(tiny_corpus, {strategy: STRATEGY_PARAMS.get(strategy, {})}, data={"min_batch_size": 2})
    trainer = Trainer(config, tmp_path / "run")
    assert trainer.device.type == device.type
    with DeviceAudit() as audit:
        train_and_evaluate(trainer)
    assert not audit.found, "\n".join(sorted(set(audit.found)))


@pytest.mark.parametrize("amp", ["off", pytest.param("bf16", marks=pytest.mark.amp("bf16")),
                                 pytest.param("fp16", marks=pytest.mark.amp("fp16"))])
def test_decoupled_prior_and_every_precision_name_their_devices(amp, tiny_corpus, make_config, tmp_path):
    config = make_config(tiny_corpus, prior={"name": "decoupled", "blocks": 2}, train={"amp": amp})
    trainer = Trainer(config, tmp_path / "run")
    with DeviceAudit() as audit:
        train_and_evaluate(trainer)
    assert not audit.found, "\n".join(sorted(set(audit.found)))
    assert all(p.device.type == trainer.device.type for p in trainer.model.parameters())


def test_generation_names_its_devices(tiny_corpus, make_config, tmp_path):
    trainer = Trainer(make_config(tiny_corpus), tmp_path / "run")
    model, vocab = trainer.model.eval(), trainer.corpus.vocab
    texts = trainer.corpus.splits["valid"].texts[:3]
    with DeviceAudit() as audit:
        for mode in ("greedy", "sample", "beam"):
            config = DecodingConfig(mode=mode, max_length=6, beam_size=2)
            sample_texts(model, vocab, 3, config, seed=0)
            reconstruct_texts(model, vocab, texts, config)
        interpolate_texts(model, vocab, texts[0], texts[1], steps=3)
    assert not audit.found, "\n".join(sorted(set(audit.found)))


def test_the_audit_finds_a_tensor_without_a_device():
    with DeviceAudit(root=Path(__file__).resolve().parent) as audit:
        torch.zeros(3)
        torch.arange(3, device="cpu")
        torch.zeros_like(torch.ones(2, device="cpu"))
    with DeviceAudit() as outside:
        torch.zeros(3)  # not in textvae: not its business
    assert len(audit.found) == 1 and "test_device.py" in audit.found[0] and "torch.zeros" in audit.found[0]
    assert outside.found == []


def test_exact_lm_nll_on_the_device_matches_the_cpu(make_config, tiny_corpus, tmp_path, device):
    trainer = Trainer(make_config(tiny_corpus, model={"kind": "lstm-lm"}, train={"device": "cpu"}), tmp_path / "run")
    batches = make_batches(trainer.corpus.splits["valid"], 8, "padded")
    with evaluation_mode(trainer.model):
        on_cpu = iw_log_likelihood(trainer.model, batches, samples=1)
        on_device = iw_log_likelihood(trainer.model.to(device), [b.to(device) for b in batches], samples=1)
    torch.testing.assert_close(on_device, on_cpu, rtol=1e-5, atol=1e-4)


def test_staged_batches_are_pinned_only_for_a_gpu(monkeypatch):
    batch = Batch(torch.ones(2, 3, dtype=torch.long), torch.tensor([3, 3]), torch.tensor([0, 1]))
    assert staged([batch], torch.device("cpu"))[0] is batch
    pinned = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: pinned.append(self) or self.clone())
    out = staged([batch], torch.device("cuda"))  # no CUDA needed: nothing is copied to the device here
    assert [t.shape for t in pinned] == [batch.tokens.shape, batch.labels.shape]
    assert torch.equal(out[0].tokens, batch.tokens) and out[0].lengths is batch.lengths


def test_deterministic_mode_is_applied_and_recorded(tiny_corpus, make_config, tmp_path, restore_determinism):
    torch.use_deterministic_algorithms(False)
    os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    torch.backends.cudnn.benchmark = True
    cfg = make_config(tiny_corpus, train={"deterministic": True, "epochs": 1})
    train(cfg, tmp_path / "a")
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    env = json.loads((tmp_path / "a" / "env.json").read_text())["backends"]
    assert env["deterministic_algorithms"] is True and env["cublas_workspace_config"] == ":4096:8"
    assert env["cudnn"]["deterministic"] is True and env["cudnn"]["benchmark"] is False
    train(cfg, tmp_path / "b")
    weights = [torch.load(tmp_path / run / "checkpoints" / "last.pt", weights_only=True)["model"] for run in "ab"]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_deterministic_off_leaves_the_process_alone(restore_determinism):
    torch.use_deterministic_algorithms(False)
    set_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled()
