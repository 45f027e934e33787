"""Each anti-collapse mechanism's defining invariant, checked on hand-made posteriors and tiny models."""

from __future__ import annotations

import math

import pytest
import torch

from textvae.config import RunConfig
from textvae.errors import ConfigError
from textvae.models import build_model
from textvae.strategies import STRATEGIES
from textvae.strategies.cyclical import cyclical_weight
from textvae.strategies.delta_vae import variance_bounds
from textvae.strategies.free_bits import masked_kl
from textvae.strategies.infovae_mmd import kernel_matrix, mmd
from textvae.types import Batch, LossTerms, Objective, Posterior, StepContext

TRAIN = StepContext(training=True, kl_weight=1.0)
EVAL = StepContext(training=False, kl_weight=1.0)


def build(name: str, latent_dim: int = 4, **params):
    return STRATEGIES.build(name, params, latent_dim=latent_dim)


def tiny_model(strategies: dict, prior: dict | None = None, latent_dim: int = 4):
    cfg = RunConfig.from_dict({
        "model": {"embed_dim": 8, "enc_hidden": 8, "dec_hidden": 8, "latent_dim": latent_dim},
        "prior": prior or {"name": "standard-normal"},
        "strategies": strategies,
    })
    return build_model(cfg, 20)


def tiny_batch(b: int = 6, length: int = 6) -> Batch:
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, 20, (b, length), generator=g)
    tokens[:, 0], tokens[:, -1] = 1, 2
    return Batch(tokens, torch.full((b,), length))


def spread_posterior(b: int = 64, d: int = 4) -> Posterior:
    g = torch.Generator().manual_seed(1)
    return Posterior(3.0 * torch.randn(b, d, generator=g) + 5.0, 0.5 * torch.randn(b, d, generator=g))


# ---- cyclical --------------------------------------------------------------------------------------
@pytest.mark.parametrize("step, expected", [(0, 0.0), (5, 0.4), (12.5, 1.0), (20, 1.0), (25, 0.0), (30, 0.4),
                                            (99, 1.0), (100, 1.0), (130, 1.0)])
def test_cyclical_linear_schedule(step, expected):
    # 100 updates, 4 cycles of 25, ramp over the first 12.5 of each.
    assert cyclical_weight(step, 100, 4, 0.5) == pytest.approx(expected)


def test_cyclical_shapes_and_range():
    for shape in ("sigmoid", "cosine"):
        assert cyclical_weight(6.25, 100, 4, 0.5, shape) == pytest.approx(0.5)
        assert cyclical_weight(3, 100, 4, 0.5, shape) < cyclical_weight(3, 100, 4, 0.5, "linear")
    assert cyclical_weight(0, 100, 4, 0.5, "sigmoid") == pytest.approx(1 / (1 + math.exp(6)))
    assert cyclical_weight(5, 100, 4, 0.5, start=0.1, stop=0.9) == pytest.approx(0.1 + 0.8 * 0.4)


def test_cyclical_strategy_reads_the_context():
    strategy = build("cyclical", n_cycles=2, ratio=0.25)
    assert strategy.kl_weight(StepContext(step=55, total_steps=100)) == pytest.approx(0.4)  # 5 / 12.5
    with pytest.raises(ConfigError, match="ratio"):
        build("cyclical", ratio=0.0)


# ---- free bits ----------------------------------------------------------------------------------------
def free_bits_grad(mode: str, threshold: float, mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, LossTerms]:
    mu = mu.clone().requires_grad_(True)
    post = Posterior(mu, torch.zeros_like(mu))
    dims = post.kl_standard_normal()
    terms = LossTerms(rec=torch.zeros(mu.size(0)), kl=dims.sum(-1), kl_dims=dims, posterior=post, z=mu, n_targets=1)
    objective = Objective(rec=terms.rec, kl=terms.kl, kl_weight=1.0)
    build("free-bits", mode=mode, threshold=threshold).adjust(objective, terms, None, TRAIN)
    objective.total().backward()
    return mu.grad, dims.detach(), terms


