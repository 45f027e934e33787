"""dpVAE latent diagnostics: aggregate posterior, sKL, leakage, low/high-posterior latents."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from textvae.config import RunConfig
from textvae.latent_metrics import (
    AggregatePosterior,
    default_thresholds,
    generation_log_density,
    high_posterior_latents,
    leakage_scores,
    leakage_table,
    low_posterior_latents,
    plot_leakage,
    symmetric_kl,
)
from textvae.models import build_model
from textvae.priors import standard_normal_log_prob
from textvae.types import Batch


def tiny_vae(prior: dict, latent_dim: int = 3):
    config = RunConfig.from_dict({
        "model": {"embed_dim": 8, "enc_hidden": 12, "dec_hidden": 12, "latent_dim": latent_dim,
                  "dec_dropout_in": 0.0, "dec_dropout_out": 0.0},
        "prior": prior,
    })
    model = build_model(config, vocab_size=20).eval()
    if prior["name"] == "decoupled":
        with torch.no_grad():
            for p in model.prior.parameters():
                p.normal_(0.0, 0.2)
    return model


def batches(n_batches: int = 3) -> list[Batch]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for b in range(n_batches):
        length = 5 + b
        tokens = torch.randint(4, 20, (4, length), generator=gen)
        tokens[:, 0], tokens[:, -1] = 1, 2
        out.append(Batch(tokens, torch.full((4,), length)))
    return out


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_aggregate_from_model_uses_the_eval_posterior():
    torch.manual_seed(0)
    model = tiny_vae({"name": "standard-normal"})
    bs = batches()
    agg = AggregatePosterior.from_model(model, bs)
    assert agg.size == 12
    torch.testing.assert_close(agg.mu[4:8], model.posterior(bs[1]).mu.detach())


def test_aggregate_log_prob_against_a_direct_mixture():
    torch.manual_seed(0)
    agg = AggregatePosterior(torch.randn(7, 3) * 2, torch.randn(7, 3) - 1)
    z = torch.randn(11, 3) * 3
    comps = Normal(agg.mu.unsqueeze(0), torch.exp(0.5 * agg.logvar).unsqueeze(0)).log_prob(z.unsqueeze(1)).sum(-1)
    expected = torch.logsumexp(comps, dim=1) - math.log(7)
    torch.testing.assert_close(agg.log_prob(z), expected)
    torch.testing.assert_close(agg.log_prob(z, chunk=2), expected)


def test_aggregate_sampling_moments():
    variances = torch.tensor([[0.25, 1.0], [0.25, 4.0]])
    agg = AggregatePosterior(torch.tensor([[-2.0, 0.0], [2.0, 1.0]]), torch.log(variances))
    z = agg.sample(200_000, generator=gen())
    torch.testing.assert_close(z.mean(0), torch.tensor([0.0, 0.5]), atol=0.03, rtol=0)
    # mixture variance = mean of variances + variance of means
    torch.testing.assert_close(z.var(0), torch.tensor([0.25 + 4.0, 2.5 + 0.25]), atol=0.05, rtol=0)


def test_skl_is_zero_when_q_equals_the_prior():
    model = tiny_vae({"name": "standard-normal"})
    agg = AggregatePosterior(torch.zeros(1, 3), torch.zeros(1, 3))
    out = symmetric_kl(model, agg, n_samples=1000, generator=gen())
    assert out["skl"] == pytest.approx(0.0, abs=1e-6)


def test_skl_matches_the_closed_form_for_a_shifted_gaussian():
    model = tiny_vae({"name": "standard-normal"})
    shift = torch.tensor([[1.0, -2.0, 0.5]])
    agg = AggregatePosterior(shift, torch.zeros(1, 3))
    out = symmetric_kl(model, agg, n_samples=20_000, generator=gen())
    closed = 0.5 * float(shift.pow(2).sum())  # each direction
    assert out["kl_q_p"] == pytest.approx(closed, abs=0.05)
    assert out["kl_p_q"] == pytest.approx(closed, abs=0.05)
    assert out["skl"] == pytest.approx(2 * closed, abs=0.1)


def test_skl_reads_the_decoupled_prior_density():
    model = tiny_vae({"name": "decoupled", "blocks": 2, "hidden": 8})
    agg = AggregatePosterior(torch.zeros(1, 3), torch.zeros(1, 3))
    out = symmetric_kl(model, agg, n_samples=5000, generator=gen(1))
    z = agg.sample(5000, generator=gen(1))
    expected_q_p = (agg.log_prob(z) - model.prior.log_prob(z)).mean().item()
    assert out["kl_q_p"] == pytest.approx(expected_q_p, rel=1e-5)
    assert out["skl"] > 0.01  # the flow is not the identity, so N(0, I) no longer matches it


def test_default_thresholds_are_in_units_of_the_base_log_density():
    t = default_thresholds(16)
    assert t == sorted(t)
    assert t[-1] == pytest.approx(-8 * (1 + math.log(2 * math.pi)))
    assert t[-2] == pytest.approx(t[-1] - math.sqrt(8))


def test_leakage_scores_against_a_direct_computation():
    model = tiny_vae({"name": "decoupled", "blocks": 2, "hidden": 8})
    torch.manual_seed(0)
    agg = AggregatePosterior(torch.randn(9, 3) * 2, torch.randn(9, 3) * 0.3 - 1)
    thresholds = [-3.0, -6.0, -12.0, -9.0]
    points = leakage_scores(model, agg, thresholds, n_samples=3000, generator=gen(2))
    z = agg.sample(3000, generator=gen(2))
    z0, _ = model.prior.to_base(z)
    log_base = standard_normal_log_prob(z0)
    gap = agg.log_prob(z) - log_base
    assert [p.threshold for p in points] == sorted(thresholds)
    fractions = [p.fraction for p in points]
    assert fractions == sorted(fractions)
    for p in points:
        inside = log_base < p.threshold
        assert p.fraction == pytest.approx(float(inside.float().mean()))
        if inside.any():
            assert p.score == pytest.approx(gap[inside].mean().item(), rel=1e-5)
        else:
            assert p.score is None
    assert leakage_table(points)[0].keys() == {"threshold", "fraction", "score"}


def test_generation_density_has_no_jacobian_term():
    model = tiny_vae({"name": "decoupled", "blocks": 2, "hidden": 8})
    z = torch.randn(5, 3)
    z0, logdet = model.prior.to_base(z)
    torch.testing.assert_close(generation_log_density(model.prior, z), standard_normal_log_prob(z0))
    assert not torch.allclose(logdet, torch.zeros(5))


def test_plot_leakage_writes_an_image(tmp_path):
    model = tiny_vae({"name": "standard-normal"})
    agg = AggregatePosterior(torch.randn(5, 3) * 3, torch.zeros(5, 3))
    points = leakage_scores(model, agg, n_samples=500, generator=gen())
    path = plot_leakage({"vae": points, "empty": []}, tmp_path / "sub" / "leak.png",
                        styles={"vae": {"color": "C3", "linestyle": "--"}})
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_low_posterior_latents_are_the_prior_samples_least_covered_by_q():
    model = tiny_vae({"name": "decoupled", "blocks": 2, "hidden": 8})
    agg = AggregatePosterior(torch.randn(6, 3), torch.full((6, 3), -2.0))
    z, log_q = low_posterior_latents(model, agg, n_candidates=400, n_keep=10, generator=gen(3))
    candidates = model.prior.sample(400, generator=gen(3))
    all_log_q = agg.log_prob(candidates)
    assert z.shape == (10, 3) and torch.all(log_q[:-1] <= log_q[1:])
    torch.testing.assert_close(log_q, torch.sort(all_log_q).values[:10])
    torch.testing.assert_close(agg.log_prob(z), log_q)


def test_high_posterior_latents_are_the_q_samples_least_likely_under_generation():
    model = tiny_vae({"name": "decoupled", "blocks": 2, "hidden": 8})
    agg = AggregatePosterior(torch.randn(6, 3) * 2, torch.full((6, 3), -1.0))
    z, log_base = high_posterior_latents(model, agg, n_candidates=300, n_keep=7, generator=gen(4))
    candidates = agg.sample(300, generator=gen(4))
    expected = torch.sort(generation_log_density(model.prior, candidates)).values[:7]
    torch.testing.assert_close(log_base, expected)
    torch.testing.assert_close(generation_log_density(model.prior, z), log_base)
