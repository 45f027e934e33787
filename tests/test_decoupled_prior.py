"""The dpVAE decoupled prior: a RealNVP density over z with an exact inverse and log-determinant."""

from __future__ import annotations

import math

import pytest
import torch

from textvae import resolution
from textvae.config import RunConfig
from textvae.errors import ConfigError
from textvae.models import build_model
from textvae.priors import build_prior, standard_normal_log_prob
from textvae.strategies import Strategy
from textvae.types import Batch, Posterior, StepContext


def random_flow(latent_dim: int, blocks: int = 4, seed: int = 0, scale: float = 0.2):
    """A decoupled prior far from the identity (its zero-initialised last layers randomised)."""
    torch.manual_seed(seed)
    prior = build_prior({"name": "decoupled", "blocks": blocks, "hidden": 16, "layers": 2}, latent_dim)
    with torch.no_grad():
        for p in prior.parameters():
            p.normal_(0.0, scale)
    return prior


def test_registered_and_configurable():
    prior = build_prior({"name": "decoupled", "blocks": 3, "hidden": 8, "layers": 1}, 5)
    assert prior.registry_name == "decoupled"
    assert len(prior.blocks) == 3
    assert not prior.has_analytic_kl


@pytest.mark.parametrize("bad", [{"blocks": 0}, {"hidden": 0}, {"layers": -1}])
def test_bad_sizes_are_config_errors(bad):
    with pytest.raises(ConfigError, match=f"key 'prior.{next(iter(bad))}' must be >= "):
        build_prior({"name": "decoupled", **bad}, 4)


def test_unknown_key_is_config_error():
    with pytest.raises(ConfigError, match="depth"):
        resolution.from_dict({"prior": {"name": "decoupled", "depth": 3}})


def test_masks_alternate_and_cover_every_dimension():
    prior = build_prior({"name": "decoupled", "blocks": 4}, 5)
    masks = torch.stack([b.mask for b in prior.blocks])
    assert torch.equal(masks[0], 1 - masks[1]) and torch.equal(masks[0], masks[2])
    assert bool(((1 - masks).sum(0) > 0).all())  # every dimension is transformed by some block


