"""Ranking and beyond-accuracy metrics as pure, vectorised functions.

Every function works on a batch of users at once: ``top_items`` is a ``(u, n)`` integer array of item
indices, best first, padded with -1 (as in :class:`privrec.models.Recommendations`); ``test`` and
``exclude`` are ``(u, n_items)`` sparse matrices whose row *i* belongs to the same user as row *i* of
``top_items``. Relevance is binary: any stored nonzero in ``test`` is a relevant item.

The definitions (also in ``docs/metrics.md``), for one user with relevant set ``T`` and ``rel_k = 1`` when the
item at rank ``k`` (1-based) is in ``T``:

- ``precision@K = (sum_{k<=K} rel_k) / K``  (standard; implicit divides by ``min(K, |T|)`` instead)
- ``recall@K    = (sum_{k<=K} rel_k) / |T|``
- ``nDCG@K      = DCG@K / IDCG@K`` with ``DCG@K = sum_{k<=K} rel_k / log2(k + 1)`` and ``IDCG@K`` the DCG of
  ``min(K, |T|)`` hits at the top
- ``AP@K        = sum_{k<=K} P(k) * rel_k / min(K, |T|)`` with ``P(k)`` the precision at ``k``; MAP = mean AP
- ``RR@K        = 1 / rank of the first hit`` if it is within ``K``, else 0; MRR = mean RR
- ``hit_rate@K  = 1`` if any of the top ``K`` is relevant, else 0
- ``AUC``: share of (relevant, irrelevant) item pairs, over the whole catalogue minus ``exclude``, where the
  relevant item scores higher (ties count 1/2)

Padding (-1) is never relevant and still takes its rank, so ``precision@K`` of a list shorter than ``K``
counts the missing places as misses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from privrec.errors import ConfigError, DataValidationError

__all__ = [
    "RANKING_METRICS",
    "auc",
    "gini_exposure",
    "item_coverage",
    "mean_popularity",
    "ranking_metrics",
]

#: Names of the per-user ranking metrics, in the order :func:`ranking_metrics` returns them.
RANKING_METRICS: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")


# ---------------------------------------------------------------------------------------------- validation
def _as_binary_csr(matrix: object, name: str, shape: tuple[int, int] | None = None) -> sp.csr_matrix:
    """Canonical binary CSR (sorted indices, no duplicates, no stored zeros). Never mutates its input."""
    if not sp.issparse(matrix):
        raise DataValidationError(f"{name} must be a scipy sparse matrix; got {type(matrix).__name__}.")
    m = sp.csr_matrix(matrix, copy=True)
    if shape is not None and m.shape != shape:
        raise DataValidationError(f"{name} must have shape {shape}; got {m.shape}.")
    m.sum_duplicates()  # also sorts the indices
    m.data = (m.data != 0).astype(np.float32)
    m.eliminate_zeros()
    return m


def _check_top_items(top_items: ArrayLike, n_items: int, *, n_rows: int | None = None) -> NDArray[np.int64]:
    top = np.asarray(top_items)
    if top.ndim != 2:
        raise DataValidationError(f"top_items must be a 2-d array (users x n); got {top.ndim} dimensions.")
    if top.size and not np.issubdtype(top.dtype, np.integer):
        raise DataValidationError(f"top_items must hold integer item indices; got dtype {top.dtype}.")
    top = top.astype(np.int64, copy=False)
    if n_rows is not None and top.shape[0] != n_rows:
        raise DataValidationError(f"top_items must have one row per test row ({n_rows}); got {top.shape[0]}.")
    if top.size and (top.min() < -1 or top.max() >= n_items):
        raise DataValidationError(
            f"top_items must hold item indices in [0, {n_items}) or -1 for padding; got values outside it."
        )
    if top.shape[1] > 1:
        s = np.sort(top, axis=1)
        n_dup = int(((s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)).any(axis=1).sum())
        if n_dup:
            raise DataValidationError(
                f"top_items must not repeat an item within a list; got {n_dup} lists with repeats. "
                "Deduplicate the recommendations."
            )
    return top


def _check_k(k: object, n: int, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ConfigError(f"{name} must be an integer in [1, {n}] (the list length); got {k!r}.")
    return int(k)


def _check_cutoffs(cutoffs: int | Sequence[int], n: int) -> tuple[int, ...]:
    values = (cutoffs,) if isinstance(cutoffs, (int, np.integer)) else tuple(cutoffs)  # a lone int from a config
    if not values:
        raise ConfigError("cutoffs must name at least one list length K; got none.")
    return tuple(sorted({_check_k(k, n, "cutoffs") for k in values}))


# ---------------------------------------------------------------------------------------------- ranking
def _relevance(top: NDArray[np.int64], test: sp.csr_matrix) -> NDArray[np.bool_]:
    """``rel[i, k]``: is ``top[i, k]`` a stored item of row ``i`` of the canonical CSR ``test``."""
    u, n_items = test.shape
    if test.nnz == 0:
        return np.zeros(top.shape, dtype=bool)
    rows = np.repeat(np.arange(u, dtype=np.int64), np.diff(test.indptr))
    keys = rows * n_items + test.indices  # ascending: rows ascend, indices sorted within a row
    valid = top >= 0
    query = np.arange(u, dtype=np.int64)[:, None] * n_items + np.where(valid, top, 0)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return valid & (keys[pos] == query)


def ranking_metrics(
    top_items: ArrayLike, test: sp.spmatrix | sp.sparray, *, cutoffs: Sequence[int]
) -> dict[str, NDArray[np.float64]]:
    """Per-user precision, recall, nDCG, AP, reciprocal rank and hit rate at every cut-off ``K``.

    Parameters
    ----------
    top_items
        ``(u, n)`` item indices, best first, -1 for padding; no item twice in a row.
    test
        ``(u, n_items)`` sparse matrix of the same users' held-out items; any stored nonzero is relevant
        (binary relevance). Every row must hold at least one relevant item: users without test data are not
        evaluated, so leave them out.
    cutoffs
        List lengths ``K``, each in ``[1, n]``.

    Returns
    -------
    dict
        ``{"precision_at_K", "recall_at_K", "ndcg_at_K", "map_at_K", "mrr_at_K", "hit_rate_at_K"}`` for each
        ``K`` (metric by metric, then ``K`` ascending), each a float64 array of shape ``(u,)``. The ``map`` and
        ``mrr`` entries are per-user AP@K and RR@K: their means over users are MAP@K and MRR@K.

    Definitions, with ``rel_k = 1`` if the item at rank ``k`` is relevant and ``T`` the user's test items::

        precision@K = hits@K / K                       (standard; not implicit's hits / min(K, |T|))
        recall@K    = hits@K / |T|
        nDCG@K      = sum_{k<=K} rel_k / log2(k+1)  /  sum_{k<=min(K,|T|)} 1 / log2(k+1)
        AP@K        = sum_{k<=K} (hits@k / k) * rel_k  /  min(K, |T|)
        RR@K        = 1 / (rank of the first hit) if that rank <= K, else 0
        hit_rate@K  = 1 if hits@K > 0, else 0

    Raises
    ------
    DataValidationError
        (a ``ValueError``) if a test row is empty, shapes disagree, or ``top_items`` holds bad indices.
    ConfigError
        (a ``ValueError``) if a cut-off is not an integer in ``[1, n]``.
    """
    if not sp.issparse(test):
        raise DataValidationError(f"test must be a scipy sparse matrix; got {type(test).__name__}.")
    test = _as_binary_csr(test, "test")
    top = _check_top_items(top_items, test.shape[1], n_rows=test.shape[0])
    n = top.shape[1]
    ks = _check_cutoffs(cutoffs, n)
    n_rel = np.diff(test.indptr).astype(np.float64)
    n_empty = int((n_rel == 0).sum())
    if n_empty:
        raise DataValidationError(
            f"test must hold at least one relevant item in every row; got {n_empty} empty rows. "
            "Pass only users with test data."
        )

    rel = _relevance(top, test)
    ranks = np.arange(1, n + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)
    ideal_dcg = np.cumsum(discount)  # ideal_dcg[m - 1] = DCG of m hits at the top
    hits = np.cumsum(rel, axis=1, dtype=np.float64)  # hits[:, k - 1] = hits@k
    dcg = np.cumsum(rel * discount, axis=1)
    ap_sum = np.cumsum((hits / ranks) * rel, axis=1)
    first_hit = np.where(rel.any(axis=1), rel.argmax(axis=1), n)  # 0-based rank of the first hit, n if none

    out: dict[str, dict[int, NDArray[np.float64]]] = {name: {} for name in RANKING_METRICS}
    for k in ks:
        hits_k = hits[:, k - 1]
        n_ideal = np.minimum(k, n_rel).astype(np.int64)
        out["precision"][k] = hits_k / k
        out["recall"][k] = hits_k / n_rel
        out["ndcg"][k] = dcg[:, k - 1] / ideal_dcg[n_ideal - 1]
        out["map"][k] = ap_sum[:, k - 1] / n_ideal
        out["mrr"][k] = np.where(first_hit < k, 1.0 / (first_hit + 1.0), 0.0)
        out["hit_rate"][k] = (hits_k > 0).astype(np.float64)
    return {f"{name}_at_{k}": out[name][k] for name in RANKING_METRICS for k in ks}


# ---------------------------------------------------------------------------------------------- AUC
def auc(
    scores: ArrayLike,
    test: sp.spmatrix | sp.sparray,
    exclude: sp.spmatrix | sp.sparray | None = None,
) -> NDArray[np.float64]:
    """Per-user AUC over the whole catalogue.

    For user *u* with positives ``P`` (test items not in ``exclude``) and negatives ``N`` (every other item not
    in ``exclude``)::

        AUC_u = ( #{(p, q) in P x N : s_p > s_q} + 0.5 * #{(p, q) in P x N : s_p = s_q} ) / (|P| * |N|)

    computed with ranks (the Mann-Whitney U statistic): each row's scores are sorted once, excluded items set
    aside, every positive gets its average rank among the candidates (tied items share the mean rank), then
    ``AUC_u = (sum of positive ranks - |P|(|P|+1)/2) / (|P| |N|)``.

    Parameters
    ----------
    scores
        ``(u, n_items)`` real scores (higher = better); ``±inf`` allowed, NaN not.
    test
        ``(u, n_items)`` sparse matrix of relevant (held-out) items; any stored nonzero is relevant.
    exclude
        ``(u, n_items)`` sparse matrix of items to drop from both sides, typically the training items.

    Returns
    -------
    NDArray[float64]
        ``(u,)`` AUC in ``[0, 1]``; NaN for a user with no negatives or no positives left after ``exclude``.
    """
    s = np.asarray(scores)
    if s.ndim != 2:
        raise DataValidationError(f"scores must be a 2-d array (users x items); got {s.ndim} dimensions.")
    if not sp.issparse(test):
        raise DataValidationError(f"test must be a scipy sparse matrix; got {type(test).__name__}.")
    test = _as_binary_csr(test, "test", s.shape)
    n_nan = int(np.isnan(s).sum())
    if n_nan:
        raise DataValidationError(f"scores must not be NaN; got {n_nan} NaN scores. Check the model's score().")
    excl = None if exclude is None else _as_binary_csr(exclude, "exclude", s.shape)
    out = np.full(s.shape[0], np.nan)
    if s.size == 0:
        return out
    # rows in chunks so the sorted copy of the scores stays near _AUC_BLOCK elements
    step = max(1, _AUC_BLOCK // s.shape[1])
    for start in range(0, s.shape[0], step):
        rows = slice(start, start + step)
        out[rows] = _auc_block(s[rows], test[rows], None if excl is None else excl[rows])
    return out


#: Upper bound on the elements of one dense block of scores in :func:`auc` (the block is copied and sorted).
_AUC_BLOCK = 1 << 22


def _auc_block(scores: NDArray, test: sp.csr_matrix, exclude: sp.csr_matrix | None) -> NDArray[np.float64]:
    """Mann-Whitney AUC of a block of rows.

    Sort each row's scores once (excluded items set to NaN, which sorts last and compares false), then find every
    positive's average rank among the candidates by a vectorised binary search over all positives at once.
    """
    s = scores.astype(np.result_type(scores.dtype, np.float32))  # a copy; float32 stays float32 (exact ties)
    n_rows, n_items = s.shape
    if exclude is not None:
        s[np.repeat(np.arange(n_rows), np.diff(exclude.indptr)), exclude.indices] = np.nan
        test = test - test.multiply(exclude)  # excluded items are not positives either
        test.eliminate_zeros()
        n_candidates = n_items - np.diff(exclude.indptr)
    else:
        n_candidates = np.full(n_rows, n_items)
    n_pos = np.diff(test.indptr)
    rows = np.repeat(np.arange(n_rows), n_pos)
    values = s[rows, test.indices]
    s.sort(axis=1)
    below = _count_sorted(s, rows, values, inclusive=False)  # candidates scoring strictly lower
    not_above = _count_sorted(s, rows, values, inclusive=True)  # ... lower or tied (the item itself included)
    average_rank = (below + not_above + 1) / 2.0  # 1-based mean rank of the tied run below+1 .. not_above
    rank_sum = np.bincount(rows, weights=average_rank, minlength=n_rows)
    n_pos = n_pos.astype(np.float64)
    n_neg = n_candidates - n_pos
    defined = (n_pos > 0) & (n_neg > 0)
    out = np.full(n_rows, np.nan)
    u_stat = rank_sum[defined] - n_pos[defined] * (n_pos[defined] + 1.0) / 2.0
    out[defined] = u_stat / (n_pos[defined] * n_neg[defined])
    return out


def _count_sorted(sorted_rows: NDArray, rows: NDArray, values: NDArray, *, inclusive: bool) -> NDArray[np.int64]:
    """For each ``(row, value)``: how many entries of ``sorted_rows[row]`` are ``< value`` (``<=`` if inclusive).

    A binary search run for all queries at once (the loop is over halvings, ``log2(n_items)`` of them); NaN
    entries (at the end of each row) never count.
    """
    n = sorted_rows.shape[1]
    lo = np.zeros(len(values), dtype=np.int64)
    hi = np.full(len(values), n, dtype=np.int64)
    for _ in range(n.bit_length()):  # ceil(log2(n + 1)) halvings shrink every [lo, hi) to empty
        active = lo < hi
        mid = (lo + hi) // 2
        probe = sorted_rows[rows, np.minimum(mid, n - 1)]
        right = (probe <= values) if inclusive else (probe < values)
        lo = np.where(active & right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)
    return lo


# ---------------------------------------------------------------------------------------------- beyond accuracy
def _top_k(top_items: ArrayLike, n_items: int, k: int) -> NDArray[np.int64]:
    top = _check_top_items(top_items, n_items)
    return top[:, : _check_k(k, top.shape[1])]


def _exposure(top_items: ArrayLike, n_items: int, k: int) -> NDArray[np.int64]:
    top = _top_k(top_items, n_items, k)
    return np.bincount(top[top >= 0], minlength=n_items)


def item_coverage(top_items: ArrayLike, n_items: int, *, k: int) -> float:
    """Share of the catalogue that appears in at least one top-``k`` list: ``|union of lists| / n_items``.

    Padding is ignored. An empty set of lists covers 0.
    """
    if n_items < 1:
        raise DataValidationError(f"n_items must be at least 1; got {n_items}.")
    return float((_exposure(top_items, n_items, k) > 0).sum() / n_items)


def mean_popularity(top_items: ArrayLike, item_popularity: ArrayLike, *, k: int) -> NDArray[np.float64]:
    """Per-user mean of ``item_popularity`` over the non-padding items of the top-``k`` list.

    ``item_popularity[i]`` is usually the share of training users who interacted with item *i* (so the result
    lies in ``[0, 1]``). A list with no item at all gives NaN.
    """
    pop = np.asarray(item_popularity, dtype=np.float64)
    if pop.ndim != 1:
        raise DataValidationError(f"item_popularity must be one-dimensional; got {pop.ndim} dimensions.")
    top = _top_k(top_items, len(pop), k)
    valid = top >= 0
    total = np.where(valid, pop[np.where(valid, top, 0)], 0.0).sum(axis=1)
    count = valid.sum(axis=1)
    out = np.full(top.shape[0], np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


def gini_exposure(top_items: ArrayLike, n_items: int, *, k: int) -> float:
    """Gini coefficient of how often each catalogue item appears in the top-``k`` lists.

    With ``x_(1) <= ... <= x_(n)`` the exposure counts of all ``n = n_items`` items (never shown = 0)::

        G = sum_i (2i - n - 1) x_(i) / (n * sum_i x_i)

    0 when every item is shown equally often; ``(n - 1) / n`` when one item takes all exposure. NaN when the
    lists hold no item at all.
    """
    if n_items < 1:
        raise DataValidationError(f"n_items must be at least 1; got {n_items}.")
    x = np.sort(_exposure(top_items, n_items, k)).astype(np.float64)
    total = x.sum()
    if total == 0:
        return float("nan")
    i = np.arange(1, n_items + 1, dtype=np.float64)
    return float(((2.0 * i - n_items - 1.0) * x).sum() / (n_items * total))
