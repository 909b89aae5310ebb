"""The base of every matrix-factorisation recommender: a model is its two factor matrices."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from privrec.models._common import check_fitted, check_users, checked_users
from privrec.models._routing import RoutedModel

__all__ = ["FactorizationModel"]


class FactorizationModel(RoutedModel):
    """Base class of matrix-factorisation models: ``score(u, i) = user_factors_[u] @ item_factors_[i]``.

    A new model is a keyword-only dataclass subclass with its hyperparameters and a
    ``fallback: Recommender | None = None`` field, and implements one method::

        def _fit_factors(self, user_items, *, rng) -> tuple[user_factors, item_factors]

    which learns from ``user_items`` (users x items CSR of confidences, sorted indices; rows of users without
    training data are empty) and returns ``(n_users, d)`` and ``(n_items, d)`` arrays, stored as float32
    (bias terms, if any, are extra columns: a constant 1 on the user side meets an item-bias column). All
    randomness comes from ``rng``. Optionally it overrides ``_fit_is_deterministic()`` (default true: e.g.
    false for multi-threaded SGD), and :meth:`privacy_report` when the fit is a privacy mechanism (a
    differentially private ALS reports its epsilon there).

    Everything else is here and shared: argument and fitted-state checks, a fresh fallback
    (:class:`~privrec.models.Popularity` by default) for users without training rows, dense ``score``,
    batched ``recommend`` with seen-item exclusion (equal scores: lower item index first),
    :meth:`user_embeddings`, :meth:`item_embeddings` and :attr:`deterministic` (false when the fallback is
    not deterministic).

    Learned state: ``user_factors_`` and ``item_factors_`` (float32) and the state of every model with a
    fallback: ``fallback_``, ``user_items_``, ``has_data_``, ``n_fallback_users_``, ``n_users_``, ``n_items_``.
    """

    # ------------------------------------------------------------------ the one hook
    def _fit_factors(
        self, user_items: sp.csr_matrix, *, rng: np.random.Generator
    ) -> tuple[NDArray, NDArray]:  # pragma: no cover - abstract
        """``(user_factors, item_factors)`` learned from ``user_items``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ plumbing
    def _fit_known(self, user_items: sp.csr_matrix, *, rng: np.random.Generator) -> None:
        user_factors, item_factors = self._fit_factors(user_items, rng=rng)
        user_factors = np.asarray(user_factors, dtype=np.float32)  # no copy when already float32
        item_factors = np.asarray(item_factors, dtype=np.float32)
        n_users, n_items = user_items.shape
        if (user_factors.ndim != 2 or item_factors.ndim != 2 or user_factors.shape[0] != n_users
                or item_factors.shape[0] != n_items or user_factors.shape[1] != item_factors.shape[1]):
            raise ValueError(
                f"{type(self).__name__}._fit_factors must return (n_users, d) and (n_items, d) arrays for "
                f"{n_users} users and {n_items} items; got shapes {user_factors.shape} and {item_factors.shape}."
            )
        self.user_factors_ = user_factors
        self.item_factors_ = item_factors

    def _known_scores(self, users: NDArray[np.int64]) -> NDArray[np.float32]:
        return np.asarray(self.user_factors_[users] @ self.item_factors_.T, dtype=np.float32)

    # ------------------------------------------------------------------ contract
    def user_embeddings(self, users: NDArray | None = None) -> NDArray[np.float32]:
        """Rows of ``user_factors_`` for ``users`` (all users when ``None``), a float32 copy.

        Rows of users without training rows (served by the fallback) are NaN. For the other users
        ``score(users) == user_embeddings(users) @ item_embeddings().T`` (up to float32 rounding).
        """
        if users is None:
            check_fitted(self, "user_embeddings")
            users = np.arange(self.n_users_)
        else:
            users = checked_users(self, "user_embeddings", users)
        out = self.user_factors_[users]  # fancy indexing: a copy
        out[~self.has_data_[users]] = np.nan
        return out

    def item_embeddings(self, items: NDArray | None = None) -> NDArray[np.float32]:
        """Rows of ``item_factors_`` for ``items`` (all items when ``None``), a float32 copy.

        Every item has a row (items without training rows keep what the fit gave them, usually zeros).
        """
        check_fitted(self, "item_embeddings")
        if items is None:
            items = np.arange(self.n_items_)
        else:
            items = check_users(f"{type(self).__name__}.item_embeddings", items, self.n_items_, kind="item")
        return self.item_factors_[items]
