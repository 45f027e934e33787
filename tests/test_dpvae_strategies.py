"""The dpVAE paper's regularisers: beta-VAE-B, beta-TCVAE and FactorVAE, each term against a direct computation."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from textvae.config import RunConfig
from textvae.errors import ConfigError
from textvae.models import build_model
from textvae.strategies import STRATEGIES, build_stack
from textvae.strategies.beta_tcvae import minibatch_weighted_sampling
from textvae.strategies.beta_vae_b import capacity
from textvae.strategies.factor_vae import permute_dims
from textvae.types import Batch, LossTerms, Posterior, StepContext


def tiny_vae(strategies: dict, prior: dict | None = None, latent_dim: int = 4):
    config = RunConfig.from_dict({
        "model": {"embed_dim": 8, "enc_hidden": 12, "dec_hidden": 12, "latent_dim": latent_dim,
                  "dec_dropout_in": 0.0, "dec_dropout_out": 0.0},
        "prior": prior or {"name": "standard-normal"},
        "strategies": strategies,
    })
    return build_model(config, vocab_size=20)


def tiny_batch(n: int = 6, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(4, 20, (n, 7), generator=gen)
    tokens[:, 0], tokens[:, -1] = 1, 2
    return Batch(tokens, torch.full((n,), 7))


def objective_for(model, batch: Batch, ctx: StepContext):
    ctx.kl_weight = model.strategy.kl_weight(ctx)
    terms = model(batch, ctx)
    return terms, model.strategy.objective(terms, batch, ctx)


def test_registered():
    assert {"beta-vae-b", "beta-tcvae", "factor-vae"} <= set(STRATEGIES.names())


# ---- beta-VAE-B -------------------------------------------------------------------------------

def test_capacity_schedule():
    assert capacity(0, 0.0, 10.0, 100) == pytest.approx(0.1)
    assert capacity(49, 0.0, 10.0, 100) == pytest.approx(5.0)
    assert capacity(99, 0.0, 10.0, 100) == pytest.approx(10.0)
    assert capacity(10_000, 2.0, 10.0, 100) == 10.0
    assert capacity(0, 2.0, 10.0, 0) == 10.0


def test_beta_vae_b_replaces_the_kl_term():
    torch.manual_seed(0)
    model = tiny_vae({"beta-vae-b": {"gamma": 7.0, "c_max": 3.0, "anneal_epochs": 2.0}})
    ctx = StepContext(step=9, steps_per_epoch=10)
    terms, objective = objective_for(model, tiny_batch(), ctx)
    c = 3.0 * 10 / 20
    expected = terms.rec.mean() + 7.0 * (terms.kl.mean() - c).abs()
    torch.testing.assert_close(objective.total(), expected)
    assert objective.logs["capacity"] == pytest.approx(c)


def test_beta_vae_b_evaluates_at_full_capacity_and_keeps_outer_kl_weight():
    torch.manual_seed(0)
    model = tiny_vae({"beta-vae": {"beta": 0.5}, "beta-vae-b": {"gamma": 4.0, "c_max": 2.0}})
    terms, objective = objective_for(model, tiny_batch(), StepContext(step=0, steps_per_epoch=10))
    c0 = capacity(0, 0.0, 2.0, 100)
    torch.testing.assert_close(objective.total(), terms.rec.mean() + 0.5 * 4.0 * (terms.kl.mean() - c0).abs())
    assert model.strategy.items[1].current_capacity(StepContext(training=False)) == 2.0


# ---- beta-TCVAE ---------------------------------------------------------------------------------

def direct_mws(z: torch.Tensor, post: Posterior, n_data: int):
    """Chen et al.'s estimator written as loops over samples and posteriors."""
    m, d = z.shape
    log_qz, log_prod = torch.empty(m), torch.empty(m)
    for i in range(m):
        joint = [Normal(post.mu[j], post.std[j]).log_prob(z[i]).sum() for j in range(m)]
        log_qz[i] = torch.logsumexp(torch.stack(joint), 0) - math.log(n_data * m)
        total = 0.0
        for k in range(d):
            marg = [Normal(post.mu[j, k], post.std[j, k]).log_prob(z[i, k]) for j in range(m)]
            total = total + torch.logsumexp(torch.stack(marg), 0) - math.log(n_data * m)
        log_prod[i] = total
    return log_qz, log_prod


