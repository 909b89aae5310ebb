"""Core data types: :class:`Vocabulary`, :class:`Schema` and :class:`Dataset`.

Indices are contiguous ``0..n-1``; external ids are whatever the source file used. Name them
``user_id`` / ``user_idx`` (and ``item_id`` / ``item_idx``), never the same name for both.

Transforms never shrink the vocabularies: a user who opted out keeps its index and becomes an empty row,
so index *i* means the same person before and after every transform, inside every model and in every
per-segment metric.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from privrec.errors import DataValidationError

__all__ = ["Dataset", "Schema", "Vocabulary"]


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Immutable two-way mapping between external ids and contiguous indices ``0..len-1``."""

    ids: NDArray

    def __post_init__(self) -> None:
        ids = np.asarray(self.ids)
        if ids.ndim != 1:
            raise DataValidationError(f"Vocabulary ids must be one-dimensional; got {ids.ndim} dimensions.")
        ids = ids.copy()
        ids.setflags(write=False)
        object.__setattr__(self, "ids", ids)
        if not self._index.is_unique:
            raise DataValidationError(
                f"Vocabulary ids must be unique; got {len(ids) - self._index.nunique()} duplicates."
            )

    @cached_property
    def _index(self) -> pd.Index:
        # dtype=object keeps string ids as they are (pandas 3 would convert them to Arrow strings: ~3 s per
        # million ids); numeric ids keep their numeric index.
        return pd.Index(self.ids, dtype=object if self.ids.dtype == object else None)

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, ids: ArrayLike) -> NDArray[np.int64]:
        """Indices of external ``ids``; -1 where an id is unknown."""
        return self._index.get_indexer(np.asarray(ids))

    def id_of(self, idx: ArrayLike) -> NDArray:
        """External ids of indices ``idx``."""
        return self.ids[np.asarray(idx)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and np.array_equal(self.ids, other.ids)

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict:
        return {"ids": self.ids}

    def __setstate__(self, state: dict) -> None:
        object.__setattr__(self, "ids", state["ids"])


@dataclass(frozen=True)
class Schema:
    """What the user-attribute columns mean for privacy.

    ``quasi_identifiers``: attributes an adversary may know from elsewhere (age, gender, zip code...).
    ``sensitive``: attributes to protect or to infer in attacks. ``numeric``: the quasi-identifiers that are
    ordered numbers (generalised to ranges); the rest are categorical. ``hierarchies``: per categorical
    attribute, how it generalises (``"prefix"`` = truncate the string, as for zip codes).
    """

    quasi_identifiers: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    hierarchies: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("quasi_identifiers", "sensitive", "numeric"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        hier = self.hierarchies.items() if isinstance(self.hierarchies, dict) else self.hierarchies
        object.__setattr__(self, "hierarchies", tuple((str(k), str(v)) for k, v in hier))


@dataclass(frozen=True, eq=False)
class Dataset:
    """Interactions between users and items, plus user attributes.

    Interactions are parallel arrays (structure of arrays): ``user_idx``, ``item_idx`` (int32), ``weight``
    (float32, the implicit-feedback confidence) and ``timestamp`` (int64 seconds, or ``None`` when unknown).
    ``user_attributes`` has exactly one row per user index, in index order (``RangeIndex``); missing values
    are ``NA``. Arrays are read-only: derive a new Dataset with :meth:`with_interactions` or :meth:`subset`.
    """

    users: Vocabulary
    items: Vocabulary
    user_idx: NDArray[np.int32]
    item_idx: NDArray[np.int32]
    weight: NDArray[np.float32]
    timestamp: NDArray[np.int64] | None = None
    user_attributes: pd.DataFrame = field(default_factory=pd.DataFrame)
    schema: Schema = field(default_factory=Schema)
    name: str = "dataset"

    def __post_init__(self) -> None:
        n = len(self.user_idx)
        arrays: dict[str, NDArray[Any]] = {
            "user_idx": np.asarray(self.user_idx, dtype=np.int32),
            "item_idx": np.asarray(self.item_idx, dtype=np.int32),
            "weight": np.asarray(self.weight, dtype=np.float32),
        }
        if self.timestamp is not None:
            arrays["timestamp"] = np.asarray(self.timestamp, dtype=np.int64)
        for key, arr in arrays.items():
            if arr.shape != (n,):
                raise DataValidationError(f"Dataset.{key} must have shape ({n},); got {arr.shape}.")
            view = arr.view()  # a read-only view: never flips the caller's own array to read-only
            view.setflags(write=False)
            object.__setattr__(self, key, view)
        if n:
            if self.user_idx.min() < 0 or self.user_idx.max() >= len(self.users):
                raise DataValidationError(
                    f"Dataset.user_idx must lie in [0, {len(self.users)}); got values outside it."
                )
            if self.item_idx.min() < 0 or self.item_idx.max() >= len(self.items):
                raise DataValidationError(
                    f"Dataset.item_idx must lie in [0, {len(self.items)}); got values outside it."
                )
        attrs = self.user_attributes
        if attrs is None or (attrs.shape[1] == 0 and len(attrs) == 0):
            attrs = pd.DataFrame(index=pd.RangeIndex(len(self.users)))
        elif len(attrs) != len(self.users):
            raise DataValidationError(
                f"Dataset.user_attributes must have one row per user ({len(self.users)}); got {len(attrs)}."
            )
        else:
            attrs = attrs.reset_index(drop=True)
        object.__setattr__(self, "user_attributes", attrs)
        missing = [c for c in (*self.schema.quasi_identifiers, *self.schema.sensitive) if c not in attrs.columns]
        if missing:
            raise DataValidationError(
                f"Dataset.schema names attributes that are not columns: {sorted(missing)}; "
                f"columns are {sorted(map(str, attrs.columns))}."
            )

    # ------------------------------------------------------------------ sizes
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return len(self.user_idx)

    @cached_property
    def user_counts(self) -> NDArray[np.int64]:
        """Number of interactions of each user index (0 for empty rows)."""
        return np.bincount(self.user_idx, minlength=self.n_users)

    @cached_property
    def item_counts(self) -> NDArray[np.int64]:
        """Number of interactions of each item index."""
        return np.bincount(self.item_idx, minlength=self.n_items)

    # ------------------------------------------------------------------ views
    def to_csr(self, *, binary: bool = False) -> sp.csr_matrix:
        """Users x items CSR matrix (float32). Duplicate pairs are summed; ``binary`` sets every cell to 1."""
        data = np.ones(self.n_interactions, dtype=np.float32) if binary else self.weight
        m = sp.csr_matrix((data, (self.user_idx, self.item_idx)), shape=(self.n_users, self.n_items), dtype=np.float32)
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        return m

    def to_frame(self) -> pd.DataFrame:
        """Interactions as a DataFrame with columns user_idx, item_idx, weight[, timestamp]."""
        cols: dict[str, NDArray[Any]] = {"user_idx": self.user_idx, "item_idx": self.item_idx, "weight": self.weight}
        if self.timestamp is not None:
            cols["timestamp"] = self.timestamp
        return pd.DataFrame(cols)

    # ------------------------------------------------------------------ derivation
    def with_interactions(
        self,
        user_idx: ArrayLike,
        item_idx: ArrayLike,
        weight: ArrayLike,
        timestamp: ArrayLike | None = None,
        **changes: Any,
    ) -> Dataset:
        """A new Dataset over the same vocabularies with other interactions (and optional other fields)."""
        return replace(
            self,
            user_idx=np.asarray(user_idx, dtype=np.int32),
            item_idx=np.asarray(item_idx, dtype=np.int32),
            weight=np.asarray(weight, dtype=np.float32),
            timestamp=None if timestamp is None else np.asarray(timestamp, dtype=np.int64),
            **changes,
        )

    def subset(self, mask: ArrayLike) -> Dataset:
        """Keep the interactions where ``mask`` is true (boolean array) or at the given positions."""
        mask = np.asarray(mask)
        return self.with_interactions(
            self.user_idx[mask],
            self.item_idx[mask],
            self.weight[mask],
            None if self.timestamp is None else self.timestamp[mask],
        )

    # ------------------------------------------------------------------ identity
    def checksum(self) -> str:
        """Full SHA-256 over vocabularies, interactions and user attributes (every element, in order)."""
        h = hashlib.sha256()
        for arr in (self.users.ids, self.items.ids):
            h.update(np.asarray(arr).astype(str).astype("U").tobytes() if arr.dtype == object else arr.tobytes())
        for arr in (self.user_idx, self.item_idx, self.weight):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(b"ts" if self.timestamp is not None else b"no-ts")
        if self.timestamp is not None:
            h.update(np.ascontiguousarray(self.timestamp).tobytes())
        if self.user_attributes.shape[1]:
            h.update(pd.util.hash_pandas_object(self.user_attributes, index=True).to_numpy().tobytes())
            h.update(",".join(map(str, self.user_attributes.columns)).encode())
        return h.hexdigest()

    def summary(self) -> dict[str, float]:
        """Aggregate sizes (safe to log: no ids, no values)."""
        counts = self.user_counts
        return {
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_interactions": self.n_interactions,
            "n_users_with_data": int((counts > 0).sum()),
            "density": self.n_interactions / max(1, self.n_users * self.n_items),
        }
