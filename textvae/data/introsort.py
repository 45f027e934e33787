"""The order in which the reference programs' length sort leaves sentences of equal length.

The published text-VAE programs cut their training buckets out of ``numpy.argsort(lengths)``: an
unstable introsort, so which sentences of one length share a bucket is decided by how the sort
partitions, not by the data's order and not by the seed. NumPy 1.25 and later dispatch that sort to
SIMD kernels whose tie order depends on the CPU (AVX-512, AVX2 and the baseline kernel give three
different groupings of the same corpus), so calling numpy would make a run's batches depend on the
machine. This module computes the tie order of the scalar introsort the published programs ran on
(median-of-three quicksort, insertion sort up to 16 elements, heapsort past the depth limit) in plain
Python, the same on every machine; ``tests/test_data_introsort.py`` checks it against numpy's scalar
kernel.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

_INSERTION_MAX_SPAN = 15
"""Ranges with hi - lo at most this (16 elements or fewer) are finished by insertion sort."""


def argsort_order(lengths: Sequence[int]) -> list[int]:
    """Indices that sort ``lengths``, ties in the order of the scalar introsort (see the module)."""
    return list(_cached(tuple(int(n) for n in lengths)))


@lru_cache(maxsize=4)
def _cached(keys: tuple[int, ...]) -> tuple[int, ...]:
    order = list(range(len(keys)))
    if order:
        _introsort(keys, order)
    return tuple(order)


def _introsort(v: tuple[int, ...], a: list[int]) -> None:
    pending: list[tuple[int, int, int]] = []
    lo, hi = 0, len(a) - 1
    depth = 2 * (len(a).bit_length() - 1)
    while True:
        if depth < 0:
            _heapsort(v, a, lo, hi)
        else:
            while hi - lo > _INSERTION_MAX_SPAN:
                mid = lo + ((hi - lo) >> 1)
                # the median of three goes to hi - 1 and guards both scans
                if v[a[mid]] < v[a[lo]]:
                    a[mid], a[lo] = a[lo], a[mid]
                if v[a[hi]] < v[a[mid]]:
                    a[hi], a[mid] = a[mid], a[hi]
                if v[a[mid]] < v[a[lo]]:
                    a[mid], a[lo] = a[lo], a[mid]
                pivot = v[a[mid]]
                i, j = lo, hi - 1
                a[mid], a[j] = a[j], a[mid]
                while True:
                    i += 1
                    while v[a[i]] < pivot:
                        i += 1
                    j -= 1
                    while pivot < v[a[j]]:
                        j -= 1
                    if i >= j:
                        break
                    a[i], a[j] = a[j], a[i]
                a[i], a[hi - 1] = a[hi - 1], a[i]
                depth -= 1
                # the larger side waits; the loop goes on with the smaller
                if i - lo < hi - i:
                    pending.append((i + 1, hi, depth))
                    hi = i - 1
                else:
                    pending.append((lo, i - 1, depth))
                    lo = i + 1
            for k in range(lo + 1, hi + 1):
                item = a[k]
                key = v[item]
                m = k
                while m > lo and key < v[a[m - 1]]:
                    a[m] = a[m - 1]
                    m -= 1
                a[m] = item
        if not pending:
            return
        lo, hi, depth = pending.pop()


def _heapsort(v: tuple[int, ...], a: list[int], lo: int, hi: int) -> None:
    n = hi - lo + 1

    def at(k: int) -> int:  # 1-based heap position -> list index
        return lo + k - 1

    def sift(item: int, start: int, size: int) -> None:
        i, j = start, start * 2
        while j <= size:
            if j < size and v[a[at(j)]] < v[a[at(j + 1)]]:
                j += 1
            if v[item] < v[a[at(j)]]:
                a[at(i)] = a[at(j)]
                i, j = j, j * 2
            else:
                break
        a[at(i)] = item

    for start in range(n >> 1, 0, -1):
        sift(a[at(start)], start, n)
    while n > 1:
        item = a[at(n)]
        a[at(n)] = a[at(1)]
        n -= 1
        sift(item, 1, n)
