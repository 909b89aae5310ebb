"""The model contract and the :class:`Recommendations` it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from privrec.data.dataset import Dataset

if TYPE_CHECKING:
    from privrec.privacy.base import PrivacyReport

__all__ = ["Recommendations", "Recommender"]


@dataclass(frozen=True)
class Recommendations:
    """Top-``n`` lists for a batch of users.

    ``users``: user indices (shape ``(u,)``); ``items``: item indices, best first (shape ``(u, n)``), padded
    with -1 where fewer than ``n`` items were available; ``scores``: matching scores (``-inf`` at padding).
    ``fallback``: true for users served by the fallback model (no training rows).
    """

    users: NDArray[np.int64]
    items: NDArray[np.int64]
    scores: NDArray[np.float32]
    fallback: NDArray[np.bool_]

    @property
    def n(self) -> int:
        return self.items.shape[1]


@runtime_checkable
class Recommender(Protocol):
    """Every model: ``fit`` returns self; learned state ends in ``_``; ``recommend`` before ``fit`` raises
    :class:`~privrec.errors.NotFittedError`; users with no training rows are served by the fallback.

    Besides fitting and serving, a model answers three questions, so that attacks and the run harness never
    reach into a wrapped library's objects:

    - :meth:`user_embeddings`: the learned user representation, or ``None`` for a model that has none.
    - :attr:`deterministic`: whether a seeded ``fit`` gives bit-identical results.
    - :meth:`privacy_report`: the guarantee of a model that is itself a privacy mechanism, else ``None``.
    """

    def fit(self, train: Dataset, *, rng: np.random.Generator) -> Self: ...

    def recommend(self, users: NDArray, *, n: int, exclude_seen: bool = True) -> Recommendations: ...

    def score(self, users: NDArray) -> NDArray[np.float32]:
        """Dense scores ``(len(users), n_items)`` for every item (seen items not masked)."""
        ...

    def user_embeddings(self, users: NDArray | None = None) -> NDArray[np.float32] | None:
        """The learned representation of ``users`` (all users when ``None``), one float32 row per user.

        ``None`` when the model learns no user representation (popularity, item-kNN): the answer depends on
        the class, not on whether it was fitted, and callers record what needs embeddings as missing. A model
        with embeddings raises :class:`~privrec.errors.NotFittedError` before ``fit``. Rows of users the model
        serves through its fallback (no training rows) are NaN: the model learned nothing about them. For a
        matrix-factorisation model ``score(u) == user_embeddings(u) @ item_embeddings().T`` for the other
        users (bias columns included: BPR and LMF append them to implicit's factors).
        """
        ...

    @property
    def deterministic(self) -> bool:
        """Whether two ``fit`` calls with equally seeded generators give bit-identical scores (known before
        ``fit``: it depends on the hyperparameters, e.g. thread count). A model with a fallback is
        deterministic only if its fallback is too."""
        ...

    def privacy_report(self) -> PrivacyReport | None:
        """What a model that is itself a privacy mechanism (a differentially private ALS, say) guarantees,
        measured on the fitted model like a transform's report (logged under ``privacy/``); ``None`` for
        every model that is not one (all of today's)."""
        ...
