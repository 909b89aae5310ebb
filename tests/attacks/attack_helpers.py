"""Small datasets and fake models with known answers for the attack tests (imported by the test modules)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from privrec.data.dataset import Dataset, Schema, Vocabulary

#: External ids that must never show up in a result, a message or a warning.
SECRET = "secret-user-"


def make_dataset(user_idx, item_idx, n_users, n_items, *, timestamp=None, attrs=None, schema=None) -> Dataset:
    user_idx = np.asarray(user_idx, dtype=np.int64)
    return Dataset(
        users=Vocabulary(np.array([f"{SECRET}{i:04d}" for i in range(n_users)], dtype=object)),
        items=Vocabulary(np.array([f"item-{i}" for i in range(n_items)], dtype=object)),
        user_idx=user_idx,
        item_idx=np.asarray(item_idx, dtype=np.int64),
        weight=np.ones(len(user_idx), dtype=np.float32),
        timestamp=None if timestamp is None else np.asarray(timestamp, dtype=np.int64),
        user_attributes=pd.DataFrame(index=pd.RangeIndex(n_users)) if attrs is None else attrs,
        schema=schema or Schema(),
        name="test",
    )


def random_dataset(n_users=60, n_items=40, *, density=0.15, seed=0, min_items=1, attrs=None, schema=None) -> Dataset:
    """Random profiles (popularity skewed), every user with at least ``min_items`` distinct items."""
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    mask = rng.random((n_users, n_items)) < density * pop / pop.mean()
    for k in range(min_items):  # guarantee the minimum with distinct columns
        mask[np.arange(n_users), (np.arange(n_users) * 7 + k * 3) % n_items] = True
    u, i = np.nonzero(mask)
    ts = 1_000_000_000 + rng.integers(0, 365 * 86_400, len(u))
    return make_dataset(u, i, n_users, n_items, timestamp=ts, attrs=attrs, schema=schema)


def empty_like(data: Dataset) -> Dataset:
    return data.subset(np.zeros(data.n_interactions, dtype=bool))


class FakeModel:
    """A fitted-model stand-in: ``score(users)`` from a fixed dense matrix; ``user_embeddings()`` gives the
    optional ``factors`` (NaN rows for users without training data, as the model contract says) or None."""

    deterministic = True

    def __init__(self, scores: np.ndarray, *, factors: np.ndarray | None = None, has_data=None) -> None:
        self.scores = np.asarray(scores, dtype=np.float32)
        self.has_data = np.ones(len(scores), dtype=bool) if has_data is None else np.asarray(has_data)
        self.factors = None if factors is None else np.asarray(factors, dtype=np.float32)

    def score(self, users):
        return self.scores[np.asarray(users)]

    def user_embeddings(self, users=None):
        if self.factors is None:
            return None
        out = self.factors.copy()
        out[~self.has_data] = np.nan
        return out if users is None else out[np.asarray(users)]

    def privacy_report(self):
        return None
