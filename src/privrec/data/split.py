"""Train/test splits: :class:`Split` and the splitters :class:`RandomHoldout`, :class:`TemporalHoldout`,
:class:`GlobalTemporal`.

Every splitter is a frozen, keyword-only dataclass with ``split(data, *, rng) -> Split``. Both halves keep the
input's vocabularies (and attributes, schema, name), so index *i* is the same user in train, test and every
model. Splits are vectorised (lexsort and rank within user) and take randomness from ``rng`` only.
A user never loses all of their interactions to the test set under the per-user holdouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from privrec.data._checks import check_float, check_int
from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, DataValidationError

__all__ = ["GlobalTemporal", "RandomHoldout", "Split", "TemporalHoldout"]


@dataclass(frozen=True)
class Split:
    """A train and a test Dataset over the same vocabularies (the input's)."""

    train: Dataset
    test: Dataset

    def __post_init__(self) -> None:
        if self.train.users != self.test.users or self.train.items != self.test.items:
            raise DataValidationError(
                "Split.train and Split.test must share the user and item vocabularies; got different ones."
            )

    @cached_property
    def test_users(self) -> NDArray[np.int64]:
        """Indices of the users with at least one test interaction."""
        return np.flatnonzero(self.test.user_counts > 0)

    def summary(self) -> dict[str, float]:
        """Aggregate sizes (safe to log)."""
        return {
            "train_interactions": self.train.n_interactions,
            "test_interactions": self.test.n_interactions,
            "train_users": int((self.train.user_counts > 0).sum()),
            "test_users": len(self.test_users),
        }


def _per_user_test_count(counts: NDArray[np.int64], fraction: float) -> NDArray[np.int64]:
    """round(fraction * n) per user (half up), at least 1 and at most n - 1 for users with n >= 2; 0 below."""
    wanted = np.floor(fraction * counts + 0.5).astype(np.int64)
    return np.where(counts >= 2, np.clip(wanted, 1, np.maximum(counts - 1, 1)), 0)


def _rank_in_user(sorted_users: NDArray, counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Rank of each row within its user, for rows sorted by user (``counts`` rows per user)."""
    first = np.cumsum(counts) - counts
    return np.arange(len(sorted_users)) - first[sorted_users]


def _from_mask(data: Dataset, test: NDArray[np.bool_]) -> Split:
    return Split(train=data.subset(~test), test=data.subset(test))


def _timestamps(data: Dataset, owner: str) -> NDArray[np.int64]:
    if data.timestamp is None:
        raise DataValidationError(f"{owner} needs a dataset with timestamps; got one without them.")
    return data.timestamp


def _require_rng(rng: object, owner: str) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(f"{owner}.split needs rng=np.random.Generator; got {type(rng).__name__}.")
    return rng


@dataclass(frozen=True, kw_only=True)
class RandomHoldout:
    """Per user, a random ``fraction`` of their interactions goes to test.

    The count is ``round(fraction * n)`` (halves up), at least 1 when the user has ``n >= 2`` interactions and
    never all of them; users with a single interaction stay in train. Which rows go is uniform at random.
    """

    fraction: float = 0.2

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "fraction",
            check_float("split", "fraction", self.fraction, low=0.0, high=1.0, low_open=True, high_open=True),
        )

    def split(self, data: Dataset, *, rng: np.random.Generator) -> Split:
        rng = _require_rng(rng, "RandomHoldout")
        counts = data.user_counts
        n_test = _per_user_test_count(counts, self.fraction)
        if not n_test.any():
            raise DataValidationError(
                f"split.fraction={self.fraction:g} leaves no test users; got no user with 2 or more interactions."
            )
        order = np.lexsort((rng.random(data.n_interactions), data.user_idx))
        users = data.user_idx[order]
        test = np.empty(data.n_interactions, dtype=bool)
        test[order] = _rank_in_user(users, counts) < n_test[users]
        return _from_mask(data, test)


@dataclass(frozen=True, kw_only=True)
class TemporalHoldout:
    """Per user, the last ``last_n`` interactions or the last ``last_fraction`` of them (by time) go to test.

    Set exactly one. ``last_fraction`` counts like :class:`RandomHoldout` (half up, at least 1 for users with
    2+ interactions); ``last_n`` is capped at ``n - 1``: a user never loses all their history, and users with
    one interaction stay in train. Ties in time are broken by item index, then by row order. Every test
    timestamp of a user is >= every train timestamp of that user. Needs timestamps; ``rng`` is not used.
    """

    last_n: int | None = None
    last_fraction: float | None = None

    def __post_init__(self) -> None:
        if (self.last_n is None) == (self.last_fraction is None):
            raise ConfigError(
                "split.last_n and split.last_fraction must be set one at a time (exactly one); "
                f"got last_n={self.last_n!r}, last_fraction={self.last_fraction!r}."
            )
        if self.last_n is not None:
            object.__setattr__(self, "last_n", check_int("split", "last_n", self.last_n, minimum=1))
        else:
            object.__setattr__(
                self,
                "last_fraction",
                check_float(
                    "split", "last_fraction", self.last_fraction, low=0.0, high=1.0, low_open=True, high_open=True
                ),
            )

    def split(self, data: Dataset, *, rng: np.random.Generator) -> Split:
        _require_rng(rng, "TemporalHoldout")
        timestamp = _timestamps(data, "TemporalHoldout")
        counts = data.user_counts
        if self.last_n is not None:
            n_test = np.where(counts >= 2, np.minimum(self.last_n, counts - 1), 0)
            setting = f"last_n={self.last_n}"
        else:
            assert self.last_fraction is not None  # __post_init__ makes exactly one of the two set
            n_test = _per_user_test_count(counts, self.last_fraction)
            setting = f"last_fraction={self.last_fraction:g}"
        if not n_test.any():
            raise DataValidationError(f"split.{setting} leaves no test users; got no user with 2 or more interactions.")
        order = np.lexsort((np.arange(data.n_interactions), data.item_idx, timestamp, data.user_idx))
        users = data.user_idx[order]
        test = np.empty(data.n_interactions, dtype=bool)
        test[order] = _rank_in_user(users, counts) >= (counts - n_test)[users]
        return _from_mask(data, test)


@dataclass(frozen=True, kw_only=True)
class GlobalTemporal:
    """Everything strictly after one global time cut goes to test (the rest, up to and at the cut, to train).

    The cut is ``cut_timestamp`` (seconds) when given, otherwise the ``cut_quantile`` quantile of all
    timestamps (the ``"lower"`` order statistic, so the cut is an observed time). Test may hold users and items
    that have no training data (they are new after the cut). Needs timestamps; ``rng`` is not used.
    """

    cut_quantile: float | None = 0.8
    cut_timestamp: int | None = None

    def __post_init__(self) -> None:
        if self.cut_timestamp is not None:
            object.__setattr__(self, "cut_timestamp", check_int("split", "cut_timestamp", self.cut_timestamp))
        elif self.cut_quantile is None:
            raise ConfigError("split.cut_quantile or split.cut_timestamp must be set; got neither.")
        if self.cut_quantile is not None:
            object.__setattr__(
                self,
                "cut_quantile",
                check_float(
                    "split", "cut_quantile", self.cut_quantile, low=0.0, high=1.0, low_open=True, high_open=True
                ),
            )

    def cut(self, data: Dataset) -> int:
        """The time cut this splitter uses on ``data``."""
        timestamp = _timestamps(data, "GlobalTemporal")
        if self.cut_timestamp is not None:
            return self.cut_timestamp
        if data.n_interactions == 0:
            raise DataValidationError("GlobalTemporal needs interactions; got 0.")
        assert self.cut_quantile is not None  # __post_init__ requires one of cut_quantile and cut_timestamp
        return int(np.quantile(timestamp, self.cut_quantile, method="lower"))

    def split(self, data: Dataset, *, rng: np.random.Generator) -> Split:
        _require_rng(rng, "GlobalTemporal")
        cut = self.cut(data)
        test = _timestamps(data, "GlobalTemporal") > cut
        setting = (
            f"cut_timestamp={self.cut_timestamp}"
            if self.cut_timestamp is not None
            else f"cut_quantile={self.cut_quantile:g}"
        )
        if not test.any():
            raise DataValidationError(f"split.{setting} leaves no test users; got no interaction after the cut.")
        if test.all():
            raise DataValidationError(f"split.{setting} leaves no training data; got every interaction after the cut.")
        return _from_mask(data, test)
