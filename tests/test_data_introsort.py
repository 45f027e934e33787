"""The reference programs' tie order of equal lengths, computed without numpy's CPU-dependent kernels."""

import json
import os
import random
import subprocess
import sys

import pytest

from textvae.data.introsort import _heapsort, argsort_order


def test_small_cases_keep_the_scalar_introsorts_tie_order():
    # Up to 16 elements insertion sort keeps ties in place; from 17 one median-of-three partition runs.
    assert argsort_order([0] * 16) == list(range(16))
    assert argsort_order([0] * 17) == [0, 14, 13, 12, 11, 10, 9, 15, 8, 6, 5, 4, 3, 2, 1, 7, 16]
    assert argsort_order([]) == []
    assert argsort_order([3, 1, 2]) == [1, 2, 0]


@pytest.mark.parametrize("n,distinct", [(17, 1), (100, 3), (1000, 5), (5000, 60), (3000, 3000)])
def test_sorts_and_is_a_permutation(n, distinct):
    rng = random.Random(n)
    keys = [rng.randrange(distinct) for _ in range(n)]
    order = argsort_order(keys)
    assert sorted(order) == list(range(n))
    assert [keys[i] for i in order] == sorted(keys)


def test_heapsort_fallback_sorts_a_range_in_place():
    rng = random.Random(0)
    keys = tuple(rng.randrange(7) for _ in range(200))
    order = list(range(200))
    _heapsort(keys, order, 50, 149)
    assert order[:50] == list(range(50)) and order[150:] == list(range(150, 200))
    assert sorted(order[50:150]) == list(range(50, 150))
    assert [keys[i] for i in order[50:150]] == sorted(keys[50:150])


def test_matches_numpys_scalar_argsort():
    """numpy >= 1.25 sorts with SIMD kernels whose tie order depends on the CPU; with them switched off
    it runs the scalar introsort of the older numpy the reference programs ran on."""
    pytest.importorskip("numpy")
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    rng = random.Random(1)
    cases = [[rng.randrange(d) for _ in range(n)] for n, d in [(17, 1), (33, 3), (1000, 3), (4000, 40), (20000, 70)]]
    script = ("import json, sys, numpy\ncases = json.load(sys.stdin)\n"
              "print(json.dumps([numpy.argsort(numpy.array(c, dtype=numpy.int64), kind='quicksort').tolist() "
              "for c in cases]))")
    env = dict(os.environ)
    found = [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]
    if found:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(found)
    out = subprocess.run([sys.executable, "-c", script], input=json.dumps(cases), capture_output=True, text=True,
                         env=env, check=True).stdout
    assert json.loads(out) == [argsort_order(c) for c in cases]