def test_minibatch_weighted_sampling_against_loops():
    torch.manual_seed(0)
    post = Posterior(torch.randn(5, 3), torch.randn(5, 3) * 0.3)
    z = post.sample()
    log_qz, log_prod = minibatch_weighted_sampling(z, post, n_data=100)
    ref_qz, ref_prod = direct_mws(z, post, 100)
    torch.testing.assert_close(log_qz, ref_qz)
    torch.testing.assert_close(log_prod, ref_prod)


@pytest.mark.parametrize("prior", [{"name": "standard-normal"}, {"name": "decoupled", "blocks": 2, "hidden": 8}])
def test_beta_tcvae_objective_is_the_weighted_decomposition(prior):
    torch.manual_seed(0)
    model = tiny_vae({"beta-tcvae": {"alpha": 2.0, "beta": 6.0, "gamma": 0.5}}, prior=prior)
    if prior["name"] == "decoupled":
        with torch.no_grad():
            for p in model.prior.parameters():
                p.normal_(0.0, 0.2)
    ctx = StepContext(n_train=500)
    terms, objective = objective_for(model, tiny_batch(), ctx)
    z, post = terms.z, terms.posterior
    log_qz, log_prod = direct_mws(z, post, 500)
    log_q_zx = Normal(post.mu, post.std).log_prob(z).sum(-1)
    mi = (log_q_zx - log_qz).mean()
    tc = (log_qz - log_prod).mean()
    dw_kl = (log_prod - model.prior.log_prob(z)).mean()
    # With the KL the prior estimates by sampling, the split is exact per sample; the closed-form
    # KL of N(0, I) differs from the sampled one only in its expectation-preserving noise.
    kl_sampled = (log_q_zx - model.prior.log_prob(z)).mean()
    expected = terms.rec.mean() + 2.0 * mi + 6.0 * tc + 0.5 * dw_kl + 0.5 * (terms.kl.mean() - kl_sampled)
    torch.testing.assert_close(objective.total(), expected, rtol=1e-5, atol=1e-4)
    assert objective.logs["tc"] == pytest.approx(tc.item(), rel=1e-4, abs=1e-5)


def test_beta_tcvae_with_unit_weights_is_the_plain_elbo():
    torch.manual_seed(0)
    model = tiny_vae({"beta-tcvae": {"alpha": 1.0, "beta": 1.0, "gamma": 1.0}})
    terms, objective = objective_for(model, tiny_batch(), StepContext(n_train=100))
    torch.testing.assert_close(objective.total(), terms.rec.mean() + terms.kl.mean())


# ---- FactorVAE ----------------------------------------------------------------------------------

def factor_model(**params):
    defaults = {"disc_hidden": 16, "disc_layers": 2, "gamma": 3.0}
    return tiny_vae({"factor-vae": {**defaults, **params}})


def test_permute_dims_shuffles_each_column_independently():
    z = torch.arange(40.0).view(10, 4)
    perm = permute_dims(z, torch.Generator().manual_seed(0))
    for k in range(4):
        assert sorted(perm[:, k].tolist()) == z[:, k].tolist()
    assert not torch.equal(perm, z)


def test_factor_vae_term_and_no_gradient_into_the_discriminator():
    torch.manual_seed(0)
    model = factor_model()
    strategy = model.strategy.items[0]
    terms, objective = objective_for(model, tiny_batch(), StepContext())
    logits = strategy.discriminator(terms.z)
    tc = (logits[:, 0] - logits[:, 1]).mean()
    torch.testing.assert_close(objective.total(), terms.rec.mean() + terms.kl.mean() + 3.0 * tc)
    objective.total().backward()
    assert all(p.grad is None for p in strategy.discriminator.parameters())
    assert model.encoder.to_posterior.weight.grad is not None


def test_discriminator_parameters_are_auxiliary():
    model = factor_model()
    strategy = model.strategy.items[0]
    aux = {id(p) for p in strategy.auxiliary_parameters()}
    assert aux == {id(p) for p in strategy.discriminator.parameters()}
    vae_params = [p for p in model.parameters() if id(p) not in aux]
    assert len(vae_params) + len(aux) == len(list(model.parameters()))


