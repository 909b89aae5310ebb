"""Preprocessing: merge duplicates, threshold ratings, set implicit weights, iterative k-core.

Preprocessing defines the *study population*, so unlike a privacy transform it may shrink the
vocabularies: users and items with nothing left are dropped and the rest re-indexed contiguously (in their
old order), with the user attributes kept aligned. Run it once, before splitting and before any transform;
from then on index *i* means the same person everywhere.

Confidence weights (``weight``) are what the model sees. A weight of one interaction alone (``binary``,
``rating``, ``log``) is set here. BM25 and TF-IDF weigh a cell by statistics over other users (how much
weight an item has in total), so they are computed by :meth:`Preprocess.model_input` on the data the model
is trained on -- the treated training split -- never here: computed on everything, the weights a model
trains on would carry the held-out interactions and the data of users who opted out. Evaluation uses
binary relevance whatever the weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from privrec.data._checks import check_choice, check_float, check_int
from privrec.data.dataset import Dataset, Vocabulary
from privrec.errors import ConfigError, DataValidationError

__all__ = ["WEIGHTS", "Preprocess"]

#: ``preprocess.weight`` choices. Per interaction: ``binary`` (1), ``rating`` (the rating or count as given),
#: ``log`` (``log1p`` of it). Over the training data the model sees: ``bm25``, ``tfidf`` (implicit's own).
WEIGHTS = ("binary", "rating", "log", "bm25", "tfidf")
#: The weights computed on the model's training data (:meth:`Preprocess.model_input`), not in ``apply``.
_MODEL_WEIGHTS = ("bm25", "tfidf")


@dataclass(frozen=True, kw_only=True)
class Preprocess:
    """Turn raw interactions into the implicit-feedback study data.

    Steps, in order:

    1. ``duplicates``: merge repeated (user, item) rows into one. ``"max"`` keeps the row with the highest
       weight (ties: the latest timestamp, then the last row); ``"last"`` keeps the latest row (by timestamp,
       then by row order; by row order alone without timestamps); ``"sum"`` adds the weights and keeps the
       latest timestamp. Surviving rows keep their relative order.
    2. ``min_rating``: keep rows whose (merged) weight is >= ``min_rating`` (``None``: keep all).
    3. ``weight``: ``"binary"`` sets every weight to 1; ``"rating"`` keeps the rating (or count) as the
       confidence; ``"log"`` uses ``log1p(rating)`` (play counts: 1 -> 0.69, 100 -> 4.6); ``"bm25"`` and
       ``"tfidf"`` keep the rating here and weigh it with implicit's ``bm25_weight`` / ``tfidf_weight`` in
       :meth:`model_input`, on the data the model is trained on (``bm25_k1``, ``bm25_b``: implicit's ``K1``
       and ``B``, defaults 100 and 0.8). A recommender's confidence is then ``alpha * weight`` (ALS).
    4. k-core: repeatedly drop users with fewer than ``user_core`` and items with fewer than ``item_core``
       interactions until every remaining user and item meets its bound (0 or 1 = no constraint).

    Then users and items without interactions are dropped from the vocabularies (see the module docstring).
    ``apply`` returns the new data and aggregate statistics (counts only).
    """

    min_rating: float | None = None
    weight: str = "binary"
    bm25_k1: float = 100.0
    bm25_b: float = 0.8
    user_core: int = 0
    item_core: int = 0
    duplicates: str = "max"

    def __post_init__(self) -> None:
        g = "preprocess"
        if self.min_rating is not None:
            object.__setattr__(self, "min_rating", check_float(g, "min_rating", self.min_rating))
        check_choice(g, "weight", self.weight, WEIGHTS)
        object.__setattr__(self, "bm25_k1", check_float(g, "bm25_k1", self.bm25_k1, low=0.0))
        object.__setattr__(self, "bm25_b", check_float(g, "bm25_b", self.bm25_b, low=0.0, high=1.0))
        object.__setattr__(self, "user_core", check_int(g, "user_core", self.user_core, minimum=0))
        object.__setattr__(self, "item_core", check_int(g, "item_core", self.item_core, minimum=0))
        check_choice(g, "duplicates", self.duplicates, ("max", "sum", "last"))

    def apply(self, data: Dataset) -> tuple[Dataset, dict[str, float]]:
        if not isinstance(data, Dataset):
            raise ConfigError(f"Preprocess.apply needs a Dataset; got {type(data).__name__}.")
        if data.n_interactions == 0:
            raise DataValidationError("preprocess input must have interactions; got 0.")
        stats: dict[str, float] = {}
        sizes = {"n_users": data.n_users, "n_items": data.n_items}
        _count(stats, "before", data.user_idx, data.item_idx, **sizes)

        user, item, weight, ts, merged = _merge_duplicates(data, self.duplicates)
        stats["duplicates_merged"] = merged
        _count(stats, "after_duplicates", user, item, **sizes)

        if self.min_rating is not None:
            keep = weight >= self.min_rating
            user, item, weight, ts = _take(keep, user, item, weight, ts)
            if not len(user):
                raise DataValidationError(
                    f"preprocess.min_rating={self.min_rating:g} removes every interaction; lower it."
                )
        _count(stats, "after_min_rating", user, item, **sizes)

        if self.weight == "binary":
            weight = np.ones(len(user), dtype=np.float32)
        elif self.weight == "log":
            if (weight < 0).any():
                raise DataValidationError(
                    f"preprocess.weight=log needs ratings >= 0; got {int((weight < 0).sum())} negative rows. "
                    "Set preprocess.min_rating=0 or another weight."
                )
            weight = np.log1p(weight.astype(np.float64)).astype(np.float32)

        keep, iterations = _k_core(user, item, **sizes, user_core=self.user_core, item_core=self.item_core)
        if not keep.any():
            names = [f"{k}={v}" for k, v in (("user_core", self.user_core), ("item_core", self.item_core)) if v > 1]
            raise DataValidationError(
                f"preprocess.{' and '.join(names)} {'removes' if len(names) == 1 else 'remove'} every interaction; "
                f"lower {'it' if len(names) == 1 else 'them'}."
            )
        user, item, weight, ts = _take(keep, user, item, weight, ts)
        stats["kcore_iterations"] = iterations
        _count(stats, "after_kcore", user, item, **sizes)

        out = _compact(data, user, item, weight, ts)
        stats["users_dropped"] = data.n_users - out.n_users
        stats["items_dropped"] = data.n_items - out.n_items
        return out, stats

    def model_input(self, data: Dataset) -> Dataset:
        """``data`` with the weights a model trains on: for ``bm25``/``tfidf``, implicit's weighting of its
        users x items matrix (:mod:`privrec.models.weighting`; duplicate pairs summed first, each row gets its
        cell's weight, split evenly among the rows of a repeated pair, so the model's sum is the cell's weight);
        otherwise ``data`` itself (its weights were set by :meth:`apply`). Same vocabularies,
        rows, timestamps and attributes: only ``weight`` changes. Call it on the training data a model sees
        (after any privacy treatment), never on data that includes held-out interactions."""
        if self.weight not in _MODEL_WEIGHTS or data.n_interactions == 0:
            return data
        if (data.weight < 0).any():
            raise DataValidationError(
                f"preprocess.weight={self.weight} needs weights >= 0; got {int((data.weight < 0).sum())} negative "
                "rows. Set preprocess.min_rating=0 or another weight."
            )
        from privrec.models.weighting import bm25, tfidf  # only models/ imports implicit

        counts = data.to_csr()
        weighted = bm25(counts, K1=self.bm25_k1, B=self.bm25_b) if self.weight == "bm25" else tfidf(counts)
        weighted.sum_duplicates()
        weighted.sort_indices()
        # each interaction row takes its cell's weight: cells in CSR order have increasing keys u * n_items + i
        n_items = np.int64(data.n_items)
        cell = np.repeat(np.arange(data.n_users, dtype=np.int64), np.diff(weighted.indptr)) * n_items
        cell += weighted.indices
        row = data.user_idx.astype(np.int64) * n_items + data.item_idx
        pos = np.minimum(np.searchsorted(cell, row), max(len(cell) - 1, 0))
        found = cell[pos] == row if len(cell) else np.zeros(len(row), dtype=bool)
        share = np.maximum(np.bincount(pos[found], minlength=len(cell))[pos], 1)  # a repeated pair's rows split it
        weight = np.where(found, weighted.data[pos] / share, 0.0).astype(np.float32)
        return data.with_interactions(data.user_idx, data.item_idx, weight, data.timestamp)

    def digest(self, data: Dataset) -> str:
        """The run's ``data.preprocessed_sha256`` of ``data`` (the output of :meth:`apply`):
        :meth:`Dataset.checksum`, and for ``bm25``/``tfidf`` (weights computed later, on the training data)
        the SHA-256 of that checksum with the weighting and its parameters, so every weight has its digest."""
        base = data.checksum()
        if self.weight not in _MODEL_WEIGHTS:
            return base
        spec = f"weight={self.weight}" + (f";K1={self.bm25_k1!r};B={self.bm25_b!r}" if self.weight == "bm25" else "")
        return hashlib.sha256(f"{base}\n{spec}".encode()).hexdigest()


# ---------------------------------------------------------------------- steps
def _count(stats: dict[str, float], stage: str, user: NDArray, item: NDArray, *, n_users: int, n_items: int) -> None:
    stats[f"interactions_{stage}"] = len(user)
    stats[f"users_{stage}"] = int(np.count_nonzero(np.bincount(user, minlength=n_users)))
    stats[f"items_{stage}"] = int(np.count_nonzero(np.bincount(item, minlength=n_items)))


def _take(keep: NDArray[np.bool_], *arrays: NDArray | None) -> tuple:
    return tuple(None if a is None else a[keep] for a in arrays)


def _merge_duplicates(data: Dataset, how: str) -> tuple[NDArray, NDArray, NDArray, NDArray | None, int]:
    """One row per (user, item); returns the arrays in original row order and the number of rows merged away."""
    n = data.n_interactions
    user, item, weight, ts = data.user_idx, data.item_idx, data.weight, data.timestamp
    pair = user.astype(np.int64) * max(1, data.n_items) + item
    unique_pairs = np.sort(pair)  # one-key sort: several times faster than the lexsort below, which most logs skip
    if not np.any(unique_pairs[1:] == unique_pairs[:-1]):
        return user, item, weight, ts, 0
    row = np.arange(n)
    # Sort so the row to keep is the last of its group; later keys in lexsort are more significant.
    if how == "max":
        keys = (row,) + (() if ts is None else (ts,)) + (weight, pair)
    elif how == "last":
        keys = (row,) + (() if ts is None else (ts,)) + (pair,)
    else:  # "sum": keep the last row by position; weight summed, timestamp the latest
        keys = (row, pair)
    order = np.lexsort(keys)
    sorted_pair = pair[order]
    last = np.flatnonzero(np.append(sorted_pair[1:] != sorted_pair[:-1], True))
    merged = n - len(last)
    if merged == 0:
        return user, item, weight, ts, 0
    kept = order[last]
    position = np.argsort(kept, kind="stable")  # back to original row order
    kept = kept[position]
    if how == "sum":
        starts = np.concatenate([[0], last[:-1] + 1])
        new_weight = np.add.reduceat(weight[order].astype(np.float64), starts).astype(np.float32)
        new_ts = None if ts is None else np.maximum.reduceat(ts[order], starts)[position]
        return user[kept], item[kept], new_weight[position], new_ts, merged
    return user[kept], item[kept], weight[kept], None if ts is None else ts[kept], merged


def _k_core(
    user: NDArray, item: NDArray, *, n_users: int, n_items: int, user_core: int, item_core: int
) -> tuple[NDArray[np.bool_], int]:
    """Mask of rows in the (user_core, item_core)-core, found by iterating to the fixed point."""
    keep = np.ones(len(user), dtype=bool)
    iterations = 0
    if user_core <= 1 and item_core <= 1:
        return keep, iterations
    while True:  # each pass removes rows or stops; at most as many passes as rows
        iterations += 1
        u_count = np.bincount(user[keep], minlength=n_users)
        i_count = np.bincount(item[keep], minlength=n_items)
        ok = keep & (u_count[user] >= user_core) & (i_count[item] >= item_core)
        if ok.sum() == keep.sum():
            return keep, iterations
        keep = ok


def _compact(data: Dataset, user: NDArray, item: NDArray, weight: NDArray, ts: NDArray | None) -> Dataset:
    """A Dataset over only the users and items that still have interactions, re-indexed in their old order."""
    new_user, users_left = _reindex(user, data.n_users)
    new_item, items_left = _reindex(item, data.n_items)
    return Dataset(
        users=Vocabulary(data.users.ids[users_left]),
        items=Vocabulary(data.items.ids[items_left]),
        user_idx=new_user,
        item_idx=new_item,
        weight=weight,
        timestamp=ts,
        user_attributes=data.user_attributes.iloc[users_left].reset_index(drop=True),
        schema=data.schema,
        name=data.name,
    )


def _reindex(idx: NDArray, size: int) -> tuple[NDArray[np.int32], NDArray[np.intp]]:
    """``idx`` re-indexed onto the indices that occur in it, in their old order, and those indices: linear time
    (a count and a lookup table), and no copy of the mapping when every index still occurs."""
    present = np.bincount(idx, minlength=size) > 0
    left = np.flatnonzero(present)
    if len(left) == size:
        return idx.astype(np.int32), left
    lookup = np.cumsum(present, dtype=np.int64) - 1
    return lookup[idx].astype(np.int32), left
