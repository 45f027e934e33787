"""The mini-batch split modes (``data.batch_split``): reshuffle, fixed and by-label batches; the
evaluation batches ignore them."""

from __future__ import annotations

import pytest

from textvae.data import Split, Vocab, encode_texts, make_batches
from textvae.errors import DataError

WORDS = "a b c d e f g h".split()


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
