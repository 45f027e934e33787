"""The contract every registered strategy honours, run through the real training loop on tiny data."""

from __future__ import annotations

import math

import pytest
import torch

from textvae.data import make_batches
from textvae.evaluation import evaluate
from textvae.models import build_model
from textvae.strategies import STRATEGIES
from textvae.training import Trainer
from textvae.training.trainer import rng_state, set_rng_state

NAMES = STRATEGIES.names()


def trainer_for(name: str, make_config, corpus, run_dir) -> Trainer:
    # After kl-annealing, whose weight reaches 1 within the first epoch: weight-gated mechanisms
    # (DU-VAE's dropout and floor) are exercised both off and on.
    stack = {"kl-annealing": {"kl_start": 0.5, "warm_up": 0.5}} if name != "kl-annealing" else {}
    stack[name] = {}
    return Trainer(make_config(corpus, stack), run_dir)


def flat_state(model: torch.nn.Module) -> dict[str, object]:
    """The model's state_dict with nested entries (strategies' extra state) flattened to dotted keys."""
    out: dict[str, object] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(f"{prefix}.{i}", item)
        else:
            out[prefix] = value.detach().clone() if isinstance(value, torch.Tensor) else value

    walk("", model.state_dict())
    return out


def same(a, b) -> bool:
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


@pytest.fixture(params=NAMES)
def trained(request, make_config, tiny_corpus, tmp_path):
    """A trainer after one epoch, saved as its resume checkpoint."""
    trainer = trainer_for(request.param, make_config, tiny_corpus, tmp_path / "run")
    metrics = trainer.run_epoch()
    trainer.state.epoch += 1
    trainer.save("last")
    return request.param, trainer, metrics


def test_training_steps_give_finite_losses(trained):
    name, trainer, metrics = trained
    assert trainer.state.step > 1
    for key in ("rec", "kl", "elbo"):
        assert math.isfinite(metrics[key]), (name, key, metrics)
    for key, value in trainer.model.strategy.log_scalars().items():
        assert all(math.isfinite(v) for v in (value if isinstance(value, list) else [value])), key


def test_resume_continues_like_the_uninterrupted_run(trained, make_config, tiny_corpus, tmp_path):
    name, original, _ = trained
    rng = rng_state()  # the global generators, which building another trainer reseeds
    resumed = trainer_for(name, make_config, tiny_corpus, tmp_path / "run")
    resumed.resume()
    before = flat_state(original.model)
    assert flat_state(resumed.model).keys() == before.keys(), name
    for key, value in flat_state(resumed.model).items():
        assert same(value, before[key]), (name, key)
    continued = resumed.run_epoch()
    set_rng_state(rng)
    assert original.run_epoch() == continued, name
    after = flat_state(original.model)
    for key, value in flat_state(resumed.model).items():
        assert same(value, after[key]), (name, key)


def test_state_dict_round_trip_reproduces_the_eval_posterior(trained):
    name, trainer, _ = trained
    clone = build_model(trainer.config, len(trainer.corpus.vocab))
    clone.load_state_dict(trainer.model.state_dict())
    batch = trainer.valid_batches[0]
    trainer.model.eval()
    clone.eval()
    with torch.no_grad():
        a, b = trainer.model.posterior(batch), clone.posterior(batch)
    assert torch.equal(a.mu, b.mu) and torch.equal(a.logvar, b.logvar), name


def test_eval_mode_is_deterministic(trained):
    name, trainer, _ = trained
    model = trainer.model.eval()
    batches = trainer.valid_batches
    with torch.no_grad():
        first = [model.posterior(b) for b in batches]
        second = [model.posterior(b) for b in batches]
        z = torch.randn(3, model.latent_dim)
    for p, q in zip(first, second):
        assert torch.equal(p.mu, q.mu) and torch.equal(p.logvar, q.logvar), name
    assert torch.equal(model.to_decoder_space(z), model.to_decoder_space(z)), name


def test_the_evaluator_scores_the_trained_model(trained):
    name, trainer, _ = trained
    batches = make_batches(trainer.corpus.splits["test"], 8, "bucket")
    results = evaluate(trainer.model, batches, iw_samples=4, seed=0)
    for key in ("nll", "elbo", "rec", "kl", "mi"):
        assert math.isfinite(results[key]), (name, key, results[key])
    # Perplexities are inf only where exp overflows (Scale-VAE scored as ``scaled-posterior`` while
    # f is still in the thousands has a KL of that size).
    for key, nats in (("ppl", "elbo"), ("iw_ppl", "nll")):
        per_target = results[nats] * results["n_sentences"] / results["n_targets"]
        expected = math.inf if per_target >= 700 else pytest.approx(math.exp(per_target), rel=1e-6)
        assert results[key] == expected, (name, key)
    assert 0 <= results["au"] <= trainer.model.latent_dim
    assert evaluate(trainer.model, batches, iw_samples=4, seed=0) == results, name
