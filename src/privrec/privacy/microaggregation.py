"""Profile k-anonymity by microaggregation: users released as the aggregate profile of a group of >= k.

Behaviour is a quasi-identifier: Narayanan & Shmatikov re-identified Netflix Prize users from a handful of
(item, rating, date) triples. This transform groups similar users (MDAV in a truncated-SVD embedding of the
user-item matrix) and releases, for every member of a group, the same group-aggregate profile.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, DataValidationError, PrivacyGuaranteeError
from privrec.privacy.base import PrivacyReport, TransformResult

__all__ = ["ProfileKAnonymity", "mdav", "randomized_svd_embedding"]

_WEIGHTS = ("holders", "mean")
_OVERSAMPLES = 10  # Halko et al. (2011) recommend a small oversampling p (5-10)
_POWER_ITERATIONS = 4  # subspace iterations; singular values of sparse rating data decay slowly


@dataclass(frozen=True, kw_only=True)
class ProfileKAnonymity:
    """k-anonymity of whole behaviour profiles by MDAV microaggregation.

    **Definition.** A release is *profile k-anonymous* when every user with a non-empty released profile
    (the set of released ``(item, weight, timestamp)`` cells of that user) shares that exact profile with at
    least ``k - 1`` other users (Sweeney 2002's k-anonymity, with the whole interaction history as the
    quasi-identifier). Behaviour must be treated as a quasi-identifier: Narayanan & Shmatikov, "Robust
    De-anonymization of Large Sparse Datasets", IEEE S&P 2008, re-identified Netflix Prize subscribers
    from a few ratings and approximate dates.

    **Mechanism** (microaggregation, Domingo-Ferrer & Mateo-Sanz 2002):

    1. Users with at least one interaction are embedded in ``dim`` dimensions by a truncated SVD of the
       (weighted, duplicates summed) sparse user x item matrix: ``U_dim * S_dim``, computed by a seeded
       randomized SVD (Halko, Martinsson & Tropp, SIAM Review 2011; 10 oversamples, 4 power iterations)
       drawing its test matrix from ``rng``. The matrix is never densified.
    2. They are partitioned by MDAV, *Maximum Distance to Average Vector* (Domingo-Ferrer & Mateo-Sanz,
       "Practical data-oriented microaggregation for statistical disclosure control", IEEE TKDE 14(1), 2002;
       in the form stated by Domingo-Ferrer & Torra, DMKD 11(2), 2005), into groups of ``k`` to ``2k - 1``
       users; see :func:`mdav`. Euclidean distance; no partitioning shortcut is used.
    3. Every member of a group is released with the group's aggregate profile: the items held (at least one
       interaction) by at least ``ceil(share * group size)`` members; ``weights="mean"``: weight = sum of the
       members' weights for the item / group size (non-holders count as 0: a confidence that also encodes
       how common the item is in the group); ``weights="holders"``: sum / number of holders (the typical
       weight among those who have it). Timestamps (when the input has them): the median of the timestamps
       of the group's interactions with that item, rounded down to a whole second.

    Users with no interaction (e.g. opted out earlier in a chain) are not grouped and stay empty. A group
    whose aggregate is empty (no item reaches the share) releases nothing for its members: they become
    empty rows (``users_empty_profile``) and are served by the fallback model; they are not marked
    ``withheld`` (that mask means opted out).

    **Guarantee** (unit: a user's whole profile): measured on the output by hashing released rows,
    independently of the grouping, every non-empty released profile is identical to at least ``k - 1``
    others; ``apply`` raises :class:`PrivacyGuaranteeError` if the measured ``k_achieved`` is below ``k``
    or if fewer than ``k`` users have data.

    **Not protected:** user attributes (demographics) are released untouched; membership of a group is not
    hidden, and an adversary who knows a user's group learns the group aggregate (homogeneity: if all
    members hold an item, so does the target); the embedding and the grouping depend on the data, so the
    mechanism is not differentially private and gives no protection against an adversary who knows
    everyone else's profile; empty released rows still reveal that a user exists.

    **Report** (measured on the output, aggregates only): ``k_achieved`` (smallest class of identical
    non-empty released profiles; if no one has one, the number of users, all in the empty class),
    ``n_groups`` / ``mean_group_size`` (number and mean size of those classes: MDAV's groups, unless two
    groups' aggregates coincide or are empty), ``users_with_data``, ``users_empty_profile`` (had data,
    released empty), ``interactions_before`` / ``interactions_after`` (rows), ``cells_retained`` /
    ``share_interactions_retained`` (distinct released user-item cells present in the input, over the
    input's distinct cells), ``spurious_cells`` / ``share_spurious_cells`` (released cells the user did not
    have, over released cells).
    """

    k: int = 10
    dim: int = 16
    share: float = 0.5
    weights: str = "mean"

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)):
            raise ConfigError(f"profile_k_anonymity.k must be an integer >= 2; got {self.k!r}.")
        if self.k < 2:
            raise ConfigError(f"profile_k_anonymity.k must be >= 2; got {self.k!r}.")
        if isinstance(self.dim, bool) or not isinstance(self.dim, (int, np.integer)):
            raise ConfigError(f"profile_k_anonymity.dim must be an integer >= 1; got {self.dim!r}.")
        if self.dim < 1:
            raise ConfigError(f"profile_k_anonymity.dim must be >= 1; got {self.dim!r}.")
        if (isinstance(self.share, bool) or not isinstance(self.share, (int, float, np.floating, np.integer))
                or not (0 < self.share <= 1)):
            raise ConfigError(f"profile_k_anonymity.share must be in (0, 1]; got {self.share!r}.")
        if self.weights not in _WEIGHTS:
            raise ConfigError(f"profile_k_anonymity.weights must be one of {list(_WEIGHTS)}; got {self.weights!r}.")
        object.__setattr__(self, "k", int(self.k))
        object.__setattr__(self, "dim", int(self.dim))
        object.__setattr__(self, "share", float(self.share))

    # -------------------------------------------------------------- apply
    def apply(self, data: Dataset, *, rng: np.random.Generator) -> TransformResult:
        active = np.flatnonzero(data.user_counts > 0)
        if self.k > len(active):
            raise PrivacyGuaranteeError(
                f"profile_k_anonymity.k must be <= the number of users with data ({len(active)}); got {self.k}. "
                f"Lower k or use a larger dataset."
            )
        csr = data.to_csr()  # weighted, duplicates summed
        embedding = randomized_svd_embedding(csr[active], dim=self.dim, rng=rng)
        labels = mdav(embedding, k=self.k)
        released = self._aggregate(data, csr, active, labels)
        report = self.measure(data, released)
        problems = self.violations(data, released, report)
        if problems:
            raise PrivacyGuaranteeError(f"{problems[0]}. This is a bug.")
        return TransformResult(data=released, report=report, withheld=None)

    def violations(self, original: Dataset, released: Dataset, report: PrivacyReport) -> list[str]:
        """The guarantees ``report`` (``measure(original, released)``) breaks: one ``must ...; got ...`` each."""
        achieved = report.metrics["k_achieved"]
        if not achieved >= self.k:
            return [f"profile_k_anonymity output must have k_achieved >= {self.k}; got {achieved:g}"]
        return []

    def _aggregate(self, data: Dataset, csr: sp.csr_matrix, active: NDArray[np.int64], labels: NDArray[np.int64]
                   ) -> Dataset:
        """Release every active user with its group's aggregate profile (sorted by user, then item)."""
        n_items = data.n_items
        group_of = np.full(data.n_users, -1, dtype=np.int64)
        group_of[active] = labels
        sizes = np.bincount(labels)
        need = np.maximum(1, np.ceil(self.share * sizes - 1e-9)).astype(np.int64)

        # distinct cells (user, item) with summed weight -> per (group, item): holders and weight sum
        cell_user = np.repeat(np.arange(data.n_users, dtype=np.int64), np.diff(csr.indptr))
        cell_key = group_of[cell_user] * n_items + csr.indices
        order = np.argsort(cell_key, kind="stable")
        sorted_key = cell_key[order]
        starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])  # >= k users hold cells
        keys = sorted_key[starts]
        holders = np.diff(np.r_[starts, len(sorted_key)])
        wsum = np.add.reduceat(csr.data[order].astype(np.float64), starts)
        group = keys // n_items
        keep = holders >= need[group]
        keys, group, holders, wsum = keys[keep], group[keep], holders[keep], wsum[keep]
        item = keys - group * n_items
        denom = sizes[group] if self.weights == "mean" else holders
        weight = (wsum / denom).astype(np.float32)

        timestamp = None
        if data.timestamp is not None:
            timestamp = _group_item_medians(data, group_of, keys, n_items)

        # replicate each group's kept cells for every member, users in index order
        group_ptr = np.searchsorted(group, np.arange(len(sizes) + 1))
        lengths = group_ptr[labels + 1] - group_ptr[labels]
        total = int(lengths.sum())
        out_user = np.repeat(active.astype(np.int32), lengths)
        offsets = np.cumsum(lengths) - lengths
        pos = np.arange(total, dtype=np.int64) - np.repeat(offsets, lengths) + np.repeat(group_ptr[labels], lengths)
        return data.with_interactions(
            out_user, item[pos], weight[pos], None if timestamp is None else timestamp[pos],
        )

    # -------------------------------------------------------------- measure
    def measure(self, original: Dataset, released: Dataset) -> PrivacyReport:
        """Measure the achieved anonymity and the distortion by comparing input and output (aggregates only)."""
        had_data = original.user_counts > 0
        rel_counts = released.user_counts
        classes = _profile_classes(released)
        n_nonempty = int((rel_counts > 0).sum())
        k_achieved = float(min(classes.values())) if classes else float(released.n_users)
        before = original.to_csr(binary=True)
        after = released.to_csr(binary=True)
        cells_retained = int(before.multiply(after).nnz)
        spurious = int(after.nnz - cells_retained)
        metrics = {
            "k": float(self.k),
            "k_achieved": k_achieved,
            "n_groups": float(len(classes)),
            "mean_group_size": float(n_nonempty / len(classes)) if classes else 0.0,
            "users_with_data": float(had_data.sum()),
            "users_empty_profile": float((had_data & (rel_counts == 0)).sum()),
            "interactions_before": float(original.n_interactions),
            "interactions_after": float(released.n_interactions),
            "cells_retained": float(cells_retained),
            "share_interactions_retained": float(cells_retained / max(1, before.nnz)),
            "spurious_cells": float(spurious),
            "share_spurious_cells": float(spurious / max(1, after.nnz)),
        }
        return PrivacyReport(
            transform="profile_k_anonymity",
            guarantee=f"Every non-empty released profile (unit: a user's whole interaction profile) is identical "
            f"to at least {self.k - 1} others (MDAV microaggregation of a data-dependent SVD embedding); "
            f"attributes are untouched, group membership is not hidden, and it is not differentially private.",
            metrics=metrics,
        )