def test_free_bits_per_dim_zero_gradient_below_threshold():
    mu = torch.tensor([[0.1, 1.0, -2.0], [0.5, 0.2, 0.0]])  # KL_d = mu^2 / 2
    grad, dims, terms = free_bits_grad("per-dim", 0.1, mu)
    free = dims <= 0.1
    assert free.any() and (~free).any()
    assert torch.all(grad[free] == 0) and torch.all(grad[~free] != 0)
    assert torch.allclose(terms.kl, dims.sum(-1)), "the logged KL stays the full one"


def test_free_bits_per_example_and_batch_masks():
    mu = torch.tensor([[0.1, 0.1], [2.0, 0.0]])  # KL(x) = 0.01 and 2.0
    grad, _, _ = free_bits_grad("per-example", 0.5, mu)
    assert torch.all(grad[0] == 0) and grad[1, 0] != 0
    grad, _, _ = free_bits_grad("batch", 0.5, mu)  # batch mean 1.005 > 0.5: everything counts
    assert grad[0, 0] != 0 and grad[1, 0] != 0
    grad, _, _ = free_bits_grad("batch", 2.0, mu)
    assert torch.all(grad == 0)


def test_free_bits_per_dim_batch_uses_the_batch_mean_of_each_dimension():
    dims = torch.tensor([[0.0, 0.3], [0.3, 0.3]])  # batch means 0.15 and 0.3
    assert torch.allclose(masked_kl(dims.sum(-1), dims, "per-dim-batch", 0.2), torch.tensor([0.3, 0.3]))
    assert torch.allclose(masked_kl(dims.sum(-1), dims, "per-dim", 0.2), torch.tensor([0.3, 0.6]))


def test_free_bits_per_dim_needs_an_analytic_kl():
    with pytest.raises(ConfigError, match="closed-form"):
        tiny_model({"free-bits": {"mode": "per-dim"}}, prior={"name": "decoupled"})
    tiny_model({"free-bits": {"mode": "per-example"}}, prior={"name": "decoupled"})


# ---- delta-VAE --------------------------------------------------------------------------------------------
def test_delta_vae_variance_bounds_solve_the_rate_equation():
    for delta in (0.01, 0.1, 0.15, 1.0):
        lo, hi = variance_bounds(delta)
        assert lo < 1 < hi
        for x in (lo, hi):
            assert math.log(x) - x + 2 * delta + 1 == pytest.approx(0.0, abs=1e-12)
    scipy_special = pytest.importorskip("scipy.special")
    c = 2 * 0.1 + 1
    lo, hi = variance_bounds(0.1)
    assert lo == pytest.approx(-scipy_special.lambertw(-math.exp(-c), 0).real, rel=1e-10)
    assert hi == pytest.approx(-scipy_special.lambertw(-math.exp(-c), -1).real, rel=1e-10)


def test_delta_vae_kl_is_at_least_the_committed_rate():
    strategy = build("delta-vae", latent_dim=32, delta=0.1)
    g = torch.Generator().manual_seed(0)
    raw = Posterior(20 * torch.randn(256, 32, generator=g), 20 * torch.randn(256, 32, generator=g))
    post = strategy.transform_posterior(raw, TRAIN)
    kl_dims = post.kl_standard_normal()
    assert torch.isfinite(kl_dims).all() and (post.mu >= 0).all()
    assert (kl_dims >= 0.1 - 1e-6).all()
    assert (kl_dims.sum(-1) >= 32 * 0.1 - 1e-4).all()
    assert torch.allclose(kl_dims, 0.1 + torch.relu(raw.mu) / 2, rtol=1e-4, atol=1e-5)


# ---- BN-VAE -----------------------------------------------------------------------------------------------
def test_bn_vae_kl_floor_over_a_batch():
    d, gamma = 4, 0.6
    strategy = build("bn-vae", latent_dim=d, gamma=gamma).train()
    raw = spread_posterior(d=d)
    post = strategy.transform_posterior(raw, TRAIN).detach()
    assert torch.allclose(post.logvar, raw.logvar)
    assert post.mu.pow(2).mean(0) == pytest.approx([gamma ** 2] * d, rel=1e-4)  # shift starts at 0
    assert post.kl_standard_normal().sum(-1).mean() >= 0.5 * d * gamma ** 2 * (1 - 1e-4)
    names = [n for n, _ in strategy.named_parameters()]
    assert names == ["shift"], "the scale is fixed, the shift learnable"


