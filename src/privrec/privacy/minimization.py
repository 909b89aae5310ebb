"""Data minimization: keep only part of each user's history (the n chosen interactions, or the last days)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, PrivacyGuaranteeError
from privrec.privacy.base import PrivacyReport, TransformResult

__all__ = ["Minimization"]

_STRATEGIES = ("recent", "random", "most_popular", "least_popular")
_SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, kw_only=True)
class Minimization:
    """Per-user data minimization: each user keeps at most ``n`` interactions, or only their last ``days``.

    Definition: with ``n``, every user keeps at most ``n`` of their interactions (all of them if they have
    fewer), chosen by ``strategy``:

    - ``recent``: the ``n`` latest by timestamp (needs timestamps);
    - ``random``: ``n`` uniformly at random, without replacement;
    - ``most_popular`` / ``least_popular``: the ``n`` whose items have the most / fewest interactions in the
      *input* (``Dataset.item_counts``).

    Ties (equal timestamps, equal popularity) are broken uniformly at random with ``rng``. With ``days``,
    every user keeps the interactions at most ``days`` days (of 86,400 s) older than that user's own latest
    interaction (needs timestamps; ``strategy`` must stay ``recent``). Exactly one of ``n`` and ``days`` is
    set. A user with at least one interaction always keeps at least one, so nobody becomes an empty row.

    This is the per-user operational definition of the GDPR data-minimization principle (Art. 5(1)(c))
    studied for recommenders by Biega, Potash, Daumé III, Diaz & Finck, "Operationalizing the Legal
    Principle of Data Minimization for Personalization", SIGIR 2020, who compare selection strategies of
    this kind (e.g. random and most recent).

    Unit: the interaction. Guarantee: the removed interactions are not used for training. It does **not**
    protect what is kept: kept interactions are released raw (item, weight, timestamp), the user is still
    present under the same index with the same attributes, and a short recent history can still identify
    them. Which rows were removed also depends on the user's own data (their timestamps, their items'
    popularity), so minimization is not a formal privacy guarantee.

    The report is measured on the output: interactions and users affected, the largest per-user history
    kept, and with ``days`` the widest time span (in days) any user kept.
    """

    n: int | None = None
    strategy: str = "recent"
    days: float | None = None

    def __post_init__(self) -> None:
        if (self.n is None) == (self.days is None):
            raise ConfigError(
                f"minimization must set exactly one of n and days; got n={self.n!r} and days={self.days!r}."
            )
        if self.n is not None and (
            isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1
        ):
            raise ConfigError(f"minimization.n must be >= 1; got {self.n!r}.")
        if self.days is not None and (
            isinstance(self.days, bool)
            or not isinstance(self.days, (int, float, np.integer, np.floating))
            or not math.isfinite(self.days)
            or self.days <= 0
        ):
            raise ConfigError(f"minimization.days must be a finite number > 0; got {self.days!r}.")
        if self.strategy not in _STRATEGIES:
            raise ConfigError(f"minimization.strategy must be one of {list(_STRATEGIES)}; got {self.strategy!r}.")
        if self.days is not None and self.strategy != "recent":
            raise ConfigError(
                f"minimization.strategy must be 'recent' when days is set (a time window keeps the latest "
                f"history); got {self.strategy!r}."
            )
        if self.n is not None:
            object.__setattr__(self, "n", int(self.n))
        if self.days is not None:
            object.__setattr__(self, "days", float(self.days))

    # -------------------------------------------------------------- selection
    def _keep(self, data: Dataset, rng: np.random.Generator) -> NDArray[np.bool_]:
        if (self.days is not None or self.strategy == "recent") and data.timestamp is None:
            what = f"days={self.days!r}" if self.days is not None else "strategy='recent'"
            raise ConfigError(
                f"minimization with {what} needs interaction timestamps; got a dataset without them. "
                f"Use strategy='random' or a dataset with timestamps."
            )
        users, timestamp = data.user_idx, data.timestamp
        if self.days is not None:
            assert timestamp is not None  # checked above
            latest = np.full(data.n_users, np.iinfo(np.int64).min, dtype=np.int64)
            np.maximum.at(latest, users, timestamp)
            age = latest[users] - timestamp  # >= 0 seconds
            return age <= self.days * _SECONDS_PER_DAY
        # Visit the rows in a uniformly random order, then sort stably by (user, preference): rows that tie
        # keep their random order, which breaks every tie uniformly at random.
        perm = rng.permutation(data.n_interactions)
        users_p = users[perm]
        if self.strategy == "recent":
            assert timestamp is not None  # checked above
            pref = -timestamp[perm]  # smaller = preferred
        elif self.strategy == "most_popular":
            pref = -data.item_counts[data.item_idx[perm]]
        elif self.strategy == "least_popular":
            pref = data.item_counts[data.item_idx[perm]]
        else:  # random
            pref = None
        if pref is None:
            order = np.argsort(users_p, kind="stable")
        else:
            lo = int(pref.min()) if len(pref) else 0
            span = (int(pref.max()) - lo + 1) if len(pref) else 1
            if data.n_users * span < 2**62:  # one int64 key: one sort instead of two
                key = users_p.astype(np.int64) * span
                key += pref - lo
                order = np.argsort(key, kind="stable")
            else:
                order = np.lexsort((pref, users_p))
        order = perm[order]
        counts = data.user_counts
        starts = np.cumsum(counts) - counts
        rank = np.arange(data.n_interactions) - starts[users[order]]  # rank within the user, 0 = preferred
        keep = np.zeros(data.n_interactions, dtype=bool)
        keep[order[rank < self.n]] = True
        return keep

    def apply(self, data: Dataset, *, rng: np.random.Generator) -> TransformResult:
        released = data.subset(self._keep(data, rng))
        report = self.measure(data, released)
        problems = self.violations(data, released, report)
        if problems:
            raise PrivacyGuaranteeError(f"{problems[0]}. This is a bug: please report it.")
        return TransformResult(data=released, report=report)

    def violations(self, original: Dataset, released: Dataset, report: PrivacyReport) -> list[str]:
        """The guarantees ``report`` (``measure(original, released)``) breaks: one ``must ...; got ...`` each."""
        out = []
        grown = int(np.count_nonzero(released.user_counts > original.user_counts))
        if grown:
            out.append(f"minimization output must hold no more rows per user than its input; got {grown} users "
                       "with more")
        max_kept = report.metrics["max_interactions_per_user"]
        if self.n is not None and max_kept > self.n:
            out.append(f"minimization output must keep at most n={self.n} interactions per user; got {max_kept:g}")
        if self.days is not None and report.metrics["days_kept"] > self.days * (1 + 1e-12):  # float division
            out.append(f"minimization output must keep at most the last {self.days:g} days of each user; got "
                       f"{report.metrics['days_kept']:.4g} days")
        return out

    def measure(self, original: Dataset, released: Dataset) -> PrivacyReport:
        """Measure what was removed by comparing input and output (aggregates only)."""
        before, after = original.user_counts, released.user_counts
        max_kept = int(after.max()) if released.n_users else 0
        removed = original.n_interactions - released.n_interactions
        metrics = {
            "interactions_removed": float(removed),
            "share_interactions_removed": float(removed / max(1, original.n_interactions)),
            "users_affected": float(np.count_nonzero(after < before)),
            "max_interactions_per_user": float(max_kept),
        }
        if self.days is not None:
            metrics["days_kept"] = _widest_span_days(released)
        if self.n is not None:
            how = f"at most n={self.n} interactions ({self.strategy})"
        else:
            how = f"the last {self.days:g} days"
        return PrivacyReport(
            transform="minimization",
            guarantee=f"Each user keeps {how} of their history (unit: interaction); removed interactions are not "
            "used, kept ones are released raw and every user stays present, so this is not anonymity.",
            metrics=metrics,
        )


def _widest_span_days(data: Dataset) -> float:
    """Largest (latest - earliest) timestamp gap of any single user, in days (0 without interactions)."""
    if data.timestamp is None or data.n_interactions == 0:
        return 0.0
    latest = np.full(data.n_users, np.iinfo(np.int64).min, dtype=np.int64)
    earliest = np.full(data.n_users, np.iinfo(np.int64).max, dtype=np.int64)
    np.maximum.at(latest, data.user_idx, data.timestamp)
    np.minimum.at(earliest, data.user_idx, data.timestamp)
    present = data.user_counts > 0
    return float((latest[present] - earliest[present]).max() / _SECONDS_PER_DAY)
