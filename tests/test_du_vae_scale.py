"""DU-VAE's ``scale`` option: the differentiable γ·w/RMS(w) and the DU code's in-place rescaling of w
give the same forward pass and different updates; in-place leaves w itself at RMS γ after training."""

from __future__ import annotations

import torch

from textvae.data import load_corpus, make_batches
from textvae.models import build_model
from textvae.types import StepContext


def model_and_batch(make_config, corpus, scale):
    config = make_config(
        corpus,
        {
            "kl-annealing": {"kl_start": 0.0, "warm_up": 1},
            "du-vae": {"gamma": 0.6, "p_drop": 0.2, "delta_rate": 1.0, "scale": scale},
        },
        model={"encoder_init": "pytorch", "dec_dropout_in": 0.0, "dec_dropout_out": 0.0},
    )
    data = load_corpus(config.data)
    torch.manual_seed(0)
    model = build_model(config, len(data.vocab))
    [du] = [s for s in model.strategy if s.registry_name == "du-vae"]
    with torch.no_grad():
        du.weight.uniform_(0.2, 1.5)  # away from RMS γ, as after some SGD updates
    batch = max(make_batches(data.splits["train"], 8, "bucket"), key=lambda b: b.size)
    return model, du, batch


def loss_and_grad(model, du, batch):
    torch.manual_seed(1)
    terms = model(batch, StepContext(kl_weight=0.5, training=True))
    (terms.rec.mean() + 0.5 * terms.kl.mean()).backward()
    return float(terms.rec.mean()), du.weight.grad.clone(), du.weight.detach().clone()


def test_in_place_rescales_the_weight_and_takes_the_gradient_on_it(tiny_corpus, make_config):
    a, du_a, batch = model_and_batch(make_config, tiny_corpus, "differentiable")
    b, du_b, _ = model_and_batch(make_config, tiny_corpus, "in-place")
    raw = du_a.weight.detach().clone()
    rec_a, grad_a, w_a = loss_and_grad(a, du_a, batch)
    rec_b, grad_b, w_b = loss_and_grad(b, du_b, batch)
    assert abs(rec_a - rec_b) < 1e-5  # the same forward pass
    assert torch.equal(w_a, raw)  # differentiable: w untouched
    assert abs(float(w_b.pow(2).mean().sqrt()) - 0.6) < 1e-6  # in-place: w itself at RMS γ
    assert not torch.allclose(grad_a, grad_b)  # the updates differ
    # the differentiable gradient is the in-place one projected through γ·w/RMS(w)'s Jacobian: no
    # component along w
    assert abs(float((grad_a * raw).sum())) < 1e-4 * float(grad_a.norm() * raw.norm())