def test_bn_vae_fixed_shift_is_the_zero_information_row():
    strategy = build("bn-vae", latent_dim=32, gamma=0.0, shift=0.7).train()
    raw = spread_posterior(d=32)
    for mode in (TRAIN, EVAL):
        post = strategy.transform_posterior(Posterior(raw.mu, torch.zeros_like(raw.mu)), mode)
        assert torch.allclose(post.mu, torch.full_like(post.mu, 0.7))
        assert torch.allclose(post.kl_standard_normal().sum(-1), torch.tensor(32 * 0.49 / 2))
    assert list(strategy.parameters()) == []


def test_bn_vae_batch_of_one_and_eval_statistics():
    strategy = build("bn-vae", latent_dim=4).train()
    raw = spread_posterior(d=4)
    single = Posterior(raw.mu[:1], raw.logvar[:1])
    assert torch.equal(strategy.transform_posterior(single, TRAIN).mu, single.mu)
    strategy.transform_posterior(raw, TRAIN)
    strategy.eval()
    whole = strategy.transform_posterior(raw, EVAL).mu
    assert torch.allclose(strategy.transform_posterior(single, EVAL).mu, whole[:1]), "eval is per-example"


# ---- DU-VAE -----------------------------------------------------------------------------------------------
def test_du_vae_scale_has_rms_gamma_whatever_the_weight():
    strategy = build("du-vae", latent_dim=8, gamma=0.5).train()
    with torch.no_grad():
        strategy.weight.mul_(torch.linspace(0.1, 3.0, 8))
    assert strategy.scale().pow(2).mean().sqrt().item() == pytest.approx(0.5)
    post = strategy.transform_posterior(spread_posterior(d=8), TRAIN)
    expected = strategy.scale().detach() ** 2
    assert torch.allclose(post.mu.pow(2).mean(0), expected, rtol=1e-3)
    post.mu.sum().backward()
    assert strategy.weight.grad is not None and strategy.bias.grad is not None


def test_du_vae_floor_and_dropout_are_gated_on_the_full_kl_weight():
    strategy = build("du-vae", latent_dim=64, p_drop=0.2).train()
    raw = Posterior(torch.randn(256, 64), torch.zeros(256, 64))
    floor = 1 / (2 * math.pi * math.e)
    annealing = strategy.transform_posterior(raw, StepContext(training=True, kl_weight=0.99))
    assert torch.equal(annealing.logvar, raw.logvar)
    torch.manual_seed(0)
    full = strategy.transform_posterior(raw, TRAIN).logvar.exp()
    dropped = torch.isclose(full, torch.tensor(floor))
    kept = torch.isclose(full, torch.tensor(1 / 0.8 + floor))
    assert (dropped | kept).all()
    assert dropped.float().mean().item() == pytest.approx(0.2, abs=0.02)
    strategy.eval()
    for _ in range(2):
        assert torch.allclose(strategy.transform_posterior(raw, EVAL).logvar.exp(), torch.full((256, 64), 1 + floor))


# ---- Scale-VAE --------------------------------------------------------------------------------------------
def test_scale_vae_uses_batch_factors_then_the_previous_epoch_mean():
    strategy = build("scale-vae", latent_dim=4, des_std=0.7, f_epo=1).train()
    g = torch.Generator().manual_seed(0)
    batches = [Posterior(s * torch.randn(16, 4, generator=g), torch.zeros(16, 4)) for s in (0.01, 0.02, 0.05)]
    own = []
    for post in batches:
        scaled = strategy.decoder_posterior(post, StepContext(epoch=0))
        assert scaled.mu.std(0) == pytest.approx([0.7] * 4, rel=1e-5), "epoch < f_epo: the batch's own f"
        assert torch.equal(scaled.logvar, post.logvar)
        own.append(0.7 / post.mu.std(0))
    assert torch.allclose(strategy.prior_space_scale(), torch.stack(own).mean(0)), "eval before an epoch ended"
    strategy.on_epoch_end(StepContext(epoch=0, training=False))
    f_bar = torch.stack(own).mean(0)
    assert torch.allclose(strategy.f_bar, f_bar) and int(strategy.f_count) == 0
    later = strategy.decoder_posterior(batches[0], StepContext(epoch=1))
    assert torch.allclose(later.mu, f_bar * batches[0].mu), "epoch >= f_epo: last epoch's mean f"
    assert torch.allclose(strategy.decoder_posterior(batches[0], EVAL).mu, f_bar * batches[0].mu)
    assert int(strategy.f_count) == 1, "Algorithm 1 records f for every training batch"
    assert {"f_bar", "f_sum", "f_count", "epochs_averaged"} <= set(strategy.state_dict())


