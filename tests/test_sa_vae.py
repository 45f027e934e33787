"""SA-VAE: SVI refinement of the posterior, its two backward passes, evaluation with the refined posterior."""

from __future__ import annotations

import re

import pytest
import torch

from textvae import resolution
from textvae.data import load_corpus, make_batches
from textvae.errors import ConfigError
from textvae.evaluation import evaluate
from textvae.models import build_model
from textvae.strategies import STRATEGIES
from textvae.strategies.sa_vae import _Runner, svi
from textvae.types import StepContext


def tiny_model(tiny_corpus, make_config, dtype=torch.float32, **sa):
    cfg = make_config(tiny_corpus, {"sa-vae": {"svi_steps": 3, **sa}},
                      model={"dec_dropout_in": 0.0, "dec_dropout_out": 0.0, "init": "pytorch"})
    corpus = load_corpus(cfg.data)
    torch.manual_seed(0)
    model = build_model(cfg, len(corpus.vocab)).to(dtype)
    batch = make_batches(corpus.splits["train"], 8, "bucket")[0]
    return model, batch, cfg


def test_svi_steps_lower_the_batch_negative_elbo(tiny_corpus, make_config):
    model, batch, _ = tiny_model(tiny_corpus, make_config, svi_steps=20)
    strategy = model.strategy.items[0]
    posterior = model.encoder(batch)
    runner = _Runner(strategy, batch, 1.0, torch.Generator().manual_seed(0))
    mu, logvar = svi(runner.loss_fn, posterior.mu.detach(), posterior.logvar.detach(), strategy.config)

    def elbo(m, lv):
        losses = []
        for k in range(50):
            runner = _Runner(strategy, batch, 1.0, torch.Generator().manual_seed(100 + k))
            losses.append(float(runner.loss_fn(m, lv, 0)))
        return sum(losses) / len(losses)

    with torch.no_grad():
        before, after = elbo(posterior.mu, posterior.logvar), elbo(mu, logvar)
    assert after < before - 0.005, (before, after)  # same noise on both sides: the gain is not Monte-Carlo luck


@pytest.mark.parametrize("max_grad_norm", [0.0, 0.05])
def test_finite_difference_backward_matches_autograd(tiny_corpus, make_config, max_grad_norm):
    # float64 so that the finite differences (r = 1e-6) are accurate to ~1e-6; a small clip makes the
    # clip coefficients active, which both passes hold constant.
    grads = {}
    for hvp in ("finite-difference", "autograd"):
        model, batch, _ = tiny_model(tiny_corpus, make_config, torch.float64, hvp=hvp, fd_eps=1e-6,
                                     max_grad_norm=max_grad_norm)
        model.train()
        torch.manual_seed(1)
        terms = model(batch, StepContext(kl_weight=0.7))
        (terms.rec.mean() + terms.kl.mean()).backward()
        grads[hvp] = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    fd, exact = grads["finite-difference"], grads["autograd"]
    assert fd.keys() == exact.keys()
    for name in exact:
        torch.testing.assert_close(fd[name], exact[name], rtol=1e-4, atol=1e-7, msg=name)
    encoder = [n for n in exact if n.startswith("encoder.")]
    assert encoder and any(exact[n].abs().sum() > 0 for n in encoder), "the encoder learns through the SVI steps"


def test_kl_to_refined_trains_the_encoder_through_the_kl_term_only(tiny_corpus, make_config):
    model, batch, _ = tiny_model(tiny_corpus, make_config, encoder_grad="kl-to-refined")
    ctx = StepContext(kl_weight=1.0)
    terms = model(batch, ctx)
    objective = model.strategy.objective(terms, batch, ctx)
    assert "kl_to_refined" in objective.extras
    (terms.rec.mean() + terms.kl.mean()).backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.encoder.parameters())
    model.zero_grad()
    objective.extras["kl_to_refined"][1].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def test_evaluation_uses_the_refined_posterior_deterministically(tiny_corpus, make_config):
    model, batch, _ = tiny_model(tiny_corpus, make_config, svi_steps=10)
    model.eval()
    with torch.no_grad():
        refined = model.posterior(batch)
        again = model.posterior(batch)
        raw = model.encoder(batch)
    assert torch.equal(refined.mu, again.mu)
    assert not torch.allclose(refined.mu, raw.mu)
    results = evaluate(model, [batch], iw_samples=3, seed=0)
    assert "refined by 10 SVI steps" in results["evaluation_notes"][0]
    model.strategy.items[0].config.refine_in_eval = False
    unrefined = evaluate(model, [batch], iw_samples=3, seed=0)
    assert results["elbo"] < unrefined["elbo"]


def test_sa_vae_refuses_a_prior_without_closed_form_kl(tiny_corpus, make_config):
    cfg = make_config(tiny_corpus, {"sa-vae": {}}, prior={"name": "decoupled", "blocks": 1})
    with pytest.raises(ConfigError, match=r"strategies.sa-vae.*closed-form"):
        build_model(cfg, 20)


def test_sa_vae_config_ranges():
    with pytest.raises(ConfigError, match="svi_steps"):
        resolution.from_dict({"strategies": {"sa-vae": {"svi_steps": 0}}})


@pytest.mark.parametrize("key, value, bound", [("svi_steps", 0, ">= 1"), ("svi_lr", 0.0, "> 0"),
                                               ("momentum", 1.0, ">= 0 and < 1"), ("max_grad_norm", -1.0, ">= 0"),
                                               ("fd_eps", 0.0, "> 0")])
def test_out_of_range_svi_settings_are_refused_naming_the_key(key, value, bound):
    with pytest.raises(ConfigError, match=re.escape(f"key 'strategies.sa-vae.{key}' must be {bound}, got {value}")):
        STRATEGIES.config("sa-vae", {key: value})
