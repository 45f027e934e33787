"""Where the NLL goes (textvae.evaluation.latent_use): reconstruction with z from the posterior against
z from the prior, checked against closed forms of a linear-Gaussian model, and ``textvae eval --latent-use``."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_evaluation_cli import invoke, run_dir  # noqa: F401  (fixture)
from test_evaluation_ground_truth import LinearGaussian

from textvae.errors import ConfigError
from textvae.evaluation.latent_use import latent_use, nll_decomposition
from textvae.types import LOG_2PI


class IdentityPrior:
    def from_base(self, z0):
        return z0.double()


class SampledLinearGaussian(LinearGaussian):
    prior = IdentityPrior()

    def expected_rec(self, x, mean, var):
        """E[-log p(x|z)] for z ~ N(mean, diag var), in closed form (W's columns are orthogonal)."""
        residual = ((x - self.b - mean @ self.w.T) ** 2).sum(-1) + (self.scales**2 * var).sum(-1)
        return 0.5 * (residual / self.noise_var + self.b.numel() * (math.log(self.noise_var) + LOG_2PI))


def test_reconstructions_match_their_closed_forms():
    model = SampledLinearGaussian([2.0, 1.0, 0.3])
    x = model.sample(400)
    batches = list(x.split(50))
    out = latent_use(model, batches, samples=400, seed=3)
    post = model.posterior(x)
    rec_posterior = model.expected_rec(x, post.mu, model.post_var).mean().item()
    rec_prior = model.expected_rec(x, torch.zeros_like(post.mu), torch.ones(3, dtype=torch.float64)).mean().item()
    assert out["rec_posterior"] == pytest.approx(rec_posterior, rel=0.01)
    assert out["rec_prior"] == pytest.approx(rec_prior, rel=0.01)
    assert out["latent_use"] == pytest.approx(rec_prior - rec_posterior, rel=0.05)
    assert out["latent_use"] > 1.0 and out["samples"] == 400


def test_a_decoder_that_ignores_z_uses_nothing():
    model = SampledLinearGaussian([0.0, 0.0])
    out = latent_use(model, list(model.sample(64).split(16)), samples=5)
    assert out["latent_use"] == 0.0 and out["rec_posterior"] == out["rec_prior"]


class NoLatent:
    """A model without z (as the LSTM-LM): log p(x) = -0.5 * sum x^2 per row."""
    latent_dim = 0

    def posterior(self, x):
        from textvae.types import Posterior
        empty = x.new_zeros(x.size(0), 0)
        return Posterior(empty, empty)

    def log_likelihood(self, x, z):
        return (-0.5 * (x**2).sum(-1)).unsqueeze(1).expand(-1, z.size(1))


def test_a_model_without_latent_is_scored_once_by_its_exact_nll():
    x = torch.arange(12, dtype=torch.float64).view(4, 3)
    out = latent_use(NoLatent(), [x[:2], x[2:]], samples=7)
    assert out["rec_posterior"] == out["rec_prior"] == pytest.approx(0.5 * (x**2).sum(-1).mean().item())
    assert out["latent_use"] == 0.0 and out["samples"] == 1


def test_nll_decomposition_adds_up():
    parts = nll_decomposition({"rec": 40.0, "kl": 4.0, "elbo": 44.0, "nll": 42.5})
    assert parts == {"rec": 40.0, "kl": 4.0, "iw_gain": 1.5}
    assert parts["rec"] + parts["kl"] - parts["iw_gain"] == 42.5


def test_bad_sample_counts_and_unsampleable_priors_are_refused():
    with pytest.raises(ConfigError, match="samples must be at least 1, got 0"):
        latent_use(SampledLinearGaussian([1.0]), [], samples=0)
    with pytest.raises(ConfigError, match="needs a model whose prior can be sampled"):
        latent_use(LinearGaussian([1.0]), [torch.zeros(2, 6, dtype=torch.float64)])


def test_eval_latent_use_writes_the_split_and_the_gap(run_dir):  # noqa: F811
    out = run_dir / "use.json"
    result = invoke("eval", run_dir, "--limit", "8", "--iw-samples", "5", "--latent-use", "3", "--no-progress",
                    "--out", out)
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["rec"] + saved["kl"] - saved["iw_gain"] == pytest.approx(saved["nll"])
    assert saved["latent_use"] == pytest.approx(saved["rec_prior"] - saved["rec_posterior"])
    assert saved["latent_use_samples"] == 3 and "latent_use" in result.output
    plain = run_dir / "plain.json"
    assert invoke("eval", run_dir, "--limit", "8", "--iw-samples", "5", "--no-progress", "--out", plain).exit_code == 0
    assert "rec_prior" not in json.loads(plain.read_text())  # only on request