def test_scale_vae_factor_guards_and_gradient_option():
    constant = Posterior(torch.ones(8, 4), torch.zeros(8, 4))
    f = build("scale-vae", latent_dim=4, f_max=50.0).batch_factor(constant.mu)
    assert torch.equal(f, torch.full((4,), 50.0))
    mu = torch.randn(8, 4, requires_grad=True)
    assert not build("scale-vae", latent_dim=4).batch_factor(mu).requires_grad
    assert build("scale-vae", latent_dim=4, detach_f=False).batch_factor(mu).requires_grad
    population = build("scale-vae", latent_dim=4, std_estimator="population").batch_factor(mu)
    assert torch.allclose(population, 0.7 / (mu.std(0, correction=0) + 1e-8))


def test_scale_vae_model_kl_is_unscaled_and_eval_is_the_consistent_model():
    model = tiny_model({"scale-vae": {"des_std": 0.7}})
    model.scale_reading = "scaled-prior"
    batch = tiny_batch()
    with torch.no_grad():
        model.strategy.items[0].f_bar.fill_(3.0)
        model.strategy.items[0].epochs_averaged.fill_(1)
    model.train()
    torch.manual_seed(0)
    terms = model(batch, StepContext(epoch=0))
    raw = model.encoder(batch)
    assert torch.allclose(terms.kl, raw.kl_standard_normal().sum(-1), atol=1e-6), "KL on the unscaled q(z|x)"
    model.eval()
    with torch.no_grad():
        post = model.posterior(batch)
    assert torch.allclose(post.mu, raw.mu, atol=1e-6) and torch.allclose(post.logvar, raw.logvar - 2 * math.log(3.0))
    torch.manual_seed(0)
    z = model.sample_latent(4000)
    assert z.std(0) == pytest.approx([3.0] * 4, rel=0.08), "generation samples f_bar * z"


# ---- InfoVAE-MMD -------------------------------------------------------------------------------------------
def test_mmd_kernels_and_estimators():
    a, b = torch.zeros(1, 2), torch.tensor([[1.0, 1.0]])  # squared distance 2
    assert kernel_matrix(a, b, "gaussian", 2.0).item() == pytest.approx(math.exp(-1))
    assert kernel_matrix(a, b, "imq", 2.0).item() == pytest.approx(0.5)
    g = torch.Generator().manual_seed(0)
    p, q = torch.randn(300, 4, generator=g), torch.randn(300, 4, generator=g)
    assert mmd(p, p, "gaussian", 16.0, unbiased=False).abs().item() < 1e-6
    for kernel in ("gaussian", "imq"):
        for unbiased in (False, True):
            assert mmd(q + 1.0, p, kernel, 8.0, unbiased) > 10 * mmd(q, p, kernel, 8.0, unbiased).abs()


def test_infovae_weights_and_prior_samples_from_any_prior():
    for prior in ({"name": "standard-normal"}, {"name": "decoupled"}):
        model = tiny_model({"infovae-mmd": {"alpha": 0.5, "lam": 2.0}}, prior=prior)
        strategy = model.strategy.items[0]
        assert model.strategy.kl_weight(TRAIN) == pytest.approx(0.5)
        batch = tiny_batch()
        terms = model(batch, TRAIN)
        objective = model.strategy.objective(terms, batch, TRAIN)
        weight, term = objective.extras["mmd"]
        assert weight == pytest.approx(1.5) and torch.isfinite(term) and term.requires_grad
        assert strategy.bandwidth == 16.0
    with pytest.raises(ConfigError, match="alpha"):
        build("infovae-mmd", alpha=1.5)
