"""train.amp: the legacy booleans, the float16 gradient scaler, and exact resume with it."""

from __future__ import annotations

import json

import pytest
import torch
from test_training import metrics

from textvae.config import RunConfig, apply_overrides
from textvae.data import make_batches
from textvae.training import StopAfter, Trainer, train
from textvae.training.checkpoint import load_checkpoint
from textvae.training.precision import Precision

INITIAL_SCALE = 65536.0  # torch.amp.GradScaler's


def test_boolean_amp_of_older_configs_means_bf16_or_off(tmp_path):
    assert RunConfig.from_dict({"train": {"amp": True}}).train.amp == "bf16"
    assert RunConfig.from_dict({"train": {"amp": False}}).train.amp == "off"
    assert RunConfig.from_dict(apply_overrides({}, ["train.amp=true"])).train.amp == "bf16"
    saved = RunConfig().to_dict()
    saved["train"]["amp"] = False  # a run folder written before fp16 existed
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert RunConfig.load(tmp_path / "config.json").train.amp == "off"


def quadratic_step(precision: Precision, clip: float) -> torch.Tensor:
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(4, 3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    loss = (weight @ torch.arange(3.0)).pow(2).sum()
    precision.backward(loss)
    precision.unscale([optimizer])
    torch.nn.utils.clip_grad_norm_([weight], clip)
    precision.step([optimizer], optimizer.step)
    return weight.detach()


def test_fp16_unscales_gradients_before_clipping():
    # Scaling by a power of two is exact in float32, so the clipped update must equal float32's;
    # clipping the scaled gradients would shrink it 65536-fold.
    fp16 = Precision("fp16", torch.device("cpu"))
    assert torch.equal(quadratic_step(fp16, clip=0.5), quadratic_step(Precision("off", torch.device("cpu")), clip=0.5))
    assert fp16.state_dict()["scale"] == INITIAL_SCALE


def test_fp16_skips_an_overflowing_step_and_halves_the_scale():
    precision = Precision("fp16", torch.device("cpu"))
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    precision.backward((weight * 1e36).sum())  # x 65536 overflows float32
    precision.step([optimizer], optimizer.step)
    assert torch.equal(weight.detach(), torch.ones(3))
    assert precision.state_dict()["scale"] == INITIAL_SCALE / 2
    restored = Precision("fp16", torch.device("cpu"))
    restored.load_state_dict(precision.state_dict())
    assert restored.state_dict() == precision.state_dict()
    fresh = Precision("fp16", torch.device("cpu"))
    fresh.load_state_dict({})  # a checkpoint of a run without fp16
    assert fresh.state_dict()["scale"] == INITIAL_SCALE


def test_an_overflow_in_one_optimiser_skips_them_all():
    # Clipped together, one group's inf makes the other's gradients NaN after it was found clean.
    precision = Precision("fp16", torch.device("cpu"))
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    optimizers = [torch.optim.SGD([a], lr=0.1), torch.optim.SGD([b], lr=0.1)]
    precision.backward(a.sum() + (b * 1e36).sum())
    precision.unscale(optimizers)
    torch.nn.utils.clip_grad_norm_([a, b], 5.0)
    precision.step(optimizers, lambda: [o.step() for o in optimizers])
    assert torch.equal(a.detach(), torch.ones(2)) and torch.equal(b.detach(), torch.ones(2))
    assert precision.state_dict()["scale"] == INITIAL_SCALE / 2


def test_off_and_bf16_have_no_scaler_state():
    assert Precision("off", torch.device("cpu")).state_dict() == {}
    assert Precision("bf16", torch.device("cpu")).state_dict() == {}
    with pytest.raises(ValueError, match="amp must be"):
        Precision("fp32", torch.device("cpu"))


def test_fp16_training_step_runs_products_in_float16(tiny_corpus, make_config, tmp_path):
    trainer = Trainer(make_config(tiny_corpus, train={"amp": "fp16"}), tmp_path / "run")
    seen = []
    trainer.model.encoder.to_posterior.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    batch = make_batches(trainer.corpus.splits["train"], 8, "bucket")[0]
    terms = trainer.train_step(batch)
    assert seen == [torch.float16]
    assert terms.rec.dtype == torch.float32 and torch.isfinite(terms.rec).all()
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


@pytest.mark.cpu_only
def test_fp16_on_cpu_runs_the_lstms_in_float32_past_onednn_and_restores_it():
    # oneDNN has no float16 LSTM on this project's CPUs; torch's own kernel runs it in float32.
    precision = Precision("fp16", torch.device("cpu"))
    lstm = torch.nn.LSTM(4, 4, batch_first=True)
    with precision.autocast():
        assert not torch.backends.mkldnn.enabled
        out, _ = lstm(torch.randn(2, 3, 4))
        product = torch.nn.functional.linear(out, torch.randn(5, 4))
    assert torch.backends.mkldnn.enabled
    assert out.dtype == torch.float32 and product.dtype == torch.float16


def test_fp16_run_resumes_exactly_with_its_scaler_state(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, {"kl-annealing": {"kl_start": 0.1, "warm_up": 1}}, train={"amp": "fp16"})
    straight = train(cfg, tmp_path / "straight")
    train(cfg, tmp_path / "crashed", callbacks=[StopAfter(1)])
    scale_after_one_epoch = load_checkpoint(tmp_path / "crashed" / "checkpoints" / "last.pt")["precision"]["scale"]
    resumed = train(cfg, tmp_path / "crashed", resume=True)
    assert metrics(tmp_path / "straight") == metrics(tmp_path / "crashed")
    assert resumed == straight
    final = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")["precision"]
    assert final == load_checkpoint(tmp_path / "crashed" / "checkpoints" / "last.pt")["precision"]
    # The scale moved during the run (float16 overflowed at 65536), so resuming had state to restore.
    assert scale_after_one_epoch < INITIAL_SCALE


def test_the_trainer_clips_fp16_gradients_in_true_units(tiny_corpus, make_config, tmp_path, monkeypatch):
    norms = {}
    clip = torch.nn.utils.clip_grad_norm_

    def recording(params, max_norm):
        params = list(params)
        norms.setdefault(amp, []).append(float(torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(p.grad) for p in params if p.grad is not None]))))
        return clip(params, max_norm)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording)
    for amp in ("off", "fp16"):
        trainer = Trainer(make_config(tiny_corpus, train={"amp": amp}), tmp_path / amp)
        # A scale small enough not to overflow on the first step, large enough to show if left in.
        trainer.precision.scaler = torch.amp.GradScaler(trainer.device.type, init_scale=2.0**8,
                                                        enabled=amp == "fp16")
        trainer.train_step(make_batches(trainer.corpus.splits["train"], 8, "bucket")[0].to(trainer.device))
    assert norms["fp16"][0] == pytest.approx(norms["off"][0], rel=0.05)
