"""The attack contract: :class:`AttackTarget` in, :class:`AttackResult` out.

An attack is a frozen, keyword-only dataclass whose fields are its hyperparameters (validated when built)
with ``run(target, *, rng) -> AttackResult``. It never mutates its input, takes all randomness from ``rng``
and reports aggregates only: a result never holds a user id, a user index or a record value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, DataValidationError
from privrec.privacy.base import PrivacyReport

__all__ = ["Attack", "AttackResult", "AttackTarget"]


@dataclass(frozen=True)
class AttackTarget:
    """What an attack may look at.

    ``original``: the raw training split, before the privacy treatment: the ground truth, and the source of
    the adversary's auxiliary knowledge. ``released``: the treated training data (same vocabularies;
    opted-out users are empty rows). ``test``: the held-out interactions (same vocabularies). ``model``: the
    recommender fitted on ``released`` (a privrec model), or ``None``. ``withheld``: boolean mask over user
    indices of the users who opted out, or ``None`` when unknown or nobody did. ``report``: the treatment's
    :class:`~privrec.privacy.PrivacyReport` (what it claims and measured), or ``None`` when unknown; an attack
    that audits a claimed guarantee (:class:`~privrec.attacks.DPAudit`) reads it.

    Index *i* is the same person in all three datasets, in the model and in ``withheld``; built targets are
    checked for that (same vocabularies, mask of the right shape).
    """

    original: Dataset
    released: Dataset
    test: Dataset
    model: Any | None = None
    withheld: NDArray[np.bool_] | None = None
    report: PrivacyReport | None = None

    def __post_init__(self) -> None:
        for name in ("original", "released", "test"):
            value = getattr(self, name)
            if not isinstance(value, Dataset):
                raise DataValidationError(f"AttackTarget.{name} must be a privrec Dataset; got {type(value).__name__}.")
        for name in ("released", "test"):
            other = getattr(self, name)
            # index i is the same person everywhere; only sizes must agree (pseudonymisation relabels the ids)
            if other.n_users != self.original.n_users or other.n_items != self.original.n_items:
                raise DataValidationError(
                    f"AttackTarget.{name} must share the user and item indices of original; got "
                    f"{other.n_users} users x {other.n_items} items vs {self.original.n_users} x "
                    f"{self.original.n_items} (or other ids). Transforms never shrink the vocabularies."
                )
        if self.report is not None and not isinstance(self.report, PrivacyReport):
            raise DataValidationError(f"AttackTarget.report must be a privrec PrivacyReport or None; got "
                                      f"{type(self.report).__name__}.")
        if self.withheld is not None:
            mask = np.asarray(self.withheld)
            if mask.dtype != np.bool_ or mask.shape != (self.original.n_users,):
                raise DataValidationError(
                    f"AttackTarget.withheld must be a boolean mask of shape ({self.original.n_users},); "
                    f"got dtype {mask.dtype} and shape {mask.shape}."
                )
            mask = mask.copy()
            mask.setflags(write=False)
            object.__setattr__(self, "withheld", mask)


@dataclass(frozen=True)
class AttackResult:
    """What an attack measured (aggregates only, never an id or a record value).

    ``metrics``: scalar measurements, logged as ``attack/<name>`` (``reid_rate_m8``,
    ``gender_auc_released``...). ``missing``: metric name -> one-line reason it could not be computed
    (logged as a tag), e.g. when no model was given or an attribute has a single class.
    """

    attack: str
    metrics: dict[str, float] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"attack": self.attack, "metrics": dict(self.metrics), "missing": dict(self.missing)}


@runtime_checkable
class Attack(Protocol):
    """A frozen, keyword-only dataclass whose fields are its hyperparameters, validated when built.

    ``run`` never mutates the target, takes all randomness from ``rng`` and returns aggregates only.
    """

    def run(self, target: AttackTarget, *, rng: np.random.Generator) -> AttackResult: ...


# ---------------------------------------------------------------------- shared checks (private)
def check_run_args(owner: str, target: object, rng: object) -> None:
    """Raise at the edge of ``run`` when the target or the generator has the wrong type."""
    if not isinstance(target, AttackTarget):
        raise DataValidationError(f"{owner}.run target must be an AttackTarget; got {type(target).__name__}.")
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(
            f"{owner}.run rng must be a numpy.random.Generator; got {type(rng).__name__}. "
            "Pass numpy.random.default_rng(seed) or the attack stream of privrec.random.streams."
        )


def check_int(owner: str, name: str, value: object, *, minimum: int, allow_none: bool = False) -> int | None:
    """An integer (not a bool) ``>= minimum`` (or ``None`` when allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        rule = f"an integer >= {minimum}" + (" or null" if allow_none else "")
        raise ConfigError(f"{owner}.{name} must be {rule}; got {value!r}.")
    return int(value)


def check_number(owner: str, name: str, value: object, *, minimum: float, open_low: bool = False) -> float:
    """A finite real number ``>= minimum`` (``> minimum`` when ``open_low``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
        or not (value > minimum if open_low else value >= minimum)
    ):
        rule = f"> {minimum:g}" if open_low else f">= {minimum:g}"
        raise ConfigError(f"{owner}.{name} must be a finite number {rule}; got {value!r}.")
    return float(value)


# ---------------------------------------------------------------------- sampled targets (private)
#: Two-sided 95% normal quantile of the intervals below.
Z95 = 1.959963984540054


def check_max_targets(owner: str, value: object) -> int | None:
    """``<attack>.max_targets``: a positive integer or None (attack every target)."""
    return check_int(owner, "max_targets", value, minimum=1, allow_none=True)


def sample_targets(pool: NDArray[np.int64], max_targets: int | None, rng: np.random.Generator) -> NDArray[np.int64]:
    """``pool`` itself when it holds at most ``max_targets`` units (nothing is drawn from ``rng``: results stay
    identical to an attack without the cap), else a simple random sample of ``max_targets`` of them without
    replacement, ascending."""
    if max_targets is None or len(pool) <= max_targets:
        return pool
    return np.sort(rng.choice(pool, size=max_targets, replace=False))


def proportion_interval(hits: int, n: int, population: int) -> tuple[float, float]:
    """95% Wilson score interval of a population share from ``hits`` out of a simple random sample of ``n``
    of ``population`` units, with the finite-population correction (the effective sample size is
    ``n (N - 1) / (N - n)``): a point when every unit was sampled. NaN for an empty sample."""
    if n <= 0:
        return float("nan"), float("nan")
    p = hits / n
    if n >= population:
        return p, p
    n_eff = n * (population - 1) / (population - n)
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n_eff)) / (1 + z2 / n_eff)
    half = Z95 * np.sqrt(p * (1 - p) / n_eff + z2 / (4 * n_eff * n_eff)) / (1 + z2 / n_eff)
    low = 0.0 if hits == 0 else max(0.0, centre - half)  # exact ends: rounding must not exclude 0 or 1
    high = 1.0 if hits == n else min(1.0, centre + half)
    return float(low), float(high)


def auc_interval(
    positives: NDArray, negatives: NDArray, *, positive_unit: NDArray[np.int64] | None = None,
    negative_unit: NDArray[np.int64] | None = None, n_units: int | None = None, population: int | None = None,
) -> tuple[float, float]:
    """95% interval of a ROC AUC (ties 1/2) whose scores come from sampled units (users), each of which may
    contribute several scores (clustered pairs).

    DeLong's placement values (DeLong, DeLong & Clarke-Pearson, Biometrics 1988) -- ``V10`` of a positive:
    the share of negatives it beats; ``V01`` of a negative: the share of positives that beat it -- summed per
    unit into the influence ``T_u = sum (V10 - A) / n_pos + sum (V01 - A) / n_neg`` of unit ``u``; the
    variance is the cluster-robust ``K / (K - 1) * sum_u T_u^2`` over the ``K`` units (Obuchowski, Biometrics
    1997), times the finite-population factor ``1 - K / population``. Without unit labels every score is its
    own unit. Normal interval, clipped to [0, 1]. NaN when either side is empty or there is one unit.
    """
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    n_pos, n_neg = len(pos), len(neg)
    if n_pos == 0 or n_neg == 0:
        return float("nan"), float("nan")
    sorted_neg, sorted_pos = np.sort(neg), np.sort(pos)
    v10 = (np.searchsorted(sorted_neg, pos, side="left") + np.searchsorted(sorted_neg, pos, side="right")) / (
        2.0 * n_neg)
    v01 = ((n_pos - np.searchsorted(sorted_pos, neg, side="right"))
           + (n_pos - np.searchsorted(sorted_pos, neg, side="left"))) / (2.0 * n_pos)
    a = float(v10.mean())
    if positive_unit is None or negative_unit is None:
        positive_unit = np.arange(n_pos, dtype=np.int64)
        negative_unit = np.arange(n_pos, n_pos + n_neg, dtype=np.int64)
    units, codes = np.unique(np.concatenate([positive_unit, negative_unit]), return_inverse=True)
    k = len(units) if n_units is None else int(n_units)
    if k < 2:
        return float("nan"), float("nan")
    influence = np.bincount(codes, weights=np.concatenate([(v10 - a) / n_pos, (v01 - a) / n_neg]),
                            minlength=len(units))
    fpc = 1.0 if population is None else max(0.0, 1.0 - k / max(population, k))
    half = Z95 * float(np.sqrt(k / (k - 1) * float((influence**2).sum()) * fpc))
    return max(0.0, a - half), min(1.0, a + half)