@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_inverse_to_numerical_precision(latent_dim):
    prior = random_flow(latent_dim).double()
    z = torch.randn(64, latent_dim, dtype=torch.float64) * 3
    z0, _ = prior.to_base(z)
    assert not torch.allclose(z0, z)
    torch.testing.assert_close(prior.from_base(z0), z, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(prior.to_base(prior.from_base(z))[0], z, atol=1e-12, rtol=1e-12)


def test_inverse_float32():
    prior = random_flow(8)
    z = torch.randn(128, 8)
    torch.testing.assert_close(prior.from_base(prior.to_base(z)[0]), z, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("latent_dim", [2, 3, 4])
def test_logdet_matches_autograd_jacobian(latent_dim):
    prior = random_flow(latent_dim, seed=latent_dim).double()
    for z in torch.randn(5, latent_dim, dtype=torch.float64):
        jac = torch.autograd.functional.jacobian(lambda v: prior.to_base(v)[0], z)
        _, logabsdet = torch.linalg.slogdet(jac)
        torch.testing.assert_close(prior.to_base(z)[1], logabsdet, atol=1e-10, rtol=1e-10)


def test_log_prob_is_a_normalised_density():
    prior = random_flow(2, seed=3).double()
    grid = torch.linspace(-10, 10, 301, dtype=torch.float64)
    zz = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    cell = (grid[1] - grid[0]) ** 2
    mass = (prior.log_prob(zz).exp() * cell).sum().item()
    assert mass == pytest.approx(1.0, abs=2e-3)
    # and it is not N(0, I): the flow moved the mass
    assert not torch.allclose(prior.log_prob(zz), standard_normal_log_prob(zz))


def test_log_prob_any_leading_shape():
    prior = random_flow(3)
    z = torch.randn(4, 7, 3)
    flat = prior.log_prob(z.reshape(-1, 3)).reshape(4, 7)
    torch.testing.assert_close(prior.log_prob(z), flat)


def test_identity_at_initialisation():
    prior = build_prior({"name": "decoupled"}, 6)
    z = torch.randn(32, 6)
    z0, logdet = prior.to_base(z)
    assert torch.equal(z0, z) and torch.equal(logdet, torch.zeros(32))
    torch.testing.assert_close(prior.log_prob(z), standard_normal_log_prob(z))


def test_kl_estimate_matches_closed_form_when_g_is_identity():
    torch.manual_seed(0)
    prior = build_prior({"name": "decoupled", "blocks": 2}, 4)
    posterior = Posterior(torch.randn(3, 4), torch.randn(3, 4) * 0.5)
    n = 40_000
    z = posterior.sample(n)  # [3, n, 4]
    kl, dims = prior.kl(Posterior(posterior.mu.repeat_interleave(n, 0), posterior.logvar.repeat_interleave(n, 0)),
                        z.reshape(-1, 4))
    assert dims is None
    estimate = kl.view(3, n)
    closed = posterior.kl_standard_normal().sum(-1)
    stderr = estimate.std(1) / math.sqrt(n)
    assert bool(((estimate.mean(1) - closed).abs() < 4 * stderr + 1e-6).all())


def test_sampling_maps_base_samples_through_the_inverse():
    prior = random_flow(4)
    gen = torch.Generator().manual_seed(5)
    z = prior.sample(5000, generator=gen)
    z0 = torch.randn(5000, 4, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(z, prior.from_base(z0))
    torch.testing.assert_close(prior.to_base(z)[0], z0, atol=1e-5, rtol=1e-5)


def test_interpolation_in_base_space_round_trips_endpoints():
    prior = random_flow(4)
    a, b = torch.randn(2, 4).unbind(0)
    a0, b0 = prior.to_base(a)[0], prior.to_base(b)[0]
    path = prior.from_base(torch.stack([(1 - t) * a0 + t * b0 for t in torch.linspace(0, 1, 5)]))
    torch.testing.assert_close(path[0], a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(path[-1], b, atol=1e-5, rtol=1e-5)


def tiny_vae(prior: dict, strategies: dict | None = None, latent_dim: int = 4):
    config = RunConfig.from_dict({
        "model": {"embed_dim": 8, "enc_hidden": 12, "dec_hidden": 12, "latent_dim": latent_dim,
                  "dec_dropout_in": 0.0, "dec_dropout_out": 0.0},
        "prior": prior,
        "strategies": strategies or {"vae": {}},
    })
    return build_model(config, vocab_size=20)


def tiny_batch(seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(4, 20, (6, 7), generator=gen)
    tokens[:, 0], tokens[:, -1] = 1, 2
    return Batch(tokens, torch.full((6,), 7))


def test_text_vae_trains_the_flow_jointly():
    torch.manual_seed(0)
    model = tiny_vae({"name": "decoupled", "blocks": 2, "hidden": 8})
    terms = model(tiny_batch(), StepContext())
    assert terms.kl_dims is None and terms.kl.shape == (6,)
    (terms.rec.mean() + terms.kl.mean()).backward()
    flow_grads = [p.grad for p in model.prior.parameters()]
    assert all(g is not None for g in flow_grads)
    assert any(float(g.abs().sum()) > 0 for g in flow_grads)


def test_evaluator_protocol_uses_the_flow_density():
    model = tiny_vae({"name": "decoupled", "blocks": 2, "hidden": 8})
    with torch.no_grad():
        for p in model.prior.parameters():
            p.normal_(0.0, 0.3)
    z = torch.randn(3, 5, 4)
    z0, logdet = model.prior.to_base(z)
    torch.testing.assert_close(model.log_prior(z), standard_normal_log_prob(z0) + logdet)
    torch.manual_seed(1)
    latent = model.sample_latent(7)
    torch.manual_seed(1)
    torch.testing.assert_close(latent, model.prior.from_base(torch.randn(7, 4)))


def test_checkpoint_round_trip(tmp_path):
    model = tiny_vae({"name": "decoupled", "blocks": 3, "hidden": 8})
    with torch.no_grad():
        for p in model.prior.parameters():
            p.normal_(0.0, 0.3)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    other = tiny_vae({"name": "decoupled", "blocks": 3, "hidden": 8})
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    z = torch.randn(4, 4)
    torch.testing.assert_close(other.log_prior(z), model.log_prior(z))


class NeedsAnalyticKL(Strategy):
    requires_analytic_kl = True
    registry_name = "needs-analytic"


def test_strategies_needing_a_closed_form_kl_refuse_the_decoupled_prior():
    model = tiny_vae({"name": "decoupled"})
    with pytest.raises(ConfigError, match="needs-analytic.*decoupled"):
        NeedsAnalyticKL(None, 4).attach(model)


def test_evaluator_runs_unchanged_and_reads_the_flow_density():
    from textvae.evaluation import evaluate, iw_log_likelihood

    torch.manual_seed(0)
    plain = tiny_vae({"name": "standard-normal"}).eval()
    flow = tiny_vae({"name": "decoupled", "blocks": 2, "hidden": 8}).eval()
    flow.load_state_dict({**plain.state_dict(), **{f"prior.{k}": v for k, v in flow.prior.state_dict().items()}})
    batches = [tiny_batch(0), tiny_batch(1)]

    def iw_nll(model):
        with torch.no_grad():
            return -iw_log_likelihood(model, batches, samples=20, generator=torch.Generator().manual_seed(3))

    torch.testing.assert_close(iw_nll(flow), iw_nll(plain))  # g is the identity at initialisation
    with torch.no_grad():
        for p in flow.prior.parameters():
            p.normal_(0.0, 0.3)
    assert not torch.allclose(iw_nll(flow), iw_nll(plain))
    results = evaluate(flow, batches, iw_samples=20, seed=3)
    assert results["kl_dims"] is None and results["kl"] > 0
    assert all(math.isfinite(results[k]) for k in ("nll", "elbo", "mi"))
