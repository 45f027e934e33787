"""MAE's mutual posterior-divergence terms against a direct computation over pairs, its objective,
free bits and recipes."""

from __future__ import annotations

import math

import pytest
import torch

from textvae import recipes
from textvae.errors import ConfigError
from textvae.strategies import STRATEGIES
from textvae.strategies.mae import MAEConfig, mutual_divergence_terms
from textvae.types import Batch, LossTerms, Posterior, StepContext


def gaussian_kl(mu_a: float, logvar_a: float, mu_b: float, logvar_b: float) -> float:
    """KL(N(mu_a, e^logvar_a) || N(mu_b, e^logvar_b)) from the textbook formula."""
    var_a, var_b = math.exp(logvar_a), math.exp(logvar_b)
    return 0.5 * (math.log(var_b / var_a) + (var_a + (mu_a - mu_b) ** 2) / var_b - 1.0)


def loop_terms(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[list[float], float]:
    """Per-dimension mean over ordered pairs i != j, and the sample std over pairs of the summed KL."""
    b, d = mu.shape
    per_dim = [0.0] * d
    totals = []
    for i in range(b):
        for j in range(b):
            if i == j:
                continue
            kls = [gaussian_kl(float(mu[i, k]), float(logvar[i, k]), float(mu[j, k]), float(logvar[j, k]))
                   for k in range(d)]
            for k in range(d):
                per_dim[k] += kls[k]
            totals.append(sum(kls))
    n = len(totals)
    mean = sum(totals) / n
    std = math.sqrt(sum((t - mean) ** 2 for t in totals) / (n - 1))
    return [p / n for p in per_dim], std


def random_posterior(b: int = 6, d: int = 4, seed: int = 0) -> Posterior:
    g = torch.Generator().manual_seed(seed)
    return Posterior(torch.randn(b, d, generator=g, dtype=torch.double),
                     torch.randn(b, d, generator=g, dtype=torch.double))


@pytest.mark.parametrize("b", [2, 3, 7])
def test_terms_equal_a_direct_loop_over_pairs(b):
    posterior = random_posterior(b=b, seed=b)
    mean_d, std = mutual_divergence_terms(posterior)
    expected_mean, expected_std = loop_terms(posterior.mu, posterior.logvar)
    assert torch.allclose(mean_d, torch.tensor(expected_mean, dtype=torch.double), atol=1e-12, rtol=0)
    assert math.isclose(float(std), expected_std, rel_tol=1e-12)


def adjusted(config: dict, posterior: Posterior, kl: torch.Tensor, kl_weight: float = 0.5):
    strategy = STRATEGIES.build("mae", config, latent_dim=posterior.mu.size(1))
    from textvae.types import Objective

    rec = torch.arange(posterior.mu.size(0), dtype=torch.double)
    terms = LossTerms(rec=rec, kl=kl, kl_dims=None, posterior=posterior, z=None, n_targets=1)
    objective = Objective(rec=rec, kl=kl, kl_weight=kl_weight)
    batch = Batch(torch.zeros(posterior.mu.size(0), 3, dtype=torch.long), torch.full((posterior.mu.size(0),), 3))
    strategy.adjust(objective, terms, batch, StepContext(training=True))
    return strategy, objective


def test_objective_adds_the_weighted_diversity_and_smoothness_terms():
    posterior = random_posterior()
    kl = posterior.kl_standard_normal().sum(-1)
    _, objective = adjusted({"eta": 2.0, "gamma": 0.3}, posterior, kl)
    per_dim, std = loop_terms(posterior.mu, posterior.logvar)
    diversity = -sum(math.log(1.0 / (1.0 + math.exp(-m))) for m in per_dim)
    expected = float(objective.rec.mean()) + 0.5 * float(kl.mean()) + 2.0 * diversity + 0.3 * std
    assert math.isclose(float(objective.total()), expected, rel_tol=1e-12)


def test_diversity_pushes_collapsed_posteriors_apart():
    posterior = Posterior(torch.zeros(4, 3, requires_grad=True), torch.zeros(4, 3))
    posterior.mu.data += 1e-3 * torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    _, objective = adjusted({"eta": 1.0, "gamma": 0.0}, posterior, torch.zeros(4))
    objective.total().backward()
    step = -posterior.mu.grad  # gradient descent direction
    spread = posterior.mu.detach() - posterior.mu.detach().mean(0)
    assert float((step * spread).sum()) > 0


def test_free_bits_hold_the_batch_mean_kl_at_the_threshold():
    posterior = random_posterior()
    kl = torch.tensor([0.5, 1.0, 1.5, 0.2, 0.3, 0.5], dtype=torch.double, requires_grad=True)  # mean 0.667
    _, below = adjusted({"free_bits": 2.0, "eta": 0.0, "gamma": 0.0}, posterior, kl, kl_weight=1.0)
    assert math.isclose(float(below.kl.detach().mean()), 2.0)
    below.total().backward()
    assert torch.equal(kl.grad, torch.zeros_like(kl))  # max(free_bits, KL): no gradient while KL is below
    kl.grad = None
    _, above = adjusted({"free_bits": 0.5, "eta": 0.0, "gamma": 0.0}, posterior, kl, kl_weight=1.0)
    above.total().backward()
    assert torch.allclose(kl.grad, torch.full_like(kl, 1 / 6))


def test_a_single_sentence_adds_no_pair_terms():
    _, objective = adjusted({}, random_posterior(b=1), torch.ones(1))
    assert objective.extras == {}


def test_epoch_scalars_average_the_training_batches():
    strategy, _ = adjusted({}, random_posterior(seed=1), torch.ones(6))
    posterior = random_posterior(seed=2)
    from textvae.types import Objective

    terms = LossTerms(rec=torch.zeros(6), kl=torch.ones(6), kl_dims=None, posterior=posterior, z=None, n_targets=1)
    batch = Batch(torch.zeros(6, 3, dtype=torch.long), torch.full((6,), 3))
    strategy.adjust(Objective(terms.rec, terms.kl, 1.0), terms, batch, StepContext(training=True))
    strategy.adjust(Objective(terms.rec, terms.kl, 1.0), terms, batch, StepContext(training=False))
    means = [sum(loop_terms(p.mu, p.logvar)[0]) for p in (random_posterior(seed=1), posterior)]
    assert math.isclose(strategy.log_scalars()["pairwise_kl_mean"], sum(means) / 2, rel_tol=1e-6)
    strategy.on_epoch_start(StepContext())
    assert strategy.log_scalars() == {}


@pytest.mark.parametrize("key", ["eta", "gamma", "free_bits"])
def test_negative_weights_are_refused(key):
    with pytest.raises(ConfigError, match=f"key 'strategies.mae.{key}' must be >= 0, got -1.0"):
        STRATEGIES.config("mae", {key: -1.0})


@pytest.mark.parametrize("dataset, eta", [("yahoo", 1.0), ("yelp", 2.0), ("short-yelp", 2.0)])
def test_recipes_map_the_table_pairs_to_eta_and_gamma(dataset, eta):
    cfg = recipes.resolve(dataset, "mae")
    assert cfg.strategies["mae"] == MAEConfig(eta=eta, gamma=0.2, free_bits=0.0)
    assert list(cfg.strategies) == ["kl-annealing", "mae"]


def test_low_precision_posteriors_are_compared_in_float32():
    posterior = random_posterior(b=5, seed=3)
    low = Posterior(posterior.mu.bfloat16(), posterior.logvar.bfloat16())
    mean_d, std = mutual_divergence_terms(low)
    assert mean_d.dtype == std.dtype == torch.float32
    exact = mutual_divergence_terms(Posterior(low.mu.double(), low.logvar.double()))
    assert torch.allclose(mean_d.double(), exact[0], rtol=1e-5)
