"""Most popular items within the user's (released) demographic cell: a fallback for users without data."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, DataWarning
from privrec.models._common import (
    Unpersonalized,
    check_int,
    check_rng,
    check_train,
    checked_users,
    empty_lists,
    recommend_args,
    top_k_rows,
)
from privrec.models.base import Recommendations

if TYPE_CHECKING:
    pass

__all__ = ["DemographicPopularity"]


@dataclass(kw_only=True, eq=False)
class DemographicPopularity(Unpersonalized):
    """Recommend the items most popular among the training users who share the user's demographic cell.

    A *cell* is the tuple of a user's values of ``attributes`` (default: the schema's quasi-identifiers that
    are columns of ``train.user_attributes``), taken as released: after
    :class:`~privrec.privacy.KAnonymity` they are the generalised strings (``"[20-29]"``, ``"021**"``), so
    cells are at least as coarse as the equivalence classes. An item's popularity in a cell is the number of
    training users of the cell with at least one row for it (weights are ignored), plus
    ``global_count / (max_global_count + 1)`` (< 1) as a tie-break; remaining ties go to the lower item
    index. Users with a missing value in any attribute (a suppressed row, say) and users of a cell with fewer
    than ``min_cell`` training users back off to global popularity (the number of training users per item).

    Users without training rows still have released demographics, which is what this model is for: serve
    them better than global popularity. It serves every user itself, so ``Recommendations.fallback`` is
    always false. Deterministic: ``rng`` is accepted for the contract.

    Fitting is vectorised: the cell x item counts are one sparse product (cell indicator transposed times
    the binary users x items matrix); ``recommend`` ranks dense blocks of about ``block_elements`` scores.

    Learned state: ``attributes_`` (the attributes used), ``cell_of_user_`` (cell index per user, -1 for
    global popularity), ``cell_items_`` (CSR, cells x items, user counts), ``cell_users_`` (training users per
    cell), ``item_counts_`` (global user count per item), ``rank_`` (global position of each item, 0 = most
    popular), ``user_items_`` (CSR, users x items), ``has_data_``, ``n_cells_``, ``n_backoff_users_`` (users
    served by global popularity), ``n_users_``, ``n_items_``.
    """

    attributes: tuple[str, ...] | None = None
    min_cell: int = 5

    #: Upper bound on the elements of one dense block in ``recommend``.
    block_elements: ClassVar[int] = 1 << 22

    def __post_init__(self) -> None:
        if self.attributes is not None:
            names = (self.attributes,) if isinstance(self.attributes, str) else tuple(self.attributes)
            bad = sum(not (isinstance(a, str) and a) for a in names)
            if not names or bad:
                raise ConfigError(
                    f"model.attributes must be None or a non-empty list of column names; got {len(names)} "
                    f"name(s) of which {bad} invalid."
                )
            if len(set(names)) != len(names):
                repeats = len(names) - len(set(names))
                raise ConfigError(f"model.attributes must not repeat a name; got {repeats} repeat(s).")
            self.attributes = names
        self.min_cell = check_int("min_cell", self.min_cell, minimum=1)

    # -------------------------------------------------------------- fit
    def fit(self, train: Dataset, *, rng: np.random.Generator) -> Self:
        """Count, per demographic cell, the training users of each item."""
        name = type(self).__name__
        check_rng(name, rng)
        check_train(name, train)
        attrs = train.user_attributes
        if self.attributes is None:
            names = tuple(a for a in train.schema.quasi_identifiers if a in attrs.columns)
            if not names:
                warnings.warn(
                    f"{name} found no demographic attributes (the schema names no quasi-identifier column); "
                    "every user gets global popularity.",
                    DataWarning,
                    stacklevel=2,
                )
        else:
            names = self.attributes
            missing = [a for a in names if a not in attrs.columns]
            if missing:
                raise ConfigError(
                    f"model.attributes must be user-attribute columns; got {len(missing)} that are not: "
                    f"{sorted(missing)}; columns are {sorted(map(str, attrs.columns))}."
                )
        user_items = train.to_csr()
        binary = sp.csr_matrix((np.ones_like(user_items.data), user_items.indices, user_items.indptr),
                               shape=user_items.shape)
        has_data = np.diff(user_items.indptr) > 0
        n_users, n_items = user_items.shape
        counts = np.bincount(binary.indices, minlength=n_items).astype(np.int64)
        order = np.lexsort((np.arange(n_items), -counts))  # best first: larger count, then lower index
        rank = np.empty(n_items, dtype=np.int64)
        rank[order] = np.arange(n_items)

        cell = _cells(attrs, names)
        with_cell = np.flatnonzero(cell >= 0)
        n_cells = int(cell.max()) + 1 if len(with_cell) else 0
        indicator = sp.csr_matrix(
            (np.ones(len(with_cell), dtype=np.float32), (with_cell, cell[with_cell])), shape=(n_users, n_cells)
        )
        cell_users = np.asarray(indicator.T @ has_data.astype(np.float64)).ravel().round().astype(np.int64)
        kept = np.flatnonzero(cell_users >= self.min_cell)  # cells big enough to serve
        new_id = np.full(n_cells, -1, dtype=np.int64)
        new_id[kept] = np.arange(len(kept))
        cell_of_user = np.where(cell >= 0, new_id[np.maximum(cell, 0)], -1) if n_cells else np.full(n_users, -1)
        cell_items = (indicator[:, kept].T @ binary).tocsr()
        cell_items.data = np.rint(cell_items.data)
        cell_items.sort_indices()

        self.attributes_ = names
        self.cell_of_user_ = cell_of_user.astype(np.int64)
        self.cell_items_ = cell_items.astype(np.float32)
        self.cell_users_ = cell_users[kept]
        self.item_counts_ = counts
        self.rank_ = rank
        self.has_data_ = has_data
        self.n_cells_ = len(kept)
        self.n_backoff_users_ = int((cell_of_user < 0).sum())
        self.n_users_, self.n_items_ = n_users, n_items
        self.user_items_ = user_items
        return self

    # -------------------------------------------------------------- serve
    def _block(self, users: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Integer ranking keys (unique per item, larger is better) and float32 scores for ``users``."""
        n_items = self.n_items_
        cells = self.cell_of_user_[users]
        in_cell = cells >= 0
        counts = np.zeros((len(users), n_items), dtype=np.float32)
        if in_cell.any():
            counts[in_cell] = self.cell_items_[cells[in_cell]].toarray()
        tie = (n_items - 1 - self.rank_)[None, :]
        keys = counts.astype(np.int64) * n_items + tie
        glob = self.item_counts_.astype(np.float32)
        scores = np.where(in_cell[:, None], counts + glob / np.float32(glob.max() + 1), glob[None, :])
        return keys, scores.astype(np.float32)

    def recommend(self, users: NDArray, *, n: int, exclude_seen: bool = True) -> Recommendations:
        users, n = recommend_args(self, users, n)
        items, scores = empty_lists(len(users), n)
        n_items = self.n_items_
        k = min(n, n_items)
        batch = max(1, self.block_elements // max(1, n_items))
        for start in range(0, len(users), batch):
            u = users[start : start + batch]
            keys, block = self._block(u)
            top, valid = top_k_rows(keys, k, exclude=self.user_items_[u] if exclude_seen else None)
            items[start : start + len(u), :k] = np.where(valid, top, -1)
            scores[start : start + len(u), :k] = np.where(valid, np.take_along_axis(block, top, axis=1), -np.inf)
        return Recommendations(users=users, items=items, scores=scores, fallback=np.zeros(len(users), dtype=bool))

    def score(self, users: NDArray) -> NDArray[np.float32]:
        """Cell popularity (+ global tie-break) per item, or global popularity for backed-off users."""
        users = checked_users(self, "score", users)
        return self._block(users)[1]


def _cells(attrs: pd.DataFrame, names: tuple[str, ...]) -> NDArray[np.int64]:
    """Cell index of every user (the distinct tuples of ``names``), -1 where any value is missing."""
    n = len(attrs)
    if not names:
        return np.full(n, -1, dtype=np.int64)
    key = np.zeros(n, dtype=np.int64)
    missing = np.zeros(n, dtype=bool)
    for a in names:
        column = attrs[a]
        cat = column.array if isinstance(column.dtype, pd.CategoricalDtype) else pd.Categorical(column)
        codes = np.asarray(cat.codes, dtype=np.int64)
        missing |= codes < 0
        key = pd.factorize(key * (len(cat.categories) + 1) + codes + 1)[0].astype(np.int64)
    cell = np.full(n, -1, dtype=np.int64)
    cell[~missing] = pd.factorize(key[~missing])[0]
    return cell
