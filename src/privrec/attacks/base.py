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
