"""Scale-VAE's two evaluation readings, each scoring its own generative model (checked against
a direct computation), in evaluation, generation and the eval CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from textvae.config import RunConfig
from textvae.data import Vocab, encode_texts, make_batches
from textvae.evaluation import evaluate
from textvae.models import build_model
from textvae.training import train
from textvae.types import Posterior

# ---- the two readings against a direct computation ----------------------------------------------------------
WORDS = "a b c d e f g h".split()


def tiny_scale_model(reading: str, centre: bool, latent_dim: int = 1, seed: int = 0, f: float = 3.0):
    cfg = RunConfig.from_dict({
        "model": {"embed_dim": 8, "enc_hidden": 8, "dec_hidden": 8, "latent_dim": latent_dim, "init": "pytorch"},
        "strategies": {"scale-vae": {"des_std": 0.7, "centre": centre}},
        "eval": {"scale_reading": reading},
    })
    torch.manual_seed(seed)
    model = build_model(cfg, len(WORDS) + 4).eval()
    s = model.strategy.items[0]
    with torch.no_grad():
        s.f_bar.fill_(f)
        s.m_bar.fill_(0.4)
        s.epochs_averaged.fill_(1)
    return model


def tiny_batches(n: int = 6):
    vocab = Vocab.build([WORDS])
    texts = [" ".join(WORDS[(i + j) % 8] for j in range(2 + i % 3)) for i in range(n)]
    return make_batches(encode_texts(vocab, texts), 3, "padded")


def quadrature_log_px(model, batch, prior_std: float) -> torch.Tensor:
    """log of the integral of N(z; 0, prior_std^2) p(x | decoder z) over a fine grid (1-D latent)."""
    grid = torch.linspace(-12 * prior_std, 12 * prior_std, 4001)
    step = float(grid[1] - grid[0])
    z = grid.view(1, -1, 1).expand(batch.size, -1, -1)
    with torch.no_grad():
        log_lik = model.decoder.log_likelihood(batch, z)
    log_prior = -0.5 * (grid / prior_std) ** 2 - math.log(prior_std * math.sqrt(2 * math.pi))
    return torch.logsumexp(log_lik + log_prior + math.log(step), dim=1)


@pytest.mark.parametrize("centre", [False, True])
@pytest.mark.parametrize("reading", ["scaled-posterior", "scaled-prior"])
def test_each_reading_scores_its_own_generative_model(reading, centre):
    # f < 1 keeps the proposal (std sigma ~ 1 in decoder space) wider than the scaled prior (std f), so
    # the importance weights have finite variance and 3000 samples converge.
    f, m = 0.5, 0.4
    model = tiny_scale_model(reading, centre, f=f)
    batches = tiny_batches()
    results = evaluate(model, batches, iw_samples=3000, max_tokens=10**7)
    # scaled-posterior: p(z) = N(0, 1) on the decoder's z; scaled-prior: p(z) = N(0, f^2) on it
    # (with centring, N((1 - f) m, f^2), which the decoder space shift moves).
    exact = []
    for batch in batches:
        if reading == "scaled-posterior":
            exact.append(quadrature_log_px(model, batch, 1.0))
        else:
            shift = (1 - f) * m if centre else 0.0
            grid_model = _Shifted(model, shift)
            exact.append(quadrature_log_px(grid_model, batch, f))
    nll = -torch.cat(exact).mean().item()
    assert results["nll"] == pytest.approx(nll, abs=0.02)
    with torch.no_grad():
        raw = torch.cat([model.encoder(b).mu for b in batches])
        logvar = torch.cat([model.encoder(b).logvar for b in batches])
    scaled = m + f * (raw - m) if centre else f * raw

    def kl(mu, lv):
        return (0.5 * (mu.pow(2) + lv.exp() - 1 - lv)).sum(1).mean().item()

    assert results["kl_train"] == pytest.approx(kl(raw, logvar), rel=1e-4, abs=1e-6)
    if reading == "scaled-posterior":
        assert results["kl"] == pytest.approx(kl(scaled, logvar), rel=1e-4, abs=1e-6)
        assert results["au_variances"][0] == pytest.approx(scaled.var(0).item(), rel=1e-4)
    else:
        prior_mu = (scaled - ((1 - f) * m if centre else 0.0)) / f
        assert results["kl"] == pytest.approx(kl(prior_mu, logvar - 2 * math.log(f)), rel=1e-4, abs=1e-6)
        assert results["au_variances"][0] == pytest.approx(raw.var(0).item(), rel=1e-4)
    assert results["objective"] == pytest.approx(results["rec"] + results["kl_train"])
    assert results["au_unscaled"] == int(raw.var(0).item() >= 0.01)


class _Shifted(torch.nn.Module):
    """The decoder of ``model`` read at z + shift (the scaled-prior reading's decoder-space map)."""

    def __init__(self, model, shift: float):
        super().__init__()
        self.model, self.shift = model, shift
        self.decoder = self

    def log_likelihood(self, batch, z):
        return self.model.decoder.log_likelihood(batch, z + self.shift)


def test_scaled_posterior_reading_saturates_au_and_mi_for_a_collapsed_encoder():
    """An encoder whose means barely move (std 1e-4) and sigma = 1: almost nothing about x is in z
    (the unscaled MI is ~0). Scaled to des_std by f, the scaled posterior has AU = D and MI of order
    D/2 log(1 + des_std^2) anyway."""
    d, n = 4, 400
    model = tiny_scale_model("scaled-posterior", centre=False, latent_dim=d)
    g = torch.Generator().manual_seed(1)
    table = 1e-4 * torch.randn(n, d, generator=g)

    vocab = Vocab.build([WORDS])
    texts = [" ".join(WORDS[(i >> (3 * k)) % 8] for k in range(3)) for i in range(n)]  # all distinct
    split = encode_texts(vocab, texts)
    row_of = {tuple(ids): i for i, ids in enumerate(split.ids)}

    class Collapsed(torch.nn.Module):
        def forward(self, batch):
            rows = [row_of[tuple(batch.tokens[r, : int(batch.lengths[r])].tolist())] for r in range(batch.size)]
            return Posterior(table[rows], torch.zeros(batch.size, d))

    model.encoder = Collapsed()
    with torch.no_grad():
        model.strategy.items[0].f_bar.copy_(0.7 / table.std(0))
    batches = make_batches(split, 50, "padded")
    results = evaluate(model, batches, iw_samples=2)
    assert results["au"] == d and results["au_unscaled"] == 0
    assert results["mi_unscaled"] < 0.01
    assert results["mi"] > 0.8 * d * 0.5 * math.log(1 + 0.49)
    model.scale_reading = "scaled-prior"
    prior_reading = evaluate(model, batches, iw_samples=2)
    # AU counts means against a fixed threshold, so it depends on the reading; MI is invariant to
    # the per-dimension affine map between the readings, so the scaled-prior reading saturates it too.
    assert prior_reading["au"] == 0
    assert prior_reading["mi"] == pytest.approx(results["mi"], rel=1e-3)


def test_generation_follows_the_reading():
    for reading, std in (("scaled-posterior", 1.0), ("scaled-prior", 3.0)):
        model = tiny_scale_model(reading, centre=False, latent_dim=2)
        torch.manual_seed(0)
        assert model.sample_latent(4000).std(0) == pytest.approx([std] * 2, rel=0.08), reading


def test_eval_cli_scores_the_reading_asked_for(tiny_corpus, make_config, tmp_path):
    from typer.testing import CliRunner

    from textvae.cli.main import app

    run = tmp_path / "run"
    train(make_config(tiny_corpus, {"scale-vae": {}}, train={"epochs": 1, "progress": False}), run,
          evaluate_test=False)
    saved = {}
    for reading in ("scaled-posterior", "scaled-prior"):
        out = tmp_path / f"{reading}.json"
        result = CliRunner().invoke(app, ["eval", str(run), "--iw-samples", "3", "--no-progress",
                                          "--scale-reading", reading, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert "kl_train" in result.output
        saved[reading] = json.loads(out.read_text())
        assert saved[reading]["scale_reading"] == reading
    a, b = saved["scaled-posterior"], saved["scaled-prior"]
    assert a["kl_train"] == pytest.approx(b["kl_train"]) and a["rec"] == pytest.approx(b["rec"], rel=1e-4)
    assert a["kl"] != pytest.approx(b["kl"], rel=1e-3), "the scored models differ"