# ------------------------------------------------------------------ embedding
def randomized_svd_embedding(matrix: sp.spmatrix, *, dim: int, rng: np.random.Generator) -> NDArray[np.float32]:
    """Rows of ``matrix`` in ``min(dim, rows, cols)`` dimensions: ``U_dim * S_dim`` of a truncated SVD.

    Randomized range finder with power (subspace) iterations, re-orthonormalised by QR at every step
    (Halko, Martinsson & Tropp 2011, Algorithms 4.4 and 5.1). The Gaussian test matrix comes from ``rng``.
    Only sparse x dense products are formed; the sparse matrix is never densified.
    """
    a = sp.csr_matrix(matrix, dtype=np.float64)
    m, n = a.shape
    rank = min(dim, m, n)
    width = min(rank + _OVERSAMPLES, m, n)
    omega = rng.standard_normal((n, width))
    with threadpool_limits(limits=1, user_api="blas"):  # thin QRs: one thread is faster and deterministic
        q, _ = np.linalg.qr(a @ omega)
        for _ in range(_POWER_ITERATIONS):
            q, _ = np.linalg.qr((q.T @ a).T)  # A^T Q, computed through the CSC view of A^T (no copy)
            q, _ = np.linalg.qr(a @ q)
        b = np.asarray(q.T @ a)  # width x n
        u_b, s, _ = np.linalg.svd(b, full_matrices=False)
        u = q @ u_b[:, :rank]
    return np.ascontiguousarray(u * s[:rank], dtype=np.float32)


