"""The decoder registry and Skip-VAE's decoder: z reaches the vocabulary projection, the evaluator's
scan equals the training path, resume is exact, and impossible combinations are refused."""

from __future__ import annotations

import json

import pytest
import torch
from test_evaluation_lstm import VOCAB, make_batch, reference_log_likelihood

from textvae import resolution
from textvae.config import ModelConfig, RunConfig
from textvae.errors import ConfigError
from textvae.models import DECODERS, SkipLSTMDecoder, build_model
from textvae.training import StopAfter, train


def tiny_model(decoder: str, seed: int = 0):
    torch.manual_seed(seed)
    config = RunConfig()
    config.model = ModelConfig(decoder=decoder, embed_dim=16, enc_hidden=16, dec_hidden=24, latent_dim=4,
                               init="pytorch")
    return build_model(config, VOCAB)


def test_decoders_are_registered_and_chosen_by_config():
    assert {"lstm", "skip"} <= set(DECODERS.names())
    assert type(tiny_model("skip").decoder) is SkipLSTMDecoder
    assert tiny_model("skip").decoder.out.in_features == 24 + 4
    assert tiny_model("lstm").decoder.out.in_features == 24


@pytest.mark.parametrize("decoder, reaches", [("skip", True), ("lstm", False)])
def test_z_reaches_the_output_layer_through_the_projection(decoder, reaches):
    """With z cut off from the LSTM (its input columns and the initial state zeroed), only the skip
    decoder's projection still carries z to the word distributions."""
    model = tiny_model(decoder).train()
    dec = model.decoder
    dec.dropout_in.p = dec.dropout_out.p = 0.0
    with torch.no_grad():
        dec.lstm.weight_ih_l0[:, dec.embed.embedding_dim:] = 0.0
        dec.init_cell.weight.zero_()
    batch = make_batch([5, 9, 3])
    z = torch.randn(3, 4, requires_grad=True)
    dec.nll(batch.tokens, batch.lengths, z).sum().backward()
    assert (z.grad.abs().sum() > 0) == reaches


@pytest.mark.parametrize("pooled_rows", [1, 5, 10_000])
def test_skip_fast_evaluation_equals_the_training_path(monkeypatch, pooled_rows):
    from textvae.models import decoder

    monkeypatch.setattr(decoder._DeferredVocabularyTerms, "POOLED_ROWS", pooled_rows)
    model = tiny_model("skip").eval()
    batch = make_batch([5, 9, 3, 9, 2])
    z = torch.randn(5, 7, model.latent_dim)
    with torch.no_grad():
        fast = model.log_likelihood(batch, z)
        reference = reference_log_likelihood(model, batch, z)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low_precision = model.log_likelihood(batch, z)
    assert torch.allclose(fast, reference, atol=1e-4, rtol=0)
    assert torch.allclose(low_precision, reference, atol=0.05, rtol=0)


@pytest.mark.parametrize("decoder", ["lstm", "skip"])
def test_decoding_steps_score_the_trained_likelihood(decoder):
    """Decoding and beam search read ``hidden_states`` + ``logits`` one step at a time; stepping
    through a sentence that way gives the training path's log-likelihood."""
    model = tiny_model(decoder).eval()
    batch = make_batch([7])
    z = torch.randn(1, model.latent_dim)
    with torch.no_grad():
        state, total = None, 0.0
        for t in range(6):
            hidden, state = model.decoder.hidden_states(batch.tokens[:, t : t + 1], z, state)
            total += float(model.decoder.logits(hidden[:, -1]).log_softmax(-1)[0, batch.tokens[0, t + 1]])
        expected = -float(model.decoder.nll(batch.tokens, batch.lengths, z)[0])
    assert abs(total - expected) < 1e-4


def test_lstm_lm_with_the_skip_decoder_is_one_line_naming_the_keys():
    with pytest.raises(ConfigError) as err:
        RunConfig.from_dict({"model": {"kind": "lstm-lm", "decoder": "skip"}})
    message = str(err.value)
    assert "\n" not in message and "model.decoder 'skip'" in message and "model.kind 'lstm-lm'" in message


def test_unknown_decoders_and_latent_free_skip_decoders_are_refused():
    with pytest.raises(ConfigError, match="model.decoder: unknown decoder 'skp' .*'skip'"):
        resolution.from_dict({"model": {"decoder": "skp"}})
    with pytest.raises(ConfigError, match="model.decoder 'skip' needs a latent variable"):
        SkipLSTMDecoder(10, 4, 4, 0, 0.0, 0.0)


def metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.pop("seconds")
    return lines


def test_skip_vae_resume_matches_the_straight_run(tiny_corpus, make_config, tmp_path):
    cfg = make_config(tiny_corpus, {"kl-annealing": {"kl_start": 0.5, "warm_up": 0.5}},
                      model={"decoder": "skip"}, eval={"iw_samples": 2})
    straight = train(cfg, tmp_path / "straight")
    assert train(cfg, tmp_path / "crashed", callbacks=[StopAfter(1)]) == {}
    resumed = train(cfg, tmp_path / "crashed", resume=True)
    assert metrics(tmp_path / "straight") == metrics(tmp_path / "crashed")
    assert straight == resumed
    assert json.loads((tmp_path / "crashed" / "config.json").read_text())["model"]["decoder"] == "skip"


@pytest.mark.parametrize("decoder", ["lstm", "skip"])
def test_word_dropout_hides_whole_words_in_training_only(decoder):
    model = tiny_model(decoder)
    dec = model.decoder
    dec.dropout_in.p = dec.dropout_out.p = 0.0
    with torch.no_grad():
        dec.embed.weight[-1].zero_()
    blank = VOCAB - 1
    inputs = torch.tensor([[0, 1, 2, 3, 4], [0, 4, 3, 2, 1]])
    z = torch.randn(2, 4)
    dec.eval()
    full, _ = dec.hidden_states(inputs, z)
    only_start, _ = dec.hidden_states(torch.tensor([[0] + [blank] * 4] * 2), z)
    dec.word_dropout = 1 - 1e-12  # every word after <s> hidden
    dec.train()
    hidden, _ = dec.hidden_states(inputs, z)
    torch.testing.assert_close(hidden, only_start)
    assert not torch.allclose(hidden[:, 1:], full[:, 1:])
    dec.eval()
    torch.testing.assert_close(dec.hidden_states(inputs, z)[0], full)


def test_word_dropout_is_a_model_setting():
    """Out-of-range values are refused with every numeric key (tests/test_config_ranges.py)."""
    config = RunConfig()
    config.model = ModelConfig(embed_dim=16, enc_hidden=16, dec_hidden=24, latent_dim=4, dec_word_dropout=0.3)
    assert build_model(config, VOCAB).decoder.word_dropout == 0.3
    config.model.kind = "lstm-lm"
    assert build_model(config, VOCAB).decoder.word_dropout == 0.3
