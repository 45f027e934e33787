"""Batching: identical-length buckets (no padding) and padded batches that the model masks."""

import random

import pytest
import torch

from textvae.config import RunConfig
from textvae.data import Split, Vocab, encode_texts, make_batches
from textvae.data.introsort import argsort_order
from textvae.models import build_model

WORDS = "the food was good bad great awful service staff nice".split()


def random_split(n: int = 50, seed: int = 0, labeled: bool = True) -> Split:
    rng = random.Random(seed)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(1, 7))) for _ in range(n)]
    labels = [str(rng.randint(0, 1)) for _ in texts] if labeled else None
    return encode_texts(Vocab.build([WORDS]), texts, labels)


def rows(batches) -> list[int]:
    return [int(i) for b in batches for i in b.index]


@pytest.mark.parametrize("mode", ["bucket", "padded"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sentence_once_per_epoch_with_its_ids_and_label(mode, shuffle):
    split = random_split()
    batches = make_batches(split, 8, mode, shuffle=shuffle, seed=3)
    assert sorted(rows(batches)) == list(range(len(split)))
    for b in batches:
        assert b.size <= 8
        for r, i in enumerate(b.index.tolist()):
            n = int(b.lengths[r])
            assert b.tokens[r, :n].tolist() == split.ids[i]
            assert int(b.labels[r]) == int(split.labels[i])


def test_bucket_batches_never_contain_padding():
    batches = make_batches(random_split(), 4, "bucket", shuffle=True, seed=1)
    for b in batches:
        assert not b.padded
        assert bool((b.lengths == b.tokens.size(1)).all())
        assert bool((b.tokens != Vocab.pad_id).all())
    # He et al.'s buckets: at most one partial batch per length.
    sizes_by_length = {}
    for b in batches:
        sizes_by_length.setdefault(int(b.lengths[0]), []).append(b.size)
    assert all(sum(s < 4 for s in sizes) <= 1 for sizes in sizes_by_length.values())


def test_training_buckets_are_random_samples_of_their_length_fixed_across_epochs():
    """A corpus in article order (PTB) must not give buckets of neighbouring sentences: the reference's
    unstable sort scatters each length's sentences, and BN-VAE's batch statistics assume a random batch."""
    words = WORDS[:3]
    split = encode_texts(Vocab.build([WORDS]), [" ".join(words) for _ in range(400)], None)  # one length
    epochs = [make_batches(split, 20, "bucket", shuffle=True, seed=epoch, split_seed=7) for epoch in (1, 2)]
    buckets = [sorted(sorted(b.index.tolist()) for b in batches) for batches in epochs]
    assert buckets[0] == buckets[1]  # the same buckets every epoch, in another order
    assert [b.index.tolist() for b in epochs[0]] != [b.index.tolist() for b in epochs[1]]
    spans = [max(b) - min(b) for b in buckets[0]]
    assert min(spans) > 200  # corpus-order cutting would give 19 for every bucket
    other = sorted(sorted(b.index.tolist())
                   for b in make_batches(split, 20, "bucket", shuffle=True, seed=1, split_seed=8))
    assert other != buckets[0]
    # evaluation batches stay in corpus order
    assert [b.index.tolist() for b in make_batches(split, 20, "bucket")][0] == list(range(20))


def test_argsort_buckets_are_the_reference_programs_whatever_the_seed():
    """``bucket_order = "argsort"``: the buckets are consecutive runs of the length sort's order, cut at
    each change of length, so every seed trains on the same buckets (only their order changes)."""
    split = random_split(n=300, labeled=False)
    order = argsort_order([len(s) for s in split.ids])
    expected = []
    for length in sorted({len(s) for s in split.ids}):
        run = [i for i in order if len(split.ids[i]) == length]
        expected += [run[j : j + 16] for j in range(0, len(run), 16)]
    for seed, split_seed in [(1, 1), (2, 9)]:
        batches = make_batches(split, 16, "bucket", shuffle=True, seed=seed, split_seed=split_seed,
                               bucket_order="argsort")
        assert sorted(b.index.tolist() for b in batches) == sorted(expected)
    random_buckets = make_batches(split, 16, "bucket", shuffle=True, seed=1, split_seed=1)
    assert sorted(b.index.tolist() for b in random_buckets) != sorted(expected)
    with pytest.raises(ValueError, match="unknown bucket order"):
        make_batches(split, 16, "bucket", shuffle=True, bucket_order="sorted")


@pytest.mark.parametrize("mode", ["bucket", "padded"])
def test_same_seed_same_order_other_seed_other_order(mode):
    split = random_split()
    one = rows(make_batches(split, 8, mode, shuffle=True, seed=5))
    assert one == rows(make_batches(split, 8, mode, shuffle=True, seed=5))
    assert one != rows(make_batches(split, 8, mode, shuffle=True, seed=6))
    assert rows(make_batches(split, 8, mode)) == rows(make_batches(split, 8, mode))


def test_padded_batches_are_full_size_and_padded_with_pad_id():
    split = random_split(n=20, labeled=False)
    batches = make_batches(split, 8, "padded", shuffle=True, seed=0)
    assert [b.size for b in batches] == [8, 8, 4]
    assert any(b.padded for b in batches)
    for b in batches:
        assert b.labels is None
        mask = torch.arange(b.tokens.size(1)).unsqueeze(0) < b.lengths.unsqueeze(1)
        assert bool((b.tokens[~mask] == Vocab.pad_id).all())
        assert bool((b.tokens[mask] != Vocab.pad_id).all())


def test_padding_does_not_change_what_the_model_computes():
    """The masks downstream (packed encoder, masked decoder loss) make padded == bucketed, per sentence."""
    torch.manual_seed(0)
    split = random_split(n=24, labeled=False)
    config = RunConfig.from_dict({"model": {"embed_dim": 8, "enc_hidden": 8, "dec_hidden": 8, "latent_dim": 3}})
    model = build_model(config, len(Vocab.build([WORDS]))).eval()
    z = torch.randn(len(split), 3)
    results = {}
    for mode in ("bucket", "padded"):
        mu, nll = torch.zeros(len(split), 3), torch.zeros(len(split))
        with torch.no_grad():
            for b in make_batches(split, 8, mode, shuffle=True, seed=2):
                mu[b.index] = model.posterior(b).mu
                nll[b.index] = model.decoder.nll(b.tokens, b.lengths, z[b.index])
        results[mode] = (mu, nll)
    torch.testing.assert_close(results["padded"][0], results["bucket"][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(results["padded"][1], results["bucket"][1], rtol=1e-5, atol=1e-5)


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="unknown batching mode"):
        make_batches(random_split(), 8, "sorted")