# ------------------------------------------------------------------ MDAV
def mdav(points: NDArray, *, k: int) -> NDArray[np.int64]:
    """Maximum Distance to Average Vector microaggregation (Domingo-Ferrer & Mateo-Sanz, IEEE TKDE 2002).

    Returns a group label ``0..G-1`` per row of ``points`` (n x d); every group has ``k`` to ``2k - 1``
    rows (needs ``n >= k``). The fixed-size heuristic, as stated by Domingo-Ferrer & Torra (2005):

    1. while at least ``3k`` records remain: ``c`` = centroid of the remaining records; ``r`` = the record
       farthest from ``c``; ``s`` = the record farthest from ``r``; form a group of ``r`` and its ``k - 1``
       nearest remaining records, then a group of ``s`` and its ``k - 1`` nearest among the records still
       remaining; remove both;
    2. if ``2k`` to ``3k - 1`` records remain: ``r`` = farthest from their centroid; a group of ``r`` and its
       ``k - 1`` nearest; the rest (``k`` to ``2k - 1``) form the last group;
    3. else (``k`` to ``2k - 1`` remain): they form the last group.

    Squared Euclidean distances. ``s`` is chosen among the records outside ``r``'s group (the same as the
    farthest from ``r`` except in degenerate ties where that record is itself among ``r``'s nearest). Ties
    are broken deterministically but arbitrarily (``argmax``: lowest current position), and scores are
    float32, so near-ties (relative gap ~1e-6) may resolve differently than in exact arithmetic.

    Implementation (for speed; the algorithm is unchanged, no partitioning shortcut): the remaining points
    live in a contiguous float32 ``d x n`` array, compacted by swap-remove after every step instead of
    masking; every distance scan is one matrix-vector product against precomputed half squared norms
    (``|x|^2/2 - x.q``); the centroid is a running float64 sum minus removed records; the ``k`` nearest
    come from ``np.argpartition`` over the few values below the ``k``-th smallest of every 8th score (an
    upper bound of the true ``k``-th smallest, so the selection stays exact); BLAS runs on one thread
    (faster for these thin products, and deterministic). About ``n / (2k)`` steps of O(n d): 100,000
    users, ``d = 16``, ``k = 10`` take a few seconds.
    """
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2:
        raise DataValidationError(f"mdav points must be a 2-D array; got {x.ndim} dimension(s).")
    n = x.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ConfigError(f"mdav k must be an integer in [1, number of points = {n}]; got {k!r}.")
    k = int(k)
    x = x - x.mean(axis=0)  # distances unchanged; smaller norms, less float32 cancellation
    xt = np.ascontiguousarray(x.T, dtype=np.float32)  # d x n: each coordinate contiguous
    half_norm = (0.5 * np.einsum("ij,ij->i", x, x)).astype(np.float32)
    ids = np.arange(n, dtype=np.int64)  # original row at each current position
    labels = np.full(n, -1, dtype=np.int64)
    total = x.sum(axis=0)  # running float64 sum of the remaining records
    buf = np.empty(n, dtype=np.float32)
    m = n
    n_groups = 0

    def score(q: NDArray[np.float32]) -> NDArray[np.float32]:
        """(|x|^2 - 2 x.q) / 2 for the m remaining records: squared distance to q up to a constant."""
        out = buf[:m]
        np.matmul(q, xt[:, :m], out=out)
        np.subtract(half_norm[:m], out, out=out)
        return out

    def nearest(r: int, dist: NDArray[np.float32]) -> NDArray[np.int64]:
        """Positions of r and its k - 1 nearest remaining records (exact)."""
        dist[r] = -np.inf  # r belongs to its own group whatever float rounding says
        if m < 16 * k:
            return np.argpartition(dist, k - 1)[:k]
        # The k-th smallest of every 8th value bounds the k-th smallest of all from above, so the
        # values under it contain the k nearest: partition ~m/8 values, then a handful of candidates.
        bound = np.partition(dist[::8], k - 1)[k - 1]
        candidates = np.flatnonzero(dist <= bound)
        return candidates[np.argpartition(dist[candidates], k - 1)[:k]]

    with threadpool_limits(limits=1, user_api="blas"):
        while m >= 3 * k:
            r = int(np.argmax(score((total / m).astype(np.float32))))
            dist = score(xt[:, r].copy())
            group_r = nearest(r, dist)
            dist[group_r] = -np.inf
            s = int(np.argmax(dist))
            dist = score(xt[:, s].copy())
            dist[group_r] = np.inf
            group_s = nearest(s, dist)
            labels[ids[group_r]] = n_groups
            labels[ids[group_s]] = n_groups + 1
            n_groups += 2
            gone = np.concatenate([group_r, group_s])
            total -= xt[:, gone].sum(axis=1, dtype=np.float64)
            m = _swap_remove(xt, half_norm, ids, m, gone)
        if m >= 2 * k:
            r = int(np.argmax(score((total / m).astype(np.float32))))
            group_r = nearest(r, score(xt[:, r].copy()))
            labels[ids[:m]] = n_groups + 1
            labels[ids[group_r]] = n_groups
        else:
            labels[ids[:m]] = n_groups
    return labels


