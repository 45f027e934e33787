"""The evaluator on the real models: tiny TextVAE / LSTM-LM on hand-made batches."""

from __future__ import annotations

import math

import pytest
import torch

from textvae.config import ModelConfig, RunConfig
from textvae.evaluation import epoch_diagnostics, evaluate, iw_log_likelihood
from textvae.evaluation.importance import plan_chunks
from textvae.models import build_model
from textvae.types import Batch

VOCAB = 40


def tiny_model(kind: str = "vae", seed: int = 0):
    torch.manual_seed(seed)
    config = RunConfig()
    config.model = ModelConfig(kind=kind, embed_dim=16, enc_hidden=16, dec_hidden=24, latent_dim=4, init="pytorch")
    return build_model(config, VOCAB)


def make_batch(lengths: list[int], seed: int = 0) -> Batch:
    """Sentences ``<s> w.. </s>`` of the given total lengths, right-padded with 0."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for row, length in enumerate(lengths):
        tokens[row, 0] = 1
        tokens[row, 1 : length - 1] = torch.randint(4, VOCAB, (length - 2,), generator=g)
        tokens[row, length - 1] = 2
    return Batch(tokens, torch.tensor(lengths))


def batches() -> list[Batch]:
    return [make_batch([5, 9, 3, 9, 2], seed=0), make_batch([4, 4, 4], seed=1), make_batch([12, 6, 7, 3], seed=2)]


def reference_log_likelihood(model, batch: Batch, z: torch.Tensor) -> torch.Tensor:
    """The training code path (nn.LSTM over padded inputs, full cross-entropy) with dropout off."""
    b, k = z.shape[:2]
    tokens = batch.tokens.repeat_interleave(k, dim=0)
    lengths = batch.lengths.repeat_interleave(k, dim=0)
    zs = z.reshape(b * k, -1) if model.latent_dim else None
    return -model.decoder.nll(tokens, lengths, zs).view(b, k)


@pytest.mark.parametrize("kind", ["vae", "lstm-lm"])
def test_eval_mode_log_likelihood_equals_the_training_path(kind):
    model = tiny_model(kind).eval()
    batch = make_batch([5, 9, 3, 9, 2])
    z = torch.randn(5, 7, model.latent_dim)
    with torch.no_grad():
        fast = model.log_likelihood(batch, z)
        reference = reference_log_likelihood(model, batch, z)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low_precision = model.log_likelihood(batch, z)
    assert fast.shape == (5, 7)
    assert torch.allclose(fast, reference, atol=1e-4, rtol=0)
    assert low_precision.dtype == torch.float32
    assert torch.allclose(low_precision, reference, atol=0.05, rtol=0)


def test_chunks_are_length_sorted_within_the_token_budget_and_cover_every_sentence():
    chunks = plan_chunks(batches(), samples=10, max_tokens=200, count_targets=Batch.n_targets, max_rows=40)
    positions = torch.cat([c.positions for c in chunks])
    assert sorted(positions.tolist()) == list(range(12))
    lengths = torch.cat([c.batch.lengths for c in chunks])
    assert lengths.tolist() == sorted(lengths.tolist(), reverse=True)
    for chunk in chunks:
        assert chunk.batch.size * chunk.samples_per_pass <= 40
        assert chunk.batch.n_targets() * chunk.samples_per_pass <= 200 or chunk.batch.size == 1
    assert len(chunks) > 1 and any(c.batch.size > 1 for c in chunks)


def test_lm_nll_is_exact_and_in_input_order_under_any_chunking():
    model = tiny_model("lstm-lm").eval()
    data = batches()
    with torch.no_grad():
        exact = torch.cat([model.decoder.nll(b.tokens, b.lengths, None) for b in data]).double()
        for max_tokens in (1, 25, 10_000):
            log_px = iw_log_likelihood(model, data, samples=500, max_tokens=max_tokens)
            assert torch.allclose(-log_px, exact, atol=1e-4, rtol=0)


def test_evaluate_lstm_lm_reports_its_exact_nll_and_no_latent():
    model = tiny_model("lstm-lm")
    result = evaluate(model, batches(), iw_samples=500)
    n_targets = sum(b.n_targets() for b in batches())
    assert result["iw_samples"] == 1
    assert result["kl"] == 0 and result["mi"] == 0 and result["au"] == 0 and result["au_variances"] == []
    assert result["nll"] == pytest.approx(result["elbo"], abs=1e-5)
    assert result["nll"] == pytest.approx(result["rec"], abs=1e-5)
    assert result["iw_ppl"] == pytest.approx(math.exp(result["nll"] * 12 / n_targets), rel=1e-6)
    assert result["ppl"] == pytest.approx(result["iw_ppl"], rel=1e-5)
    assert (result["n_sentences"], result["n_targets"]) == (12, n_targets)


def test_evaluate_text_vae_is_deterministic_and_restores_the_mode():
    model = tiny_model("vae").train()
    first = evaluate(model, batches(), iw_samples=30, max_tokens=100, seed=3)
    assert model.training
    second = evaluate(model, batches(), iw_samples=30, max_tokens=100, seed=3)
    assert first == second
    assert evaluate(model, batches(), iw_samples=30, max_tokens=100, seed=4)["nll"] != first["nll"]
    assert first["kl_estimator"] == "analytic" and len(first["kl_dims"]) == 4
    assert first["kl"] == pytest.approx(sum(first["kl_dims"]), rel=1e-5)
    assert first["elbo"] == pytest.approx(first["rec"] + first["kl"])
    assert len(first["au_variances"]) == 4


def test_evaluate_text_vae_iw_nll_is_tighter_than_the_elbo():
    model = tiny_model("vae")
    result = evaluate(model, batches(), iw_samples=200)
    # Untrained: q(z|x) ~ p(z); the IW bound with 200 samples sits below the -ELBO's mean.
    assert result["nll"] < result["elbo"]


def test_bfloat16_precision_stays_within_monte_carlo_noise():
    model = tiny_model("vae")
    full = evaluate(model, batches(), iw_samples=50, seed=0)
    low = evaluate(model, batches(), iw_samples=50, seed=0, precision="bfloat16")
    assert low["precision"] == "bfloat16"
    assert low["nll"] == pytest.approx(full["nll"], abs=0.01)


def test_low_precision_log_likelihoods_are_refused():
    model = tiny_model("vae").eval()
    original = model.log_likelihood
    model.log_likelihood = lambda batch, z: original(batch, z).bfloat16()
    with pytest.raises(TypeError, match="float32"):
        evaluate(model, batches(), iw_samples=5)


def test_epoch_diagnostics_draws_one_sample_per_sentence_and_no_importance_samples():
    model = tiny_model("vae")
    sample_counts = []
    original = model.log_likelihood

    def counting(batch, z):
        sample_counts.append(z.size(1))
        return original(batch, z)

    model.log_likelihood = counting
    result = epoch_diagnostics(model, batches(), mi_estimator="per-batch")
    assert sample_counts == [1, 1, 1]
    assert set(result) == {"rec", "kl", "elbo", "ppl", "kl_estimator", "kl_dims", "mi", "mi_estimator", "au",
                           "au_threshold", "au_variances"}
    assert result["mi_estimator"] == "per-batch"
    assert result["kl"] == pytest.approx(sum(result["kl_dims"]), rel=1e-5)
    assert result == epoch_diagnostics(model, batches(), mi_estimator="per-batch")
    assert set(epoch_diagnostics(model, batches(), full=False)) == {"rec", "kl", "elbo", "ppl", "kl_estimator"}


def test_progress_bar_is_shown_on_request_and_only_on_a_terminal(capsys, monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    evaluate(tiny_model("vae"), batches(), iw_samples=5, progress=True)
    err = capsys.readouterr().err
    # stderr is not a terminal here: no bars, no carriage returns (log lines, where the CLI's handler is on)
    assert "\r" not in err and "|" not in err and "/s]" not in err
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    evaluate(tiny_model("vae"), batches(), iw_samples=5, progress=True)
    assert "IW-NLL (K=5)" in terminal.getvalue()


def test_low_precision_probabilities_that_underflow_are_recomputed_in_float32():
    from textvae.models.decoder import _target_log_probs

    logits = torch.tensor([[0.0, -120.0, 2.0], [1.0, 1.0, 1.0]]).bfloat16()
    targets = torch.tensor([[1], [0]])
    exact = torch.log_softmax(logits.float(), dim=1).gather(1, targets).squeeze(1)
    got = _target_log_probs(logits, targets)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, exact, atol=0.003, rtol=0)


def test_an_empty_set_is_refused():
    with pytest.raises(ValueError, match="no sentences"):
        evaluate(tiny_model("vae"), [])


@pytest.mark.parametrize("pooled_rows", [1, 5, 10_000])
def test_pooled_vocabulary_products_match_the_training_path(monkeypatch, pooled_rows):
    from textvae.models import decoder

    monkeypatch.setattr(decoder._DeferredVocabularyTerms, "POOLED_ROWS", pooled_rows)
    model = tiny_model("vae").eval()
    batch = make_batch([5, 9, 3, 9, 2])
    z = torch.randn(5, 4, model.latent_dim)
    with torch.no_grad():
        assert torch.allclose(model.log_likelihood(batch, z), reference_log_likelihood(model, batch, z),
                              atol=1e-4, rtol=0)
