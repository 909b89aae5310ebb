"""The model contract and the :class:`Recommendations` it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from privrec.data.dataset import Dataset

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
    :class:`~privrec.errors.NotFittedError`; users with no training rows are served by the fallback."""

    def fit(self, train: Dataset, *, rng: np.random.Generator) -> Self: ...

    def recommend(self, users: NDArray, *, n: int, exclude_seen: bool = True) -> Recommendations: ...

    def score(self, users: NDArray) -> NDArray[np.float32]:
        """Dense scores ``(len(users), n_items)`` for every item (seen items not masked)."""
        ...
