"""The plumbing of every model that learns from users with training rows and routes the others to a fallback
(private: subclass :class:`~privrec.models.FactorizationModel` or use the implicit wrappers)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from privrec.data.dataset import Dataset
from privrec.models._common import (
    check_rng,
    check_train,
    checked_users,
    empty_lists,
    recommend_args,
    top_k_scores,
)
from privrec.models.base import Recommendations, Recommender
from privrec.models.popularity import Popularity

if TYPE_CHECKING:
    from privrec.privacy.base import PrivacyReport


class RoutedModel:
    """``fit`` / ``recommend`` / ``score`` for a model with a fallback, around three hooks.

    Subclasses are keyword-only dataclasses with a ``fallback: Recommender | None`` field and implement
    :meth:`_fit_known` (learn from the users x items CSR), :meth:`_known_scores` and :meth:`_recommend_known`
    (for users with training rows only). Everything else is here: argument checks, a fresh copy of the
    fallback (default :class:`~privrec.models.Popularity`) fitted on the same data with an independent child
    generator, routing users without training rows to it (``Recommendations.fallback`` true), and the
    optional contract members (:attr:`deterministic`, :meth:`user_embeddings`, :meth:`privacy_report`).

    Learned state: ``fallback_`` (the fitted fallback, a copy of ``fallback``), ``user_items_`` (CSR
    confidences, users x items, sorted indices), ``has_data_`` (users with at least one training row),
    ``n_fallback_users_``, ``n_users_``, ``n_items_``; subclasses add their own.
    """

    fallback: Recommender | None

    #: Upper bound on the elements of one block of scores (or fetched items) handled at once.
    block_elements: ClassVar[int] = 1 << 22

    # ------------------------------------------------------------------ hooks
    def _fit_known(self, user_items: sp.csr_matrix, *, rng: np.random.Generator) -> None:  # pragma: no cover
        """Learn from ``user_items`` (users x items CSR of confidences); set the learned state."""
        raise NotImplementedError

    def _known_scores(self, users: NDArray[np.int64]) -> NDArray[np.float32]:  # pragma: no cover - abstract
        """Dense float32 scores ``(len(users), n_items)`` of users with training rows."""
        raise NotImplementedError

    def _recommend_known(
        self, users: NDArray[np.int64], n: int, exclude_seen: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Padded ``(items, scores)`` lists of width ``n`` for users with training rows: dense score blocks of
        about ``block_elements`` scores (users x all items) ranked with seen items excluded; equal scores, lower
        item index first. Models with their own ranking (implicit's) override this."""
        items, scores = empty_lists(len(users), n)
        k = min(n, self.n_items_)
        chunk = max(1, self.block_elements // max(1, self.n_items_))
        for start in range(0, len(users), chunk):
            u = users[start : start + chunk]
            block = self._known_scores(u)
            top, valid = top_k_scores(block, k, exclude=self.user_items_[u] if exclude_seen else None)
            rows = slice(start, start + len(u))
            items[rows, :k] = np.where(valid, top, -1)
            scores[rows, :k] = np.where(valid, np.take_along_axis(block, top, axis=1), -np.inf)
        return items, scores

    def _fit_is_deterministic(self) -> bool:
        """Whether :meth:`_fit_known` is bit-reproducible for a seeded generator (the fallback aside)."""
        return True

    # ------------------------------------------------------------------ contract
    def fit(self, train: Dataset, *, rng: np.random.Generator) -> Self:
        """Train on ``train`` (weights are confidences); ``rng`` seeds the model and, through an independent
        child generator, the fallback."""
        name = type(self).__name__
        check_rng(name, rng)
        check_train(name, train)
        user_items = train.to_csr()
        if not user_items.has_sorted_indices:
            user_items.sort_indices()
        fallback_rng = rng.spawn(1)[0]  # independent of the draws _fit_known takes from rng
        fallback = Popularity() if self.fallback is None else copy.deepcopy(self.fallback)

        self._fit_known(user_items, rng=rng)
        fallback.fit(train, rng=fallback_rng)

        has_data = np.diff(user_items.indptr) > 0
        self.fallback_ = fallback
        self.has_data_ = has_data
        self.n_fallback_users_ = int(np.count_nonzero(~has_data))
        self.n_users_, self.n_items_ = user_items.shape
        self.user_items_ = user_items
        return self

    def recommend(self, users: NDArray, *, n: int, exclude_seen: bool = True) -> Recommendations:
        """Top-``n`` lists; users without training rows are served (and flagged) by the fallback."""
        users, n = recommend_args(self, users, n)
        items, scores = empty_lists(len(users), n)
        known = self.has_data_[users]

        pos = np.flatnonzero(known)
        if pos.size:
            items[pos], scores[pos] = self._recommend_known(users[pos], n, exclude_seen)
        pos = np.flatnonzero(~known)
        if pos.size:
            fb = self.fallback_.recommend(users[pos], n=n, exclude_seen=exclude_seen)
            items[pos], scores[pos] = fb.items, fb.scores
        return Recommendations(users=users, items=items, scores=scores, fallback=~known)

    def score(self, users: NDArray) -> NDArray[np.float32]:
        """Dense ``(len(users), n_items)`` float32 scores (seen items not masked); fallback rows from the fallback."""
        users = checked_users(self, "score", users)
        out = np.empty((len(users), self.n_items_), dtype=np.float32)
        known = self.has_data_[users]
        pos = np.flatnonzero(known)
        if pos.size:
            out[pos] = self._known_scores(users[pos])
        pos = np.flatnonzero(~known)
        if pos.size:
            out[pos] = self.fallback_.score(users[pos])
        return out

    @property
    def deterministic(self) -> bool:
        """True when a seeded fit is bit-reproducible: this model's own fit and its fallback's (the default
        :class:`~privrec.models.Popularity` always is)."""
        fallback_ok = self.fallback is None or bool(self.fallback.deterministic)
        return bool(self._fit_is_deterministic()) and fallback_ok

    def user_embeddings(self, users: NDArray | None = None) -> NDArray[np.float32] | None:
        """``None``: this model learns no user representation (see :class:`~privrec.models.Recommender`)."""
        return None

    def privacy_report(self) -> PrivacyReport | None:
        """``None``: this model is not a privacy mechanism (a subclass that is one returns its report)."""
        return None
