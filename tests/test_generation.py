import itertools

import pytest
import torch
from tiny_vae import save_run
from torch import nn

from textvae.data import Vocab
from textvae.errors import ConfigError
from textvae.generation import (
    DecodingConfig,
    decode,
    decode_latents,
    interpolate_texts,
    reconstruct_texts,
    sample_texts,
)
from textvae.generation.decoding import filter_logits
from textvae.models import build_model
from textvae.probing import encode_posteriors
from textvae.runs import load_run

WORDS = "the food was good bad great service staff".split()
VOCAB = Vocab(["<pad>", "<s>", "</s>", "<unk>"] + WORDS)
MODEL = {"embed_dim": 8, "enc_hidden": 16, "dec_hidden": 16, "latent_dim": 4, "init": "pytorch",
         "dec_dropout_in": 0.5, "dec_dropout_out": 0.5}


@pytest.fixture(params=["lstm", "skip"])
def model(request, make_config, tiny_corpus):
    """Every decoder variant: decoding and beam search must hold for each."""
    torch.manual_seed(0)
    return build_model(make_config(tiny_corpus, model={**MODEL, "decoder": request.param}), len(VOCAB)).eval()


def constant_logits(model, favourite: int) -> None:
    """Replace the output layer so every step's logits are the same, peaked at ``favourite``."""
    out = nn.Linear(model.decoder.out.in_features, len(VOCAB), bias=True)
    nn.init.zeros_(out.weight)
    with torch.no_grad():
        out.bias.zero_()
        out.bias[favourite] = 5.0
    model.decoder.out = out


@torch.no_grad()
def sequence_logprob(model, z, words, ended):
    """Teacher-forced log p(words [+ </s>] | z) of one hypothesis."""
    targets = words + ([VOCAB.eos_id] if ended else [])
    inputs = torch.tensor([[VOCAB.bos_id] + targets[:-1]])
    hidden, _ = model.decoder.hidden_states(inputs, z)
    logp = model.decoder.logits(hidden).log_softmax(-1)[0]
    return float(sum(logp[i, t] for i, t in enumerate(targets)))


def test_greedy_picks_the_argmax_at_every_step(model):
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    ids = decode(model.decoder, z, 3, VOCAB.bos_id, VOCAB.eos_id, DecodingConfig(max_length=6))
    for row, words in enumerate(ids):
        prefix = [VOCAB.bos_id]
        for w in words:
            hidden, _ = model.decoder.hidden_states(torch.tensor([prefix]), z[row : row + 1])
            assert int(model.decoder.logits(hidden[:, -1]).argmax()) == w
            prefix.append(w)


def test_beam_of_one_is_greedy_and_a_wide_beam_is_exact(model):
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(2))
    greedy = decode(model.decoder, z, 4, VOCAB.bos_id, VOCAB.eos_id, DecodingConfig(max_length=5))
    beam1 = decode(model.decoder, z, 4, VOCAB.bos_id, VOCAB.eos_id,
                   DecodingConfig(mode="beam", beam_size=1, max_length=5))
    assert beam1 == greedy
    # With max_length 1 there are V one-word sentences ending in </s> plus V*V truncated two-token
    # hypotheses; a beam as wide as all of them is exhaustive search.
    v = len(VOCAB)
    cfg = DecodingConfig(mode="beam", beam_size=v * v, max_length=1)
    beam = decode(model.decoder, z, 4, VOCAB.bos_id, VOCAB.eos_id, cfg)
    for row in range(4):
        zr = z[row : row + 1]
        candidates = [([], True)] + [([w], True) for w in range(v) if w != VOCAB.eos_id]
        candidates += [([a, b], False) for a, b in itertools.product(range(v), repeat=2)
                       if VOCAB.eos_id not in (a, b)]
        best_words, best_ended = max(candidates, key=lambda c: sequence_logprob(model, zr, *c))
        assert beam[row] == best_words[:1]


def test_decoding_stops_at_end_of_sentence_and_at_max_length(model):
    z = torch.zeros(2, 4)
    constant_logits(model, VOCAB.eos_id)
    for mode in ("greedy", "sample", "beam"):
        assert decode(model.decoder, z, 2, VOCAB.bos_id, VOCAB.eos_id, DecodingConfig(mode=mode)) == [[], []]
    food = VOCAB.stoi["food"]
    constant_logits(model, food)
    for mode in ("greedy", "beam"):
        out = decode(model.decoder, z, 2, VOCAB.bos_id, VOCAB.eos_id, DecodingConfig(mode=mode, max_length=7))
        assert out == [[food] * 7] * 2


def test_filter_logits_top_k_and_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2, top_p=1.0)).tolist() == [[False, False, True, True]]
    # p=0.8: 0.5 + 0.3 reaches it, so the nucleus is the first two words; p=0.81 needs a third.
    assert torch.isinf(filter_logits(logits, top_k=0, top_p=0.8)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_k=0, top_p=0.81)).tolist() == [[False, False, False, True]]
    assert torch.isinf(filter_logits(logits, top_k=0, top_p=0.1)).tolist() == [[False, True, True, True]]


