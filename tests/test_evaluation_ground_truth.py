"""The evaluator against closed forms: a linear-Gaussian latent model x = W z + b + noise, z ~ N(0, I).

With W's columns orthogonal the exact posterior is a diagonal Gaussian, so it fits the
evaluator's protocol as the proposal; log p(x), the posterior and I(x; z) are all closed form.
Batches are plain float tensors [B, P]: the evaluator passes them to the model untouched.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from textvae.evaluation import active_units, epoch_diagnostics, evaluate, iw_log_likelihood, mutual_information
from textvae.evaluation.protocol import LatentVariableModel, make_generator
from textvae.types import LOG_2PI, Posterior

F64 = torch.float64


class LinearGaussian:
    """p(z) = N(0, I_D), p(x|z) = N(W z + b, s^2 I_P) with W = U diag(scales), U orthonormal columns."""

    def __init__(self, scales: list[float], obs_dim: int = 6, noise_std: float = 0.5, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.latent_dim = len(scales)
        u, _ = torch.linalg.qr(torch.randn(obs_dim, self.latent_dim, generator=g, dtype=F64))
        self.scales = torch.tensor(scales, dtype=F64)
        self.w = u * self.scales
        self.b = torch.randn(obs_dim, generator=g, dtype=F64)
        self.noise_var = noise_std**2
        self.post_var = 1.0 / (1.0 + self.scales**2 / self.noise_var)

    # ---- the evaluator's protocol --------------------------------------------------------
    def posterior(self, x: Tensor) -> Posterior:
        mu = self.post_var * ((x - self.b) @ self.w) / self.noise_var
        return Posterior(mu, self.post_var.log().expand_as(mu))

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        mean = z @ self.w.T + self.b
        return -0.5 * (((x.unsqueeze(1) - mean) ** 2) / self.noise_var + math.log(self.noise_var) + LOG_2PI).sum(-1)

    def log_prior(self, z: Tensor) -> Tensor:
        return -0.5 * (z**2 + LOG_2PI).sum(-1)

    # ---- ground truth --------------------------------------------------------------------
    def sample(self, n: int, seed: int = 1) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.latent_dim, generator=g, dtype=F64)
        noise = torch.randn(n, self.b.numel(), generator=g, dtype=F64)
        return z @ self.w.T + self.b + math.sqrt(self.noise_var) * noise

    def log_marginal(self, x: Tensor) -> Tensor:
        cov = self.w @ self.w.T + self.noise_var * torch.eye(self.b.numel(), dtype=F64)
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x)

    def mutual_information(self) -> float:
        return 0.5 * torch.log1p(self.scales**2 / self.noise_var).sum().item()


class ShiftedProposal(LinearGaussian):
    """The same generative model with a deliberately wrong (shifted, widened) Gaussian proposal."""

    def posterior(self, x: Tensor) -> Posterior:
        exact = super().posterior(x)
        return Posterior(exact.mu + 0.3, exact.logvar + math.log(1.5))


def batches_of(x: Tensor, size: int) -> list[Tensor]:
    return list(x.split(size))


def one_target(x: Tensor) -> int:
    return x.size(0)


def test_linear_gaussian_implements_the_protocol():
    assert isinstance(LinearGaussian([1.0]), LatentVariableModel)


@pytest.mark.parametrize("samples", [1, 7, 50])
def test_iw_nll_with_the_exact_posterior_is_exact_for_any_k(samples):
    model = LinearGaussian([2.0, 1.0, 0.5])
    x = model.sample(60)
    # A tiny token budget forces several sample passes per batch (the streaming log-sum-exp).
    log_px = iw_log_likelihood(model, batches_of(x, 16), samples=samples, max_tokens=40, count_targets=one_target)
    assert torch.allclose(log_px, model.log_marginal(x), atol=1e-4, rtol=0)


def test_iw_nll_with_a_wrong_proposal_is_an_upper_bound_converging_to_the_truth():
    model = ShiftedProposal([2.0, 1.0, 0.5])
    x = model.sample(400)
    true_nll = -model.log_marginal(x)
    gaps, errors = [], []
    for samples in (1, 10, 100, 2000):
        nll = -iw_log_likelihood(model, batches_of(x, 100), samples=samples, seed=samples, count_targets=one_target)
        diff = nll - true_nll
        gaps.append(diff.mean().item())
        errors.append(diff.std().item() / math.sqrt(len(diff)))
    # Upper bound: every gap is positive beyond Monte-Carlo error, and it shrinks as K grows ...
    assert all(gap > -3 * err for gap, err in zip(gaps, errors))
    assert gaps[0] > 10 * errors[0]
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3]
    # ... to the truth within Monte-Carlo error.
    assert abs(gaps[3]) < 3 * errors[3] + 1e-3


def test_whole_set_mi_matches_the_analytic_mutual_information():
    model = LinearGaussian([2.0, 1.0, 0.5])
    x = model.sample(4000)
    posteriors = [model.posterior(b) for b in batches_of(x, 32)]
    estimate = mutual_information(posteriors, "whole-set", make_generator(0, torch.device("cpu")))
    truth = model.mutual_information()  # 2.57 nats, well below log N = 8.3
    assert abs(estimate - truth) < 0.05


def test_per_batch_mi_is_capped_at_log_batch_size():
    model = LinearGaussian([8.0, 8.0, 8.0])  # I(x; z) = 8.3 nats > log 32
    x = model.sample(6400)
    posteriors = [model.posterior(b) for b in batches_of(x, 32)]
    generator = make_generator(0, torch.device("cpu"))
    per_batch = mutual_information(posteriors, "per-batch", generator)
    whole_set = mutual_information(posteriors, "whole-set", generator)
    assert model.mutual_information() > 8
    # Posteriors this sharp barely overlap, so each term is log 32 plus noise of sd sqrt(D / 2).
    assert abs(per_batch - math.log(32)) < 0.06
    assert whole_set > per_batch + 3  # the whole-set estimator's cap is log 6400 = 8.8


def test_mi_estimators_agree_with_the_analytic_value_for_a_small_mi():
    model = LinearGaussian([0.4, 0.2])  # 0.31 nats: per-batch bias is small here
    x = model.sample(4000)
    posteriors = [model.posterior(b) for b in batches_of(x, 32)]
    generator = make_generator(0, torch.device("cpu"))
    truth = model.mutual_information()
    assert abs(mutual_information(posteriors, "whole-set", generator) - truth) < 0.03
    assert abs(mutual_information(posteriors, "per-batch", generator) - truth) < 0.05


def test_unknown_mi_estimator_is_rejected():
    model = LinearGaussian([1.0])
    with pytest.raises(ValueError, match="per-batch"):
        evaluate(model, [model.sample(4)], mi_estimator="batch", count_targets=one_target)


def test_active_units_count_dimensions_by_the_unbiased_variance_of_posterior_means():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(50, generator=g, dtype=F64)
    base = (base - base.mean()) / base.std()  # unbiased variance exactly 1 (up to rounding)
    mu = torch.stack([base * 3.0, base * 0.2, base * 0.1, base * 0.05, torch.zeros(50, dtype=F64)], dim=1)
    count, variances = active_units(mu, threshold=0.01)
    expected = mu.var(dim=0, correction=1)
    assert torch.equal(variances, expected)
    assert count == int((expected >= 0.01).sum())
    assert count in (2, 3)  # dimension 2 sits at 0.01 up to rounding: the threshold decides
    assert active_units(mu, threshold=variances[2].item())[0] == 3  # inclusive >=
    assert active_units(mu, threshold=variances[2].item() * (1 + 1e-12))[0] == 2


def test_monte_carlo_kl_matches_the_closed_form():
    # LinearGaussian has no ``prior`` attribute, so the evaluator estimates KL by Monte Carlo.
    model = LinearGaussian([2.0, 1.0, 0.5])
    x = model.sample(500)
    result = epoch_diagnostics(model, batches_of(x, 50), kl_samples=200, count_targets=one_target)
    closed_form = model.posterior(x).kl_standard_normal().sum(1).mean().item()
    assert result["kl_dims"] is None
    assert abs(result["kl"] - closed_form) < 0.02


def test_evaluate_on_the_linear_gaussian_model():
    model = LinearGaussian([2.0, 1.0, 0.5])
    x = model.sample(300)
    result = evaluate(model, batches_of(x, 32), iw_samples=20, count_targets=one_target)
    true_nll = -model.log_marginal(x).mean().item()
    assert result["nll"] == pytest.approx(true_nll, abs=1e-6)
    assert result["iw_ppl"] == pytest.approx(math.exp(true_nll), rel=1e-6)
    # With the exact posterior the single-sample -ELBO is unbiased for -log p(x).
    assert result["elbo"] == pytest.approx(true_nll, abs=0.3)
    assert result["elbo"] == pytest.approx(result["rec"] + result["kl"])
    assert result["kl_estimator"] == "monte-carlo"
    assert result["mi_estimator"] == "whole-set"
    assert (result["n_sentences"], result["n_targets"], result["iw_samples"]) == (300, 300, 20)
    assert result["au"] == 3 and len(result["au_variances"]) == 3
