"""Matching an adversary's known quasi-identifiers against released (possibly generalised) ones (private).

Per attribute, an original value ``o`` is *covered* by a released value ``r`` when (strings compared as
strings, after ``astype("string")``):

- either side is missing (a missing original value is unknown to the adversary; a missing released value
  is suppressed and rules nothing out);
- ``r == o``;
- ``r`` is a number or a range ``"[lo-hi]"`` and ``o`` is a number with ``lo <= o <= hi``;
- ``r`` is a set ``"a|b|c"`` and ``o`` is one of its members;
- ``r`` ends in ``"*"`` (``"021**"``) and ``o`` starts with ``r`` stripped of its trailing stars.

These are the generalisations :class:`~privrec.privacy.KAnonymity` releases. A user's tuple is compatible
with a released tuple when every attribute is covered. Everything is computed on distinct values and
distinct tuples (a join), never per pair of users.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from privrec.attacks._sparse import contains, ranges, sorted_unique

_RANGE = r"^\[(.+?)-(.+)\]$"


def _strings(column: pd.Series) -> tuple[NDArray[np.int64], NDArray]:
    """1-based codes (0 = missing) and the distinct non-missing strings, in first-seen order."""
    values = column.astype("string").to_numpy(dtype=object, na_value=None)
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    return codes.astype(np.int64) + 1, np.asarray(uniques, dtype=object).astype(str)


def cover_pairs(original: NDArray, released: NDArray) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """0-based ``(original value, released value)`` index pairs where the released value covers the original."""
    o_parts: list[NDArray] = []
    r_parts: list[NDArray] = []
    r_index = np.arange(len(released), dtype=np.int64)
    # exact
    hit = pd.Index(original).get_indexer(released)
    o_parts.append(hit[hit >= 0])
    r_parts.append(r_index[hit >= 0])
    rel = pd.Series(released, dtype=object)
    # numbers and ranges
    bounds = rel.str.extract(_RANGE)
    plain = pd.to_numeric(rel, errors="coerce")
    lo = pd.to_numeric(bounds[0], errors="coerce").fillna(plain).to_numpy(dtype=np.float64)
    hi = pd.to_numeric(bounds[1], errors="coerce").fillna(plain).to_numpy(dtype=np.float64)
    onum = pd.to_numeric(pd.Series(original, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    numeric = np.flatnonzero(np.isfinite(onum))
    is_range = np.flatnonzero(np.isfinite(lo) & np.isfinite(hi))
    if numeric.size and is_range.size:
        order = numeric[np.argsort(onum[numeric], kind="stable")]
        sorted_num = onum[order]
        start = np.searchsorted(sorted_num, lo[is_range], side="left")
        end = np.searchsorted(sorted_num, hi[is_range], side="right")
        q, pos = ranges(start, np.maximum(end - start, 0))
        o_parts.append(order[pos])
        r_parts.append(is_range[q])
    # sets "a|b"
    is_set = np.flatnonzero(rel.str.contains("|", regex=False).to_numpy(dtype=bool))
    if is_set.size:
        members = rel.iloc[is_set].str.split("|").explode()
        hit = pd.Index(original).get_indexer(members.to_numpy(dtype=object))
        o_parts.append(hit[hit >= 0])
        r_parts.append(members.index.to_numpy(dtype=np.int64)[hit >= 0])
    # prefixes "021**"
    is_prefix = np.flatnonzero(rel.str.endswith("*").to_numpy(dtype=bool))
    if is_prefix.size and len(original):
        order = np.argsort(original.astype(str), kind="stable")
        sorted_str = original.astype(str)[order]
        prefix = rel.iloc[is_prefix].str.rstrip("*").to_numpy(dtype=str)
        start = np.searchsorted(sorted_str, prefix, side="left")
        end = np.searchsorted(sorted_str, np.char.add(prefix, "\U0010ffff"), side="left")
        q, pos = ranges(start, np.maximum(end - start, 0))
        o_parts.append(order[pos])
        r_parts.append(is_prefix[q])
    o = np.concatenate(o_parts).astype(np.int64)
    r = np.concatenate(r_parts).astype(np.int64)
    keys = sorted_unique(o * max(1, len(released)) + r)
    return keys // max(1, len(released)), keys % max(1, len(released))


class QuasiMatch:
    """Which released attribute rows are compatible with which users' original quasi-identifiers.

    ``candidates``: users that count as released records (non-empty released profiles).
    """

    def __init__(self, original: pd.DataFrame, released: pd.DataFrame, columns: tuple[str, ...],
                 candidates: NDArray[np.bool_]) -> None:
        n_users = len(original)
        o_codes = np.zeros((n_users, len(columns)), dtype=np.int64)
        r_codes = np.zeros((n_users, len(columns)), dtype=np.int64)
        self._sizes: list[tuple[int, int]] = []
        self._keys: list[NDArray[np.int64]] = []
        for a, col in enumerate(columns):
            o_codes[:, a], o_vocab = _strings(original[col])
            r_codes[:, a], r_vocab = _strings(released[col])
            o, r = cover_pairs(o_vocab, r_vocab)
            n_o, n_r = len(o_vocab) + 1, len(r_vocab) + 1
            self._sizes.append((n_o, n_r))
            self._keys.append((o + 1) * n_r + (r + 1))  # sorted: unique keys of a sorted construction
        o_tuples, self.o_tid = np.unique(o_codes, axis=0, return_inverse=True)
        r_tuples, self.r_tid = np.unique(r_codes, axis=0, return_inverse=True)
        self.o_tid, self.r_tid = self.o_tid.ravel(), self.r_tid.ravel()
        self.n_rt = len(r_tuples)
        r_count = np.bincount(self.r_tid[candidates], minlength=self.n_rt).astype(np.float64)
        live = np.flatnonzero(r_count > 0)
        ot, rt = self._join(o_tuples, r_tuples[live])
        rt = live[rt]
        self.pair_keys = np.sort(ot * self.n_rt + rt)
        # numpy's stubs type bincount as intp whatever the weights; with float weights it returns float64
        self.n_compat: NDArray[np.float64] = np.bincount(  # type: ignore[assignment]
            ot, weights=r_count[rt], minlength=len(o_tuples)
        )

    def _covered(self, a: int, o: NDArray[np.int64], r: NDArray[np.int64]) -> NDArray[np.bool_]:
        n_r = self._sizes[a][1]
        return (o == 0) | (r == 0) | contains(self._keys[a], o * n_r + r)

    def _join(self, o_tuples: NDArray[np.int64], r_tuples: NDArray[np.int64]) -> tuple[NDArray, NDArray]:
        """All compatible (original tuple, released tuple) pairs: join on the most selective attribute, filter."""
        n_attr = o_tuples.shape[1]
        if len(r_tuples) == 0 or len(o_tuples) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        plans = []
        for a in range(n_attr):
            n_o, n_r = self._sizes[a]
            explicit = self._keys[a]
            o_all = np.concatenate([explicit // n_r, np.zeros(n_r, np.int64), np.arange(1, n_o)])
            r_all = np.concatenate([explicit % n_r, np.arange(n_r), np.zeros(n_o - 1, np.int64)])
            co = np.bincount(o_tuples[:, a], minlength=n_o)
            cr = np.bincount(r_tuples[:, a], minlength=n_r)
            plans.append((int(np.sum(co[o_all] * cr[r_all])), a, o_all, r_all, co, cr))
        _, a, o_all, r_all, co, cr = min(plans, key=lambda p: p[0])
        o_order = np.argsort(o_tuples[:, a], kind="stable")
        r_order = np.argsort(r_tuples[:, a], kind="stable")
        o_ptr = np.concatenate([[0], np.cumsum(co)])
        r_ptr = np.concatenate([[0], np.cumsum(cr)])
        p, o_pos = ranges(o_ptr[o_all], co[o_all])
        q, r_pos = ranges(r_ptr[r_all[p]], cr[r_all[p]])
        ot = o_order[o_pos[q]]
        rt = r_order[r_pos]
        keep = np.ones(len(ot), dtype=bool)
        for b in range(n_attr):
            if b != a:
                keep &= self._covered(b, o_tuples[ot, b], r_tuples[rt, b])
        return ot[keep], rt[keep]

    def compatible(self, users: NDArray[np.int64], others: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether the released row of ``others[k]`` is compatible with the original QIs of ``users[k]``."""
        return contains(self.pair_keys, self.o_tid[users] * self.n_rt + self.r_tid[others])

    def n_candidates(self, users: NDArray[np.int64]) -> NDArray[np.float64]:
        """Number of released records compatible with each user's original QIs."""
        return self.n_compat[self.o_tid[users]]
