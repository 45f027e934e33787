"""Scale-VAE's two evaluation readings, its stabilising options, separate gradient clipping, the
labeled synthetic corpus and the mini-batch split modes."""

from __future__ import annotations

import json
import math

import pytest
import torch

from textvae.training import StopAfter
from textvae.config import RunConfig
from textvae.data import Split, Vocab, encode_texts, make_batches
from textvae.data.synthesize import SynthesisConfig, synthesize, write_synthetic_corpus
from textvae.errors import DataError
from textvae.evaluation import evaluate
from textvae.evaluation.information import mutual_information
from textvae.models import build_model
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


# ---- synthetic corpus ------------------------------------------------------------------------------------
def small_synthesis(seed: int) -> SynthesisConfig:
    return SynthesisConfig(seed=seed, components=4, vocab_size=30, length=5, hidden=8, embed=8,
                           n_train=40, n_valid=10, n_test=10)


def test_synthetic_corpus_is_deterministic_labeled_and_depends_on_the_seed(tmp_path):
    a, b, c = synthesize(small_synthesis(3)), synthesize(small_synthesis(3)), synthesize(small_synthesis(4))
    assert a == b and a != c
    texts, labels = a["train"]
    assert len(texts) == 40 and set(labels) <= set(range(4)) and len(set(labels)) > 1
    assert all(len(t.split()) == 5 for t in texts)
    folder = write_synthetic_corpus(small_synthesis(3), tmp_path / "syn")
    first = (folder / "train.txt").read_text().splitlines()[0]
    assert first == f"c{labels[0]}\t{texts[0]}"
    assert json.loads((folder / "synthesis.json").read_text())["seed"] == 3
    with pytest.raises(DataError, match="not empty"):
        write_synthetic_corpus(small_synthesis(3), folder)


def test_weight_scale_and_spacing_make_the_component_learnable_from_the_words():
    """The knobs the defaults were chosen by (eval/synthetic_corpus.py): weights of std 1 on close
    components leave the component barely readable from a bag of words; the defaults make it plain."""
    from eval_scripts import load_eval_script

    probe = load_eval_script("synthetic_corpus")

    def bow_accuracy(**knobs) -> float:
        return probe.bow_accuracy(SynthesisConfig(seed=1, components=4, vocab_size=200, hidden=32, embed=32,
                                                  n_train=600, n_valid=1, n_test=300, **knobs))

    weak, default = bow_accuracy(weight_scale=0.5, spacing=0.5), bow_accuracy()
    assert default > 0.9 and weak < default - 0.2, (weak, default)


def test_data_synthesize_cli(tmp_path):
    from typer.testing import CliRunner

    from textvae.cli.main import app

    result = CliRunner().invoke(app, ["data", "synthesize", str(tmp_path / "s"), "--components", "3",
                                      "--vocab-size", "20", "--length", "4", "--n-train", "12", "--n-valid", "3",
                                      "--n-test", "3", "--seed", "5"])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "s" / "valid.txt").read_text().splitlines()
    assert len(lines) == 3 and all(line.split("\t")[0] in {"c0", "c1", "c2"} for line in lines)


# ---- batch split modes ------------------------------------------------------------------------------------
def labeled_split(n: int = 60) -> Split:
    texts = [" ".join(WORDS[(i * 7 + j) % 8] for j in range(1 + i % 5)) for i in range(n)]
    return encode_texts(Vocab.build([WORDS]), texts, [f"c{i % 3}" for i in range(n)])


def groups(batches):
    return [sorted(b.index.tolist()) for b in batches]


def test_reshuffle_resplits_every_epoch():
    split = labeled_split()
    e0 = make_batches(split, 8, "padded", shuffle=True, seed=0, split_mode="reshuffle", split_seed=1)
    e1 = make_batches(split, 8, "padded", shuffle=True, seed=1, split_mode="reshuffle", split_seed=1)
    assert sorted(map(tuple, groups(e0))) != sorted(map(tuple, groups(e1)))