def test_sampling_with_top_k_one_is_greedy_and_seeded(model):
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(4))
    greedy = decode(model.decoder, z, 5, VOCAB.bos_id, VOCAB.eos_id, DecodingConfig(max_length=8))
    top1 = decode(model.decoder, z, 5, VOCAB.bos_id, VOCAB.eos_id, DecodingConfig(mode="sample", top_k=1, max_length=8),
                  torch.Generator().manual_seed(0))
    assert top1 == greedy
    cfg = DecodingConfig(mode="sample", temperature=2.0, max_length=8)
    a = sample_texts(model, VOCAB, 12, cfg, seed=7, batch_size=5)
    assert a == sample_texts(model, VOCAB, 12, cfg, seed=7, batch_size=5)
    assert a != sample_texts(model, VOCAB, 12, cfg, seed=8, batch_size=5)
    assert len(a) == 12


def test_sample_texts_decodes_the_models_generation_latents(model, monkeypatch):
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(5))
    calls = []

    def fake_sample_latent(n, generator=None):
        calls.append(n)
        return z[:n]

    monkeypatch.setattr(model, "sample_latent", fake_sample_latent)
    out = sample_texts(model, VOCAB, 3, DecodingConfig(max_length=10), seed=0)
    assert calls == [3]
    assert out == decode_latents(model, VOCAB, z, DecodingConfig(max_length=10))


def test_greedy_and_beam_do_not_depend_on_the_batch_size(model):
    for cfg in (DecodingConfig(max_length=12), DecodingConfig(mode="beam", beam_size=3, max_length=12)):
        assert sample_texts(model, VOCAB, 9, cfg, seed=3, batch_size=9) == sample_texts(model, VOCAB, 9, cfg, seed=3,
                                                                                        batch_size=2)


def test_reconstruction_decodes_the_posterior_mean_in_decoder_space(model, monkeypatch):
    texts = ["the food was good", "bad staff", ""]
    mu = encode_posteriors(model, VOCAB, texts).mu
    scale = torch.tensor([2.0, 0.5, 1.0, 3.0])
    monkeypatch.setattr(model, "to_decoder_space", lambda z: z * scale)
    expected = decode_latents(model, VOCAB, mu * scale, DecodingConfig(max_length=10))
    assert reconstruct_texts(model, VOCAB, texts, DecodingConfig(max_length=10), batch_size=2) == expected


@pytest.mark.parametrize("prior", ["standard-normal", "decoupled"])
def test_interpolation_runs_in_base_space_between_the_two_means(make_config, tiny_corpus, prior):
    torch.manual_seed(0)
    model = build_model(make_config(tiny_corpus, model=MODEL, prior={"name": prior}), len(VOCAB)).eval()
    with torch.no_grad():  # make the flow far from the identity it starts as
        for p in model.prior.parameters():
            p.add_(0.3 * torch.randn_like(p))
    a, b = "the food was good", "bad service"
    cfg = DecodingConfig(max_length=10)
    path = interpolate_texts(model, VOCAB, a, b, steps=5, config=cfg)
    assert len(path) == 5
    assert [path[0], path[-1]] == reconstruct_texts(model, VOCAB, [a, b], cfg)
    mu = encode_posteriors(model, VOCAB, [a, b]).mu
    z0, _ = model.prior.to_base(mu)
    middle = model.prior.from_base(0.5 * (z0[0:1] + z0[1:2]))
    assert path[2] == decode_latents(model, VOCAB, middle, cfg)[0]
    with pytest.raises(ConfigError, match="steps >= 2"):
        interpolate_texts(model, VOCAB, a, b, steps=1)


def test_decoding_config_is_validated(model):
    z = torch.zeros(1, 4)
    for bad in (dict(temperature=0.0), dict(top_p=0.0), dict(top_k=-1), dict(beam_size=0), dict(mode="nucleus")):
        with pytest.raises(ConfigError):
            decode(model.decoder, z, 1, VOCAB.bos_id, VOCAB.eos_id, DecodingConfig(**bad))


def test_language_model_samples_without_a_latent(make_config, tiny_corpus):
    torch.manual_seed(0)
    lm = build_model(make_config(tiny_corpus, model={**MODEL, "kind": "lstm-lm"}), len(VOCAB)).eval()
    out = sample_texts(lm, VOCAB, 4, DecodingConfig(mode="sample", max_length=6), seed=1)
    assert len(out) == 4 and all(len(t.split()) <= 6 for t in out)
    with pytest.raises(ConfigError, match="without a latent"):
        reconstruct_texts(lm, VOCAB, ["the food"])


def test_generation_from_a_loaded_run(make_config, tiny_corpus, tmp_path):
    run = load_run(save_run(make_config(tiny_corpus, model=MODEL), tmp_path / "run"))
    texts = sample_texts(run.model, run.vocab, 5, DecodingConfig(mode="beam", beam_size=2, max_length=5), seed=0)
    assert len(texts) == 5
    assert all(w in run.vocab.stoi for t in texts for w in t.split())
