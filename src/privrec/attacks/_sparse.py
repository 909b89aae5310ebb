"""Small vectorised helpers shared by the attacks (private)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray


def ranges(starts: NDArray[np.int64], lengths: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Expand ``[starts[q], starts[q] + lengths[q])`` for every ``q``: returns ``(q, position)``, grouped by ``q``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    q = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return q, np.asarray(starts, dtype=np.int64)[q] + offsets


def chunks(costs: NDArray, budget: int) -> Iterator[slice]:
    """Consecutive slices of ``costs`` whose sums stay within ``budget`` (at least one element each)."""
    n = len(costs)
    cum = np.cumsum(np.asarray(costs, dtype=np.int64))
    start = 0
    while start < n:
        base = int(cum[start - 1]) if start else 0
        end = max(int(np.searchsorted(cum, base + budget, side="right")), start + 1)
        yield slice(start, end)
        start = end


def sorted_unique(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """Sorted distinct values (by sorting: numpy 2's hash-based ``np.unique`` is far slower on large int arrays)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if values.size else values


def contains(sorted_keys: NDArray[np.int64], queries: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Whether each query is in ``sorted_keys`` (ascending)."""
    if sorted_keys.size == 0 or queries.size == 0:
        return np.zeros(queries.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, queries), sorted_keys.size - 1)
    return sorted_keys[pos] == queries


def group_top2(
    indptr: NDArray[np.int64], members: NDArray[np.int64], scores: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """Per group ``g`` (the slice ``indptr[g]:indptr[g+1]``): best score, its member, second-best score.

    Empty groups give ``(-inf, -1, -inf)``; a group of one gives a second best of ``-inf``. Ties keep the
    first member in order and make the second best equal to the best.
    """
    n_groups = len(indptr) - 1
    best = np.full(n_groups, -np.inf)
    arg = np.full(n_groups, -1, dtype=np.int64)
    second = np.full(n_groups, -np.inf)
    counts = np.diff(indptr)
    nonempty = np.flatnonzero(counts > 0)
    if nonempty.size == 0:
        return best, arg, second
    starts = indptr[nonempty]
    top = np.maximum.reduceat(scores, starts)
    gid = np.repeat(np.arange(len(nonempty)), counts[nonempty])
    pos = np.flatnonzero(scores == top[gid])
    first = pos[np.r_[True, gid[pos][1:] != gid[pos][:-1]]]
    rest = scores.copy()
    rest[first] = -np.inf
    best[nonempty] = top
    arg[nonempty] = members[first]
    second[nonempty] = np.maximum.reduceat(rest, starts)
    return best, arg, second


def merge_top2(
    current: tuple[NDArray, NDArray, NDArray], new: tuple[NDArray, NDArray, NDArray]
) -> tuple[NDArray, NDArray, NDArray]:
    """Top two of the union of two disjoint candidate sets, from each set's top two (best, its member, second)."""
    best, arg, second = current
    new_best, new_arg, new_second = new
    keep = best >= new_best
    merged_second = np.where(keep, np.maximum(second, new_best), np.maximum(new_second, best))
    return np.maximum(best, new_best), np.where(keep, arg, new_arg), merged_second
