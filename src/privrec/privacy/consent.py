"""Consent drop: a share of users withhold all their data from training."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, PrivacyGuaranteeError
from privrec.privacy.base import PrivacyReport, TransformResult

__all__ = ["ConsentDrop", "NoPrivacy"]

_MECHANISMS = ("random", "activity", "attribute")


@dataclass(frozen=True, kw_only=True)
class NoPrivacy:
    """The identity: train on everything (the no-privacy baseline)."""

    def apply(self, data: Dataset, *, rng: np.random.Generator) -> TransformResult:
        return TransformResult(data=data, report=self.measure(data, data), withheld=report_withheld(data, data))

    def measure(self, original: Dataset, released: Dataset, *,
                withheld: NDArray[np.bool_] | None = None) -> PrivacyReport:
        """Users and interactions withheld (none, for the identity); ``withheld`` as in :meth:`ConsentDrop.measure`."""
        mask = _withheld_mask(original, released, withheld)
        return PrivacyReport(
            transform="none",
            guarantee="No privacy treatment: every interaction is used for training.",
            metrics={"users_withheld": float(mask.sum()),
                     "interactions_withheld": float(original.user_counts[mask].sum())},
        )


@dataclass(frozen=True, kw_only=True)
class ConsentDrop:
    """A fraction of users opt out: all their interactions are withheld from training.

    Guarantee (unit: user): an opted-out user contributes no interaction to the training data, so no model
    trained on the output depends on their behaviour. They keep their index (an empty row), are served by the
    fallback model, and are evaluated on their true held-out behaviour. In privrec's consent model opting out
    withholds *behaviour* (interactions), not the attribute row: it stays in the output, the fallback model may
    use it (demographic popularity), and ``privrec release`` publishes it in ``users.tsv`` like every other
    user's (so a k-anonymity step's guarantee holds on that published table). It does **not** protect users who
    consented (their full history is used), nor does it hide *that* a user opted out, nor their demographics.
    This is the "consent" / opt-out regime of GDPR Art. 6(1)(a) and 7(3) studied for recommenders by e.g.
    Wei, Chen & Zhang (2023) and the "cost of consent" literature.

    Mechanisms (which users opt out, among users with training data):

    - ``random``: exactly ``round(rate * n)`` users, uniformly without replacement.
    - ``activity``: exactly ``round(rate * n)`` users, sampled without replacement with probability
      proportional to ``activity ** strength`` (``strength > 0``: heavy users opt out more; ``< 0``: less;
      ``0``: uniform). Weighted sampling by Efraimidis & Spirakis (2006) keys.
    - ``attribute``: opt-out tied to one user attribute, either by per-group rates, e.g.
      ``rates={"F": 0.4, "M": 0.1}`` (exactly ``round(rate_g * n_g)`` users of group ``g`` opt out; groups not
      listed use ``rate``), or by relative ``odds``, e.g. ``odds={"F": 2.0}``: exactly ``round(rate * n)``
      users opt out overall, sampled without replacement with weight ``odds[g]`` (1 for groups not listed),
      so the overall rate stays sweepable while one group opts out more.

    The report is measured on the output: users and interactions withheld (users with data in the input and
    none in the output), overall and per value of each sensitive attribute and of ``attribute``.
    """

    rate: float = 0.25
    mechanism: str = "random"
    strength: float = 1.0
    attribute: str | None = None
    rates: Mapping[str, float] | None = None
    odds: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        _check_rate("consent_drop.rate", self.rate)
        if self.mechanism not in _MECHANISMS:
            raise ConfigError(f"consent_drop.mechanism must be one of {list(_MECHANISMS)}; got {self.mechanism!r}.")
        if not np.isfinite(self.strength):
            raise ConfigError(f"consent_drop.strength must be a finite number; got {self.strength!r}.")
        if self.mechanism == "attribute":
            if not self.attribute:
                raise ConfigError(
                    "consent_drop.attribute must name a user attribute when mechanism='attribute'; got None."
                )
            if bool(self.rates) == bool(self.odds):
                raise ConfigError("consent_drop.rates or consent_drop.odds (exactly one) must map attribute values "
                                  "to rates / relative odds when mechanism='attribute'; got "
                                  f"{'both' if self.rates else 'neither'}.")
        if self.odds is not None:
            odds = {str(k): float(v) for k, v in dict(self.odds).items()}
            for key, value in odds.items():
                if not (np.isfinite(value) and value > 0):
                    raise ConfigError(f"consent_drop.odds.{key} must be a positive number; got {value!r}.")
            object.__setattr__(self, "odds", odds)
        if self.rates is not None:
            rates = {str(k): float(v) for k, v in dict(self.rates).items()}
            for key, value in rates.items():
                _check_rate(f"consent_drop.rates.{key}", value)
            object.__setattr__(self, "rates", rates)

    # -------------------------------------------------------------- sampling
    def _choose(self, data: Dataset, rng: np.random.Generator) -> NDArray[np.bool_]:
        counts = data.user_counts
        eligible = counts > 0
        out = np.zeros(data.n_users, dtype=bool)
        if self.mechanism == "attribute":
            if self.attribute not in data.user_attributes.columns:
                raise ConfigError(
                    f"consent_drop.attribute must be a user attribute; got {self.attribute!r}; "
                    f"columns are {sorted(map(str, data.user_attributes.columns))}."
                )
            values = data.user_attributes[self.attribute].astype("string").to_numpy(dtype=object, na_value=None)
            given = self.rates or self.odds or {}  # __post_init__: exactly one of them is set
            unknown = set(given) - {str(v) for v in values if v is not None}
            if unknown:
                raise ConfigError(
                    f"consent_drop.{'rates' if self.rates else 'odds'} names {len(unknown)} value(s) that attribute "
                    f"{self.attribute!r} never takes; check the spelling of the keys."
                )
            if self.odds:
                w = np.array([self.odds.get(str(v), 1.0) for v in pd.unique(values)])
                codes = pd.factorize(values)[0]
                keys = -np.log(rng.random(data.n_users)) / np.where(codes >= 0, w[codes], 1.0)
                _take_smallest(out, eligible, keys, self.rate)
                return out
            rates = self.rates or {}  # set, as odds is not
            keys = rng.random(data.n_users)
            for value in sorted({str(v) for v in values if v is not None}):
                group = eligible & (values == value)
                _take_smallest(out, group, keys, rates.get(value, self.rate))
            return out
        if self.mechanism == "activity" and self.strength != 0:
            w = np.where(eligible, counts, 1).astype(np.float64) ** self.strength
            # Efraimidis-Spirakis: the k largest u^(1/w) are a weighted sample without replacement.
            keys = -np.log(rng.random(data.n_users)) / w  # smallest = largest u^(1/w)
        else:
            keys = rng.random(data.n_users)
        _take_smallest(out, eligible, keys, self.rate)
        return out

    def apply(self, data: Dataset, *, rng: np.random.Generator) -> TransformResult:
        opted_out = self._choose(data, rng)
        released = data.subset(~opted_out[data.user_idx])
        report = self.measure(data, released)
        return TransformResult(data=released, report=report, withheld=report_withheld(data, released))

    def measure(self, original: Dataset, released: Dataset, *,
                withheld: NDArray[np.bool_] | None = None) -> PrivacyReport:
        """Measure what was withheld by comparing input and output (aggregates only).

        ``withheld``: the users this step withheld; by default those with data in ``original`` and none in
        ``released`` (exact for this step's own output). A :class:`~privrec.privacy.Chain` passes the step's
        mask to measure it on the chain's final output, where later steps may have emptied other users.
        Raises :class:`~privrec.errors.PrivacyGuaranteeError` if a withheld user has a row in ``released``.
        """
        withheld = _withheld_mask(original, released, withheld)
        before = original.user_counts
        n_eligible = int((before > 0).sum())
        n_interactions = int(before[withheld].sum())
        metrics = {
            "users_withheld": float(withheld.sum()),
            "interactions_withheld": float(n_interactions),
            "share_users_withheld": float(withheld.sum() / max(1, n_eligible)),
            "share_interactions_withheld": float(n_interactions / max(1, original.n_interactions)),
        }
        attrs = list(original.schema.sensitive)
        if self.attribute and self.attribute not in attrs:
            attrs.append(self.attribute)
        groups = {a: _group_shares(original.user_attributes[a], withheld, before > 0) for a in attrs
                  if a in original.user_attributes.columns}
        return PrivacyReport(
            transform="consent_drop",
            guarantee="Opted-out users (unit: user) contribute no interaction to training; consenting users "
            "are not protected, opting out itself is visible, and opted-out users' attribute rows are kept.",
            metrics=metrics,
            groups=groups,
        )


def report_withheld(original: Dataset, released: Dataset) -> NDArray[np.bool_]:
    """Users who had training rows in ``original`` and have none in ``released``."""
    return (original.user_counts > 0) & (released.user_counts == 0)


def _withheld_mask(original: Dataset, released: Dataset, withheld: NDArray[np.bool_] | None) -> NDArray[np.bool_]:
    """``withheld`` (restricted to users with data in ``original``), checked to have no row in ``released``."""
    if withheld is None:
        return report_withheld(original, released)
    mask = np.asarray(withheld, dtype=bool)
    if mask.shape != (original.n_users,) or released.n_users != original.n_users:
        raise PrivacyGuaranteeError("consent_drop withheld mask must cover every user index; this is a bug.")
    mask = mask & (original.user_counts > 0)
    reappeared = int(np.count_nonzero(released.user_counts[mask]))
    if reappeared:
        raise PrivacyGuaranteeError(
            f"consent_drop output must hold no row of an opted-out user; got {reappeared} opted-out users with "
            "rows. This is a bug: please report it."
        )
    return mask


def _check_rate(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < 1):
        raise ConfigError(f"{name} must be in [0, 1); got {value!r}.")


def _take_smallest(out: NDArray[np.bool_], group: NDArray[np.bool_], keys: NDArray, rate: float) -> None:
    """Mark the ``round(rate * |group|)`` members of ``group`` with the smallest keys."""
    idx = np.flatnonzero(group)
    k = round(rate * len(idx))
    if k:
        out[idx[np.argpartition(keys[idx], k - 1)[:k]]] = True


def _group_shares(column: pd.Series, withheld: NDArray, eligible: NDArray) -> dict[str, dict[str, float]]:
    values = column.astype("string").fillna("<missing>").to_numpy(dtype=object)
    frame = pd.DataFrame({"v": values[eligible], "w": withheld[eligible]})
    agg = frame.groupby("v", sort=True)["w"].agg(["size", "sum"])
    return {
        str(v): {
            "users": float(r["size"]),
            "users_withheld": float(r["sum"]),
            "share_withheld": float(r["sum"] / r["size"]),
        }
        for v, r in agg.iterrows()
    }