def test_fixed_split_keeps_the_random_batches_and_shuffles_their_order():
    split = labeled_split()
    e0 = make_batches(split, 8, "padded", shuffle=True, seed=0, split_mode="fixed", split_seed=1)
    e1 = make_batches(split, 8, "padded", shuffle=True, seed=1, split_mode="fixed", split_seed=1)
    assert sorted(map(tuple, groups(e0))) == sorted(map(tuple, groups(e1)))
    assert groups(e0) != groups(e1), "the order of the batches changes"
    assert groups(e0)[0] != list(range(8)), "random, not file order"
    other = make_batches(split, 8, "padded", shuffle=True, seed=0, split_mode="fixed", split_seed=2)
    assert sorted(map(tuple, groups(other))) != sorted(map(tuple, groups(e0)))


@pytest.mark.parametrize("mode", ["padded", "bucket"])
def test_by_label_batches_hold_one_label_and_stay_fixed(mode):
    split = labeled_split()
    e0 = make_batches(split, 8, mode, shuffle=True, seed=0, split_mode="by-label", split_seed=1)
    e1 = make_batches(split, 8, mode, shuffle=True, seed=1, split_mode="by-label", split_seed=1)
    assert sorted(i for g in groups(e0) for i in g) == list(range(len(split)))
    for b in e0:
        assert len({split.labels[i] for i in b.index.tolist()}) == 1
    assert sorted(map(tuple, groups(e0))) == sorted(map(tuple, groups(e1)))
    with pytest.raises(DataError, match="by-label"):
        make_batches(Split(split.texts, split.ids, None), 8, mode, shuffle=True, split_mode="by-label")


def test_evaluation_batches_ignore_the_split_mode():
    split = labeled_split()
    assert groups(make_batches(split, 8, "padded", split_mode="by-label")) == groups(make_batches(split, 8, "padded"))


# ---- exact resume for every new option ----------------------------------------------------------------------
def metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("seconds")
    return lines


RESUME_CASES = {
    "epoch-std+centre": ({"scale-vae": {"f_bar": "epoch-std", "centre": True}}, {}),
    "sample-std+centre": ({"scale-vae": {"f_bar": "sample-std", "centre": True, "sample_size": 5}}, {}),
    "median": ({"scale-vae": {"f_bar": "batch-median"}}, {}),
    "ema": ({"scale-vae": {"f_bar": "batch-ema"}}, {}),
    "per-module": ({"scale-vae": {}}, {"train": {"clip_scope": "per-module"}}),
    "fixed": ({"scale-vae": {}}, {"data": {"batching": "padded", "batch_split": "fixed"}}),
    "by-label": ({"bn-vae": {}}, {"data": {"batching": "padded", "batch_split": "by-label", "min_batch_size": 2}}),
    "scaled-prior": ({"scale-vae": {"centre": True}}, {"eval": {"scale_reading": "scaled-prior", "iw_samples": 2}}),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_interrupted_and_resumed_run_matches_the_straight_run(case, tiny_corpus, make_config, tmp_path):
    stack, sections = RESUME_CASES[case]
    cfg = make_config(tiny_corpus, stack, **{"train": {"epochs": 3, "progress": False}, **sections})
    straight = train(cfg, tmp_path / "straight")
    assert train(cfg, tmp_path / "crashed", callbacks=[StopAfter(1)]) == {}
    resumed = train(cfg, tmp_path / "crashed", resume=True)
    assert metrics(tmp_path / "straight") == metrics(tmp_path / "crashed"), case
    assert straight == resumed, case


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


def test_a_decoder_can_tell_the_component_from_the_first_words():
    """Why a VAE need not put the component into z on this corpus (eval/results/latent_clutter/README.md):
    the first tokens alone already give it away to a left-to-right reader."""
    from eval_scripts import load_eval_script

    corpus = load_eval_script("synthetic_corpus")
    assert corpus.first_words(2)("w5 w7 w9") == "0:w5 1:w7"
    config = SynthesisConfig(seed=1, components=4, vocab_size=200, hidden=32, embed=32, n_train=600, n_valid=1,
                             n_test=300)
    prefix = corpus.prefix_accuracies(synthesize(config))
    assert list(prefix) == ["1", "2", "3"]
    assert prefix["1"] > 0.7 and prefix["3"] > 0.9, prefix
