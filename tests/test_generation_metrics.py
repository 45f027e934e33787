import math
import random

import pytest
import sacrebleu
import torch

from textvae.data import Vocab, encode_texts
from textvae.generation.metrics import (
    distinct_n,
    diversity_metrics,
    gram_metrics,
    gram_n,
    lm_perplexity,
    ngram_entropy,
    reconstruction_bleu,
    self_bleu,
)
from textvae.models import build_model

TEXTS = ["a b a b", "a b c", ""]


def test_distinct_n_is_corpus_level():
    # unigrams: a b a b a b c -> 3 distinct / 7; bigrams: ab ba ab ab bc -> 3 distinct / 5
    assert distinct_n(TEXTS, 1) == pytest.approx(3 / 7)
    assert distinct_n(TEXTS, 2) == pytest.approx(3 / 5)
    assert math.isnan(distinct_n(["a", ""], 2))


def test_entropy_of_the_ngram_distribution_in_nats():
    p = [3 / 7, 3 / 7, 1 / 7]
    assert ngram_entropy(TEXTS, 1) == pytest.approx(-sum(q * math.log(q) for q in p))
    assert ngram_entropy(["x x x"], 1) == 0.0


def test_gram_n_counts_generated_occurrences_seen_in_the_reference():
    reference = ["a b x", "y c"]
    # bigrams of TEXTS: ab ba ab ab bc; only "a b" occurs in the reference: 3 of 5 occurrences.
    assert gram_n(TEXTS, reference, 2) == pytest.approx(3 / 5)
    # no n-gram spans two reference sentences and no boundary tokens are added
    assert gram_n(["x y"], reference, 2) == 0.0
    assert gram_n(["c"], reference, 1) == 1.0
    assert gram_metrics(TEXTS, reference, orders=(2,)) == {"gram-2": pytest.approx(3 / 5)}


def test_gram_n_reads_the_reference_once_as_a_stream():
    seen = []

    def reference():
        for line in ["a b", "b c", "c d"]:
            seen.append(line)
            yield line

    assert gram_n(["a b c"], reference(), 2) == 1.0
    assert seen == ["a b", "b c"]  # stops reading once every generated n-gram is found


def test_self_bleu_equals_sacrebleu_sentence_bleu_against_all_others():
    rng = random.Random(0)
    words = "a b c d e f".split()
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 9))) for _ in range(25)] + ["a b c d", "a b c d", ""]
    expected = sum(
        sacrebleu.sentence_bleu(t, texts[:i] + texts[i + 1 :], tokenize="none").score for i, t in enumerate(texts)
    ) / len(texts)
    assert self_bleu(texts) == pytest.approx(expected, abs=1e-9)
    assert math.isnan(self_bleu(["only one"]))


def test_reconstruction_bleu():
    refs = ["the food was good .", "the staff was nice"]
    assert reconstruction_bleu(refs, refs) == pytest.approx(100.0)
    assert reconstruction_bleu(["x y z w", "v u t s"], refs) == pytest.approx(0.0)


def test_diversity_metrics_names():
    out = diversity_metrics(TEXTS, orders=(1, 2))
    assert set(out) == {"dist-1", "dist-2", "ent-1", "ent-2", "self-bleu", "mean-length"}
    assert out["mean-length"] == pytest.approx(7 / 3)


def test_lm_perplexity_counts_end_of_sentence_and_matches_the_decoder_nll(make_config, tiny_corpus):
    vocab = Vocab(["<pad>", "<s>", "</s>", "<unk>"] + "the food was good".split())
    torch.manual_seed(0)
    cfg = make_config(tiny_corpus, model={"kind": "lstm-lm", "embed_dim": 8, "dec_hidden": 16, "init": "pytorch"})
    lm = build_model(cfg, len(vocab)).eval()
    texts = ["the food was good", "good", "", "food unknownword"]
    out = lm_perplexity(lm, vocab, texts, batch_size=3)
    split = encode_texts(vocab, texts)
    with torch.no_grad():
        nll = sum(float(lm.decoder.nll(torch.tensor([ids]), torch.tensor([len(ids)]), None)) for ids in split.ids)
    assert out["lm-tokens"] == 7 + 4  # 7 words + one </s> per sentence
    assert out["lm-nll"] == pytest.approx(nll / 4, rel=1e-5)
    assert out["lm-ppl"] == pytest.approx(math.exp(nll / out["lm-tokens"]), rel=1e-5)
