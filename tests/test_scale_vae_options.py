"""Scale-VAE's stabilising options (centring, pooled, median and EMA factors, the end-of-epoch
sample), each changing only what it claims, and its model selection on the objective."""

from __future__ import annotations

import pytest
import torch
from test_resume_options import metrics

from textvae.resolution import resolve_config
from textvae.strategies import STRATEGIES
from textvae.training import train
from textvae.types import Posterior, StepContext

EVAL = StepContext(training=False)


def build(latent_dim: int = 3, **params):
    return STRATEGIES.build("scale-vae", params, latent_dim=latent_dim).train()


def posts(n_batches: int = 4, b: int = 8, d: int = 3, seed: int = 0, offset: float = 2.0):
    g = torch.Generator().manual_seed(seed)
    return [Posterior(offset + (0.01 + 0.05 * i) * torch.randn(b, d, generator=g), torch.zeros(b, d))
            for i in range(n_batches)]



# ---- stabilising options: each changes only what it claims ------------------------------------------------
def test_centring_keeps_the_batch_mean_and_sets_the_spread():
    plain, centred = build(des_std=0.7), build(des_std=0.7, centre=True)
    post = posts()[1]
    a = plain.decoder_posterior(post, StepContext(epoch=0)).mu
    c = centred.decoder_posterior(post, StepContext(epoch=0)).mu
    assert torch.allclose(c.mean(0), post.mu.mean(0), atol=1e-5), "centring keeps the encoder's mean"
    assert torch.allclose(c.std(0), a.std(0), rtol=1e-5) and c.std(0) == pytest.approx([0.7] * 3, rel=1e-5)
    assert not torch.allclose(a.mean(0), post.mu.mean(0), atol=1e-2), "uncentred: the mean is scaled by f"


def test_epoch_std_factor_is_des_std_over_the_pooled_std_and_centre_uses_the_pooled_mean():
    s = build(des_std=0.7, f_bar="epoch-std", centre=True)
    batches = posts()
    for post in batches:
        s.decoder_posterior(post, StepContext(epoch=0))
    s.on_epoch_end(EVAL)
    pooled = torch.cat([p.mu for p in batches])
    assert torch.allclose(s.f_bar, 0.7 / pooled.std(0), rtol=1e-5)
    assert torch.allclose(s.m_bar, pooled.mean(0), atol=1e-6)
    later = s.decoder_posterior(batches[0], StepContext(epoch=1)).mu
    assert torch.allclose(later, s.m_bar + s.f_bar * (batches[0].mu - s.m_bar), atol=1e-5)
    assert torch.allclose(s.prior_space_shift(), (1 - s.f_bar) * s.m_bar)


def test_median_and_ema_factors():
    batches = posts(5)
    own = [0.7 / p.mu.std(0) for p in batches]
    median, ema, mean = build(f_bar="batch-median"), build(f_bar="batch-ema", ema_momentum=0.3), build()
    for s in (median, ema, mean):
        for post in batches:
            s.decoder_posterior(post, StepContext(epoch=0))
        s.on_epoch_end(EVAL)
    expected_ema = own[0]
    for f in own[1:]:
        expected_ema = 0.7 * expected_ema + 0.3 * f
    assert torch.allclose(median.f_bar, torch.stack(own).median(0).values, rtol=1e-5)
    assert torch.allclose(ema.f_bar, expected_ema, rtol=1e-5)
    assert torch.allclose(mean.f_bar, torch.stack(own).mean(0), rtol=1e-5)
    assert not torch.allclose(median.f_bar, mean.f_bar, rtol=1e-2)
    # The moving average carries over epochs; the median starts afresh.
    ema.decoder_posterior(batches[0], StepContext(epoch=1))
    assert torch.allclose(ema.f_ema, 0.7 * expected_ema + 0.3 * own[0], rtol=1e-5)


def test_selection_loss_is_the_objective_for_scale_vae_only():
    metrics = {"elbo": 10.0, "objective": 7.0}
    assert build().selection_loss(metrics, EVAL) == 7.0
    assert STRATEGIES.build("bn-vae", {}, latent_dim=3).selection_loss(metrics, EVAL) is None


def test_sample_std_measures_the_end_of_epoch_encoder_on_one_fixed_training_sample(tiny_corpus, make_config,
                                                                                 tmp_path):
    from textvae.training.trainer import Trainer

    cfg = make_config(tiny_corpus, {"scale-vae": {"f_bar": "sample-std", "centre": True, "sample_size": 5}},
                      train={"epochs": 2, "progress": False})
    trainer = Trainer(resolve_config(cfg), tmp_path / "run")
    sample = trainer.training_sample(5)
    assert sum(b.size for b in sample) == 5 and trainer.training_sample(5) is sample
    seen = []
    scale = trainer.model.strategy.items[-1]
    original = scale.on_epoch_sample
    scale.on_epoch_sample = lambda batches, ctx: (seen.append(batches), original(batches, ctx))
    for _ in range(2):
        trainer.run_epoch()
        trainer.state.epoch += 1
        trainer.model.eval()
        with torch.no_grad():
            mu = torch.cat([trainer.model.trained_posterior(b).mu for b in sample]).double()
        assert torch.allclose(scale.f_bar, (0.7 / (mu.std(0) + 1e-8)).float(), rtol=1e-4)
        assert torch.allclose(scale.m_bar, mu.mean(0).float(), atol=1e-6)
    assert [b.tokens.tolist() for b in seen[0]] == [b.tokens.tolist() for b in seen[1]], "the same sentences"
    assert not torch.equal(scale.f_bar, torch.ones_like(scale.f_bar))


def test_strategies_that_ask_for_no_sample_cost_no_encoding(tiny_corpus, make_config, tmp_path, monkeypatch):
    from textvae.training.trainer import Trainer

    for f_bar in ("batch-mean", "epoch-std"):
        trainer = Trainer(resolve_config(make_config(tiny_corpus, {"scale-vae": {"f_bar": f_bar}},
                                                     train={"epochs": 1, "progress": False})), tmp_path / f_bar)
        monkeypatch.setattr(trainer, "training_sample", lambda n: pytest.fail("sample drawn"))
        trainer.run_epoch()


def test_sample_size_must_hold_a_spread():
    from textvae.errors import ConfigError

    with pytest.raises(ConfigError, match="sample_size"):
        build(f_bar="sample-std", sample_size=1)


def test_scale_vae_run_selects_on_the_objective_and_reports_both_kls(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, {"scale-vae": {}}, train={"epochs": 3, "progress": False})
    results = train(cfg, tmp_path / "run")
    log = metrics(tmp_path / "run")
    objective = [e["valid"]["objective"] for e in log]
    assert results["best_epoch"] == 1 + objective.index(min(objective))
    assert results["scale_reading"] == "scaled-posterior"
    for key in ("kl_train", "mi_unscaled", "au_unscaled", "objective"):
        assert key in results
    assert "scale-vae/sum_log_f" in log[-1]["strategy"]