def test_auxiliary_loss_trains_the_discriminator_to_detect_correlation():
    torch.manual_seed(0)
    strategy = factor_model(disc_lr=1e-2).strategy.items[0]
    optimizer = strategy.auxiliary_optimizer().build(strategy.auxiliary_parameters())
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["betas"] == (0.5, 0.9)
    source = torch.randn(256, 1)
    z = torch.cat([source, source + 0.05 * torch.randn(256, 1), torch.randn(256, 2)], dim=1)
    terms = LossTerms(rec=torch.zeros(256), kl=torch.zeros(256), kl_dims=None, posterior=None, z=z, n_targets=1)
    before = strategy.discriminator_loss(z).item()
    for _ in range(150):
        optimizer.zero_grad()
        strategy.auxiliary_loss(terms, StepContext()).backward()
        optimizer.step()
    after = strategy.discriminator_loss(z).item()
    assert before == pytest.approx(math.log(2), abs=0.05)
    assert after < 0.3
    assert strategy.log_scalars()["disc_loss"] < 0.3
    assert strategy.total_correlation(z).item() > 1.0  # the density-ratio TC estimate sees the dependence


def test_discriminator_optimiser_is_an_auxiliary_group_that_never_decays(tiny_corpus, make_config, tmp_path):
    from textvae.training import Trainer

    cfg = make_config(tiny_corpus, {"factor-vae": {"disc_hidden": 8, "disc_layers": 1}})
    trainer = Trainer(cfg, tmp_path / "run")
    group = trainer.groups["auxiliary/factor-vae"]
    assert {id(p) for p in group.params} == {id(p) for p in trainer.model.strategy.items[0].discriminator.parameters()}
    assert group.spec.kind == "adam" and not group.spec.decays
    assert "auxiliary/factor-vae" in trainer.groups.state_dict()
    before = group.optimizer
    trainer.groups.rebuild_decayed(trainer.model, cfg.train, 0.5)
    assert trainer.groups["auxiliary/factor-vae"].optimizer is before
    assert trainer.groups["encoder"].optimizer.param_groups[0]["lr"] == 0.5


def test_factor_vae_bad_sizes_are_config_errors():
    with pytest.raises(ConfigError, match="key 'strategies.factor-vae.disc_hidden' must be >= 1, got 0"):
        build_stack({"factor-vae": {"disc_hidden": 0}}, latent_dim=4)


@pytest.mark.parametrize("name", ["beta-vae-b", "beta-tcvae", "factor-vae"])
def test_each_composes_with_the_decoupled_prior(name):
    torch.manual_seed(0)
    params = {"factor-vae": {"disc_hidden": 8, "disc_layers": 1}}.get(name, {})
    model = tiny_vae({name: params}, prior={"name": "decoupled", "blocks": 2, "hidden": 8})
    terms, objective = objective_for(model, tiny_batch(), StepContext(n_train=50))
    objective.total().backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.prior.parameters())


# ---- InfoVAE (written elsewhere) with the decoupled prior ------------------------------------------

def test_infovae_prior_samples_go_through_the_inverse_flow():
    torch.manual_seed(0)
    model = tiny_vae({"infovae-mmd": {"prior_samples": 9}}, prior={"name": "decoupled", "blocks": 2, "hidden": 8})
    with torch.no_grad():
        for p in model.prior.parameters():
            p.normal_(0.0, 0.2)
    inverse = model.prior.from_base
    calls = []

    def recording_from_base(z0):
        calls.append(tuple(z0.shape))
        return inverse(z0)

    model.prior.from_base = recording_from_base
    terms, objective = objective_for(model, tiny_batch(), StepContext())
    assert (9, 4) in calls
    # alpha = 1 drops the KL: the flow learns from the MMD term alone, through its inverse
    objective.extras["mmd"][1].backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.prior.parameters())


def test_discriminator_update_accepts_low_precision_latents():
    strategy = factor_model(disc_layers=0).strategy.items[0]
    z = torch.randn(16, 4).to(torch.bfloat16)
    terms = LossTerms(rec=torch.zeros(16), kl=torch.zeros(16), kl_dims=None, posterior=None, z=z, n_targets=1)
    loss = strategy.auxiliary_loss(terms, StepContext())
    assert loss.dtype == torch.float32 and strategy.discriminator[0].weight.dtype == torch.float32
    loss.backward()
    assert strategy.discriminator[0].weight.grad.abs().sum() > 0
