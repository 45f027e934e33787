"""The paired parity verdict (textvae.reference.verdict): cases that must give each verdict."""

from __future__ import annotations

import pytest

from textvae.reference.verdict import MARGINS, paired_verdict, row_verdict, seeds_needed


def test_tight_small_differences_are_equivalent():
    v = paired_verdict([0.1, -0.1, 0.2, 0.0, 0.05, 0.1], MARGINS["iw_nll"])
    assert v["verdict"] == "equivalent"
    lo, hi = v["diff_ci90"]
    assert -1 < lo < v["mean"] < hi < 1 and "seeds_needed" not in v


def test_a_consistent_two_nat_offset_differs():
    v = paired_verdict([2.1, 1.9, 2.3, 1.8], 1.0)
    assert v["verdict"] == "differs" and v["diff_ci95"][0] > 0


def test_an_offset_outside_the_margin_that_the_spread_hides_is_not_shown():
    # mean 1.5 nats, but two seeds far apart: the 95 % interval reaches 0
    v = paired_verdict([3.4, -0.4], 1.0)
    assert v["verdict"] == "not shown" and v["diff_ci95"][0] < 0 < v["diff_ci95"][1]
    assert v["seeds_needed"] is not None and v["seeds_needed"] > 2


def test_a_small_mean_with_a_wide_interval_is_not_shown_and_says_how_many_seeds_would_do():
    v = paired_verdict([0.9, -0.5, 1.2], 1.0)
    assert v["verdict"] == "not shown" and v["diff_ci90"][1] > 1
    n = v["seeds_needed"]
    # with that many seeds at the same mean and spread the 90 % interval fits inside the margin
    assert n == seeds_needed(v["mean"], v["sd"], 1.0) and n > 3
    assert seeds_needed(v["mean"], v["sd"], 1.0) == n


def test_a_mean_inside_the_margin_is_never_called_different_and_one_seed_gives_no_verdict():
    assert paired_verdict([0.9, 0.95, 0.92], 1.0)["verdict"] != "differs"
    assert paired_verdict([0.4], 1.0)["verdict"] == "not shown"


@pytest.mark.parametrize(
    "verdicts, row",
    [
        (["equivalent", "equivalent"], "equivalent"),
        (["equivalent", "differs"], "differs"),
        (["equivalent", "not shown"], "not shown"),
    ],
)
def test_the_row_verdict_combines_the_metrics(verdicts, row):
    assert row_verdict({str(i): {"verdict": v} for i, v in enumerate(verdicts)}) == row


def test_two_unpaired_sets_of_seeds_are_judged_on_the_difference_of_their_means():
    from textvae.reference.verdict import unpaired_verdict

    assert (
        unpaired_verdict([125.0, 126.0, 125.5, 125.2], [123.0, 124.0, 123.5, 123.2], 1.0)["verdict"]
        == "differs"
    )
    assert (
        unpaired_verdict([123.1, 123.2, 123.0], [123.0, 123.1, 123.2], 1.0)["verdict"]
        == "equivalent"
    )
    wide = unpaired_verdict([120.0, 126.0], [123.0, 124.0], 1.0)
    assert wide["verdict"] == "not shown" and wide["seeds_needed"] > 2
