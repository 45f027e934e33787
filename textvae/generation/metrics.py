"""Metrics on a set of generated sentences (docs/evaluation.md, "Generation metrics"), with the open definitions fixed.

Tokens are whitespace words with no boundary tokens; ``</s>`` is never part of a text here.

* ``dist-n``: corpus-level distinct-n = distinct n-grams / n-gram occurrences over the whole set.
* ``ent-n``: entropy (natural log) of the empirical n-gram distribution of the whole set.
* ``gram-n``: token-level share of generated n-gram occurrences that also occur anywhere in the
  reference corpus (the training split), n-grams taken inside sentences, no boundary padding.
* ``self-bleu``: mean over sentences of sacrebleu's sentence BLEU-4 (exp smoothing, effective
  order, no re-tokenisation) of one sentence against all the others as references.
* ``rec-bleu``: sacrebleu corpus BLEU-4 (no re-tokenisation) of reconstructions against inputs.
* ``lm-ppl``: exp(total NLL / predicted tokens) under an LSTM-LM, ``</s>`` counted, ``<s>`` not.

A metric with nothing to measure (no n-grams in the set) is NaN.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

import sacrebleu
import torch
from sacrebleu.metrics import BLEU
from sacrebleu.metrics.helpers import extract_all_word_ngrams

from ..data import Vocab, encode_texts, make_batches
from ..errors import ConfigError
from ..evaluation.evaluate import perplexity

BLEU_ORDER = 4

DEFINITIONS = {
    "dist-n": "corpus-level distinct n-grams / n-gram occurrences",
    "ent-n": "entropy (nats) of the corpus-level n-gram distribution",
    "gram-n": "token-level share of generated n-grams found in the train split, no boundary tokens",
    "self-bleu": "mean sentence BLEU-4 of each sentence against all others (sacrebleu, exp smoothing, tokenize=none)",
    "rec-bleu": "corpus BLEU-4 of posterior-mean reconstructions vs inputs (sacrebleu, tokenize=none)",
    "lm-ppl": "exp(sum NLL / (words + </s>)) under an LSTM-LM trained on the same corpus",
}


def ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def ngram_counts(texts: Iterable[str], n: int) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        counts.update(ngrams(text.split(), n))
    return counts


def distinct_n(texts: list[str], n: int) -> float:
    counts = ngram_counts(texts, n)
    total = sum(counts.values())
    return len(counts) / total if total else math.nan


def ngram_entropy(texts: list[str], n: int) -> float:
    counts = ngram_counts(texts, n)
    total = sum(counts.values())
    if not total:
        return math.nan
    return -sum(c / total * math.log(c / total) for c in counts.values())


def gram_n(texts: list[str], reference_texts: Iterable[str], n: int) -> float:
    """Share of generated n-gram occurrences seen in the reference texts.

    Streams the reference once and keeps only the generated n-grams in memory, so a large training
    corpus costs no more than reading it.
    """
    generated = ngram_counts(texts, n)
    total = sum(generated.values())
    if not total:
        return math.nan
    unseen = set(generated)
    for text in reference_texts:
        words = text.split()
        for i in range(len(words) - n + 1):
            unseen.discard(tuple(words[i : i + n]))
        if not unseen:
            break
    return sum(c for g, c in generated.items() if g not in unseen) / total


def reconstruction_bleu(hypotheses: list[str], references: list[str]) -> float:
    # force: the texts are tokenised on purpose (the corpora's own tokens), so no detokenisation warning.
    return sacrebleu.corpus_bleu(hypotheses, [references], tokenize="none", force=True).score


def self_bleu(texts: list[str]) -> float:
    """Mean sentence BLEU of each text against all the others, in one pass over the n-grams.

    Equal to averaging ``sacrebleu.sentence_bleu(t_i, [t_j for j != i], tokenize="none")``, but
    linear in the set size: for clipping, each n-gram's largest count over the *other* sentences is
    its overall largest count, unless this sentence alone holds it, then the runner-up count.
    """
    if len(texts) < 2:
        return math.nan
    stats = [extract_all_word_ngrams(t, 1, BLEU_ORDER) for t in texts]
    top: dict[tuple, list[int]] = {}  # n-gram -> [largest count, sentences holding it, second largest]
    for counts, _ in stats:
        for g, c in counts.items():
            best = top.setdefault(g, [0, 0, 0])
            if c > best[0]:
                best[:] = [c, 1, best[0]]
            elif c == best[0]:
                best[1] += 1
            elif c > best[2]:
                best[2] = c
    lengths = Counter(length for _, length in stats)
    scores = []
    for counts, length in stats:
        correct, total = [0] * BLEU_ORDER, [0] * BLEU_ORDER
        for g, c in counts.items():
            largest, holders, second = top[g]
            ref_max = second if (c == largest and holders == 1) else largest
            total[len(g) - 1] += c
            correct[len(g) - 1] += min(c, ref_max)
        ref_len = _closest_other_length(length, lengths)
        scores.append(BLEU.compute_bleu(correct, total, length, ref_len, smooth_method="exp",
                                        effective_order=True, max_ngram_order=BLEU_ORDER).score)
    return sum(scores) / len(scores)


def _closest_other_length(length: int, lengths: Counter) -> int:
    """sacrebleu's closest reference length (ties to the shorter) among all but this sentence."""
    others = [n for n, c in lengths.items() if n != length or c > 1]
    return min(others, key=lambda n: (abs(n - length), n))


@torch.no_grad()
def lm_perplexity(lm: torch.nn.Module, vocab: Vocab, texts: list[str], batch_size: int = 256) -> dict[str, float]:
    """NLL and PPL of texts under a language model with the evaluator protocol (``log_likelihood``).

    Texts are encoded with the LM's vocabulary (unknown words -> ``<unk>``), never truncated.
    """
    if lm.latent_dim:
        raise ConfigError("the scoring model must be a language model (model.kind 'lstm-lm'), not a VAE")
    device = next(lm.parameters()).device
    split = encode_texts(vocab, texts)
    nll, targets = 0.0, 0
    for batch in make_batches(split, batch_size, mode="padded"):
        batch = batch.to(device)
        z = torch.zeros(batch.size, 1, lm.latent_dim, device=device)
        nll -= float(lm.log_likelihood(batch, z).double().sum())
        targets += batch.n_targets()
    return {"lm-nll": nll / len(texts), "lm-ppl": perplexity(nll / targets), "lm-tokens": float(targets)}


def diversity_metrics(texts: list[str], orders: Iterable[int] = (1, 2, 3, 4)) -> dict[str, float]:
    out: dict[str, float] = {}
    for n in orders:
        out[f"dist-{n}"] = distinct_n(texts, n)
        out[f"ent-{n}"] = ngram_entropy(texts, n)
    out["self-bleu"] = self_bleu(texts)
    out["mean-length"] = sum(len(t.split()) for t in texts) / len(texts) if texts else math.nan
    return out


def gram_metrics(texts: list[str], reference_texts: list[str], orders: Iterable[int] = (2, 3, 4)) -> dict[str, float]:
    return {f"gram-{n}": gram_n(texts, reference_texts, n) for n in orders}
