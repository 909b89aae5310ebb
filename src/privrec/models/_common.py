"""Shared checks and list utilities for the models (private: import the public names from ``privrec.models``).

Every message follows the house shape and never contains a user id or a record value: counts only.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Protocol

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, DataValidationError, NotFittedError
from privrec.models.base import Recommender
from privrec.privacy.base import PrivacyReport
from privrec.progress import track as track_progress  # noqa: F401 - the models' one progress hook

#: implicit marks filtered-out and padding slots with this score (``-np.finfo(np.float32).max``).
IMPLICIT_NEG = np.float32(-np.finfo(np.float32).max)


# ---------------------------------------------------------------------- hyperparameters
def _show(value: object) -> str:
    """``repr`` of a configured value, with numpy scalars shown as plain Python numbers."""
    if isinstance(value, Integral) and not isinstance(value, bool):
        return repr(int(value))
    if isinstance(value, Real) and not isinstance(value, bool):
        return repr(float(value))
    return repr(value)


def check_int(name: str, value: object, *, minimum: int) -> int:
    """An integer (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ConfigError(f"model.{name} must be an integer >= {minimum}; got {_show(value)}.")
    if value < minimum:
        raise ConfigError(f"model.{name} must be >= {minimum}; got {_show(value)}.")
    return int(value)


def check_float(name: str, value: object, *, low: float, high: float = math.inf, low_open: bool = False) -> float:
    """A finite real number in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ConfigError(f"model.{name} must be a finite number; got {_show(value)}.")
    value = float(value)
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        if high == math.inf:
            rule = f"> {low:g}" if low_open else f">= {low:g}"
        else:
            rule = f"in {'(' if low_open else '['}{low:g}, {high:g}]"
        raise ConfigError(f"model.{name} must be {rule}; got {_show(value)}.")
    return value


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"model.{name} must be one of {list(choices)}; got {value!r}.")
    return str(value)


def check_fallback(value: object) -> None:
    if value is not None and not isinstance(value, Recommender):
        raise ConfigError(
            f"model.fallback must be a Recommender (with fit, recommend and score) or None; "
            f"got {type(value).__name__}."
        )


# ---------------------------------------------------------------------- call arguments
def check_rng(owner: str, rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(
            f"{owner}.fit rng must be a numpy.random.Generator; got {type(rng).__name__}. "
            "Pass numpy.random.default_rng(seed) or a stream from privrec.random.streams."
        )
    return rng


def check_train(owner: str, train: object) -> Dataset:
    if not isinstance(train, Dataset):
        raise DataValidationError(f"{owner}.fit train must be a privrec Dataset; got {type(train).__name__}.")
    if train.n_interactions == 0:
        raise DataValidationError(
            f"{owner}.fit train must hold at least one interaction; got 0 "
            f"({train.n_users} users, {train.n_items} items). Check the split and the privacy treatment."
        )
    if train.n_items == 0:
        raise DataValidationError(f"{owner}.fit train must have at least one item; got 0.")
    bad = int(np.count_nonzero(~np.isfinite(train.weight)))
    if bad:
        raise DataValidationError(f"{owner}.fit train weights must be finite; got {bad} non-finite weights.")
    return train


def check_fitted(model: object, method: str) -> None:
    if getattr(model, "user_items_", None) is None:
        name = type(model).__name__
        raise NotFittedError(f"{name}.{method} called before fit; call fit(train, rng=...) first.")


def check_users(owner: str, users: object, n_users: int, *, kind: str = "user") -> NDArray[np.int64]:
    """A 1-D array of user indices in ``[0, n_users)``, as int64 (``kind="item"``: item indices)."""
    arr = np.asarray(users)
    what = f"{kind}s"
    if arr.ndim != 1:
        raise DataValidationError(
            f"{owner} {what} must be a one-dimensional array of {kind} indices; got {arr.ndim} dimensions."
        )
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise DataValidationError(f"{owner} {what} must be integer {kind} indices; got dtype {arr.dtype}.")
    bad = int(np.count_nonzero((arr < 0) | (arr >= n_users)))
    if bad:
        raise DataValidationError(
            f"{owner} {what} must be indices in [0, {n_users}); got {bad} out of range. "
            f"Map external ids with Dataset.{what}.index_of first."
        )
    return arr.astype(np.int64, copy=False)


def check_n(owner: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise ConfigError(f"{owner} n must be an integer >= 1; got {_show(n)}.")
    return int(n)


class _HasUsers(Protocol):
    """What the argument checks read from a model (``n_users_`` exists once it is fitted)."""

    @property
    def n_users_(self) -> int: ...


def checked_users(model: _HasUsers, method: str, users: object) -> NDArray[np.int64]:
    """What ``model.<method>(users, ...)`` starts with: the model is fitted and ``users`` are valid indices."""
    check_fitted(model, method)
    return check_users(f"{type(model).__name__}.{method}", users, model.n_users_)


def recommend_args(model: _HasUsers, users: object, n: object) -> tuple[NDArray[np.int64], int]:
    """The checks every ``recommend`` starts with: fitted, valid user indices, ``n >= 1``."""
    return checked_users(model, "recommend", users), check_n(f"{type(model).__name__}.recommend", n)


# ---------------------------------------------------------------------- lists
def empty_lists(n_rows: int, n: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Item and score arrays filled with the padding values (-1, -inf)."""
    return np.full((n_rows, n), -1, dtype=np.int64), np.full((n_rows, n), -np.inf, dtype=np.float32)


def top_k_rows(
    keys: NDArray, k: int, *, exclude: sp.csr_matrix | None = None
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Per row, the columns of the ``k`` largest ``keys``, best first, and which of them are valid.

    ``exclude`` (CSR, one row per row of ``keys``) marks cells that may not be chosen (seen items); such
    cells, and ``-inf`` keys, come back with ``valid`` false. Keys must be distinct within a row for a
    deterministic order (callers fold a tie-break into them).
    """
    keys = np.array(keys, dtype=np.float64)
    n_rows, n_cols = keys.shape
    if exclude is not None:
        keys[np.repeat(np.arange(n_rows), np.diff(exclude.indptr)), exclude.indices] = -np.inf
    if k < n_cols:
        top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    else:
        top = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    top_keys = np.take_along_axis(keys, top, axis=1)
    order = np.argsort(-top_keys, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    return top, np.isfinite(np.take_along_axis(top_keys, order, axis=1))


def top_k_scores(
    scores: NDArray, k: int, *, exclude: sp.csr_matrix | None = None
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Per row, the columns of the ``k`` highest finite ``scores`` (float32), best first, and which are valid.

    Equal scores are ordered by column, lowest first, exactly: each float32 score is mapped to an
    order-preserving integer and the column is folded in, so every key of a row is distinct. ``exclude``
    (CSR, one row per row of ``scores``) marks cells that may not be chosen (seen items); such cells and
    non-finite scores come back with ``valid`` false, after every valid column.
    """
    scores = np.asarray(scores, dtype=np.float32)
    n_rows, n_cols = scores.shape
    bits = np.ascontiguousarray(scores).view(np.int32).astype(np.int64)
    keys = np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)  # -0.0 and +0.0 both map to 0
    keys = keys * n_cols + (n_cols - 1 - np.arange(n_cols, dtype=np.int64))
    floor = np.iinfo(np.int64).min
    keys[~np.isfinite(scores)] = floor
    if exclude is not None:
        keys[np.repeat(np.arange(n_rows), np.diff(exclude.indptr)), exclude.indices] = floor
    if k < n_cols:
        top = np.argpartition(keys, n_cols - k, axis=1)[:, n_cols - k :]
    else:
        top = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    top_keys = np.take_along_axis(keys, top, axis=1)
    order = np.argsort(top_keys, axis=1)[:, ::-1]  # keys are distinct except the floor, which goes last
    top = np.take_along_axis(top, order, axis=1)
    return top, np.take_along_axis(top_keys, order, axis=1) > floor


def seen_mask(rows: sp.csr_matrix, ids: NDArray) -> NDArray[np.bool_]:
    """``mask[r, j]``: whether item ``ids[r, j]`` is stored in row ``r`` of ``rows`` (vectorised, exact)."""
    n_rows, n_items = rows.shape
    counts = np.diff(rows.indptr)
    keys = np.repeat(np.arange(n_rows, dtype=np.int64), counts) * n_items + rows.indices
    if not rows.has_sorted_indices:
        keys.sort()
    query = np.arange(n_rows, dtype=np.int64)[:, None] * n_items + np.clip(ids, 0, None)
    if keys.size == 0:
        return np.zeros(ids.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return (keys[pos] == query) & (ids >= 0)


def normalize_lists(
    ids: NDArray, scores: NDArray, n: int, *, seen: sp.csr_matrix | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Turn implicit's ``(ids, scores)`` into privrec's padded lists of width ``n``.

    A slot is invalid when its id is negative, its score is implicit's ``-FLT_MAX`` marker (or -inf / NaN),
    or (when ``seen`` is given) the item is in the user's row. Valid slots keep their order and move to the
    front; invalid ones become (-1, -inf). The result is truncated or padded to ``n`` columns.
    """
    ids = np.asarray(ids).astype(np.int64, copy=False)
    scores = np.asarray(scores).astype(np.float32, copy=False)
    invalid = (ids < 0) | ~(scores > IMPLICIT_NEG)
    if seen is not None:
        invalid |= seen_mask(seen, ids)
    if invalid.any():
        order = np.argsort(invalid, axis=1, kind="stable")
        ids = np.take_along_axis(ids, order, axis=1)
        scores = np.take_along_axis(scores, order, axis=1)
        invalid = np.take_along_axis(invalid, order, axis=1)
        ids[invalid] = -1
        scores[invalid] = -np.inf
    out_ids, out_scores = empty_lists(ids.shape[0], n)
    k = min(n, ids.shape[1])
    out_ids[:, :k] = ids[:, :k]
    out_scores[:, :k] = scores[:, :k]
    return out_ids, out_scores



class Unpersonalized:
    """The optional contract members of a model that learns no user representation and draws nothing at
    random (popularity models): deterministic, no user embeddings, not a privacy mechanism."""

    @property
    def deterministic(self) -> bool:
        """Always true: nothing is random."""
        return True

    def user_embeddings(self, users: NDArray | None = None) -> NDArray[np.float32] | None:
        """``None``: no user representation is learned."""
        return None

    def privacy_report(self) -> PrivacyReport | None:
        """``None``: not a privacy mechanism."""
        return None