def _swap_remove(xt: NDArray, half_norm: NDArray, ids: NDArray, m: int, gone: NDArray[np.int64]) -> int:
    """Drop positions ``gone`` from the first ``m`` columns, moving survivors from the tail into the holes."""
    new_m = m - len(gone)
    holes = gone[gone < new_m]
    in_tail = np.zeros(m - new_m, dtype=bool)
    in_tail[gone[gone >= new_m] - new_m] = True
    fillers = new_m + np.flatnonzero(~in_tail)
    xt[:, holes] = xt[:, fillers]
    half_norm[holes] = half_norm[fillers]
    ids[holes] = ids[fillers]
    return new_m


# ------------------------------------------------------------------ helpers
def _group_item_medians(data: Dataset, group_of: NDArray[np.int64], keys: NDArray[np.int64], n_items: int
                        ) -> NDArray[np.int64]:
    """Median timestamp (floored) of the group's interactions with the item, for each sorted key g*n_items+i."""
    row_key = group_of[data.user_idx] * n_items + data.item_idx
    if len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    pos = np.searchsorted(keys, row_key).clip(max=len(keys) - 1)
    hit = keys[pos] == row_key
    assert data.timestamp is not None  # apply() asks only for data with timestamps
    key_pos, ts = pos[hit], data.timestamp[hit]
    order = np.lexsort((ts, key_pos))
    key_pos, ts = key_pos[order], ts[order]
    start = np.searchsorted(key_pos, np.arange(len(keys)))
    count = np.diff(np.r_[start, len(key_pos)])
    lo = ts[start + (count - 1) // 2]
    hi = ts[start + count // 2]
    return lo + (hi - lo) // 2  # floor((lo + hi) / 2) without overflow


def _profile_classes(released: Dataset) -> Counter:
    """Sizes of the classes of users with identical non-empty released profiles (keys never leave here)."""
    user, item, weight = released.user_idx, released.item_idx, released.weight
    ts = released.timestamp
    if len(user) == 0:
        return Counter()
    key = user.astype(np.int64) * max(1, released.n_items) + item
    if np.any(np.diff(key) <= 0):  # not strictly sorted by (user, item): canonical order first
        cols = (weight, item, user) if ts is None else (ts, weight, item, user)
        order = np.lexsort(cols)
        user, item, weight = user[order], item[order], weight[order]
        ts = None if ts is None else ts[order]
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]])
    ends = np.r_[starts[1:], len(user)]
    item_b, weight_b = item.tobytes(), weight.tobytes()
    ts_b = b"" if ts is None else ts.tobytes()
    classes: Counter = Counter()
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        profile = (item_b[4 * a:4 * b], weight_b[4 * a:4 * b], ts_b[8 * a:8 * b])
        classes[profile] += 1
    return classes
