"""Helpers for the data-layer tests: tiny hand-built datasets (a uniquely named module, imported by the tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from privrec.data import Dataset, Schema, Vocabulary


def make_dataset(
    rows: list[tuple[int, int, float] | tuple[int, int, float, int]],
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    attributes: dict[str, list] | None = None,
) -> Dataset:
    """A Dataset from ``(user_idx, item_idx, weight[, timestamp])`` rows; external ids are ``100 + idx``."""
    arr = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    user, item = arr[:, 0].astype(int), arr[:, 1].astype(int)
    n_users = n_users if n_users is not None else int(user.max()) + 1
    n_items = n_items if n_items is not None else int(item.max()) + 1
    attrs = pd.DataFrame(attributes) if attributes else None
    return Dataset(
        users=Vocabulary(np.arange(n_users) + 100),
        items=Vocabulary(np.arange(n_items) + 100),
        user_idx=user,
        item_idx=item,
        weight=arr[:, 2],
        timestamp=arr[:, 3].astype(np.int64) if arr.shape[1] > 3 else None,
        user_attributes=attrs,
        schema=Schema(sensitive=tuple(attributes)) if attributes else Schema(),
        name="tiny",
    )


def rows_of(data: Dataset) -> np.ndarray:
    """Interactions as a lexicographically sorted 2-D array (for multiset comparisons)."""
    cols = [data.user_idx, data.item_idx, data.weight]
    if data.timestamp is not None:
        cols.append(data.timestamp)
    arr = (
        np.column_stack([np.asarray(c, dtype=np.float64) for c in cols])
        if len(data.user_idx)
        else np.empty((0, len(cols)))
    )
    return arr[np.lexsort(arr.T[::-1])] if len(arr) else arr
