"""Small generated datasets with a known structure, for tests of every package."""

from __future__ import annotations

import numpy as np
import pandas as pd

from privrec.data.dataset import Dataset, Schema, Vocabulary

__all__ = ["tiny_dataset"]

_OCCUPATIONS = np.array(["artist", "doctor", "engineer", "student", "writer"])


def tiny_dataset(n_users: int = 30, n_items: int = 20, *, density: float = 0.3, seed: int = 0) -> Dataset:
    """A random implicit-feedback dataset with timestamps and MovieLens-like demographics.

    Every user has at least two interactions; user ids are ``"u0", "u1", ...`` and item ids ``"i0", ...``.
    Attributes: age (int), gender (F/M), occupation, zip_code (5 digits), age_band.
    """
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    mask[np.arange(n_users), (np.arange(n_users) + 1) % n_items] = True
    users, items = np.nonzero(mask)
    ages = rng.integers(16, 70, n_users)
    attrs = pd.DataFrame(
        {
            "age": ages,
            "gender": rng.choice(np.array(["F", "M"]), n_users),
            "occupation": rng.choice(_OCCUPATIONS, n_users),
            "zip_code": np.char.zfill(rng.integers(0, 99999, n_users).astype(str), 5),
            "age_band": np.where(ages < 35, "under 35", "35+"),
        }
    )
    return Dataset(
        users=Vocabulary(np.array([f"u{i}" for i in range(n_users)], dtype=object)),
        items=Vocabulary(np.array([f"i{i}" for i in range(n_items)], dtype=object)),
        user_idx=users.astype(np.int32),
        item_idx=items.astype(np.int32),
        weight=np.ones(len(users), dtype=np.float32),
        timestamp=1_000_000 + rng.permutation(len(users)).astype(np.int64) * 60,
        user_attributes=attrs,
        schema=Schema(
            quasi_identifiers=("age", "gender", "occupation", "zip_code"),
            sensitive=("gender", "age_band"),
            numeric=("age",),
            hierarchies=(("zip_code", "prefix"),),
        ),
        name="tiny",
    )
