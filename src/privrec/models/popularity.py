"""Most-popular baseline, also the default fallback for users without training rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from privrec.data.dataset import Dataset
from privrec.models._common import (
    Unpersonalized,
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

__all__ = ["Popularity"]


@dataclass(kw_only=True, eq=False)
class Popularity(Unpersonalized):
    """Recommend the items the most training users have, best first.

    An item's score is the number of distinct training users with at least one row for it (weights are
    ignored). Ties are broken by item index, lowest first, so the order is fully deterministic. Items nobody
    has still rank (last, score 0). Every user is served, including users with no training rows, so
    ``Recommendations.fallback`` is always false: this model *is* the usual fallback.

    ``recommend`` ranks a dense ``(batch, n_items)`` block per batch of users (seen items set to -inf,
    then ``argpartition``), with batches sized so a block stays under about 32 MB.

    Learned state: ``user_items_`` (CSR, users x items), ``item_counts_`` (int64), ``rank_`` (position of
    each item in the global order, 0 = most popular), ``has_data_``, ``n_users_``, ``n_items_``.
    """

    #: Upper bound on the elements of one dense block in ``recommend`` (float64: 8 bytes each).
    block_elements: ClassVar[int] = 1 << 22

    def fit(self, train: Dataset, *, rng: np.random.Generator) -> Self:
        """Count the users of each item in ``train``. ``rng`` is accepted for the contract; nothing is random."""
        name = type(self).__name__
        check_rng(name, rng)
        check_train(name, train)
        user_items = train.to_csr()
        binary = sp.csr_matrix((np.ones_like(user_items.data), user_items.indices, user_items.indptr),
                               shape=user_items.shape)
        counts = np.bincount(binary.indices, minlength=train.n_items).astype(np.int64)
        # best first: larger count, then smaller item index
        order = np.lexsort((np.arange(train.n_items), -counts))
        rank = np.empty(train.n_items, dtype=np.int64)
        rank[order] = np.arange(train.n_items)

        self.item_counts_ = counts
        self.rank_ = rank
        self.has_data_ = np.diff(user_items.indptr) > 0
        self.n_users_, self.n_items_ = user_items.shape
        self.user_items_ = user_items
        return self

    def recommend(self, users: NDArray, *, n: int, exclude_seen: bool = True) -> Recommendations:
        users, n = recommend_args(self, users, n)
        items, scores = empty_lists(len(users), n)
        n_items = self.n_items_
        k = min(n, n_items)
        key = -self.rank_.astype(np.float64)  # unique per item: larger is better
        counts = self.item_counts_.astype(np.float32)
        batch = max(1, self.block_elements // max(1, n_items))
        for start in range(0, len(users), batch):
            u = users[start : start + batch]
            top, valid = top_k_rows(np.broadcast_to(key, (len(u), n_items)), k,
                                    exclude=self.user_items_[u] if exclude_seen else None)
            items[start : start + len(u), :k] = np.where(valid, top, -1)
            scores[start : start + len(u), :k] = np.where(valid, counts[top], -np.inf)
        return Recommendations(users=users, items=items, scores=scores, fallback=np.zeros(len(users), dtype=bool))

    def score(self, users: NDArray) -> NDArray[np.float32]:
        """The item counts, one identical row per user (seen items not masked)."""
        users = checked_users(self, "score", users)
        return np.tile(self.item_counts_.astype(np.float32), (len(users), 1))
