"""The privacy-transform contract, the :class:`PrivacyReport` and :class:`TransformResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from privrec.data.dataset import Dataset

__all__ = ["PrivacyReport", "PrivacyTransform", "TransformResult"]


@dataclass(frozen=True)
class PrivacyReport:
    """What a transform achieved, **measured on its output**.

    ``metrics``: scalar measurements logged as ``privacy/<name>`` (counts, rates, achieved k, epsilon...).
    ``groups``: per-group breakdowns, ``{attribute: {value: {measure: number}}}`` (aggregates only).
    ``guarantee``: one sentence stating the guarantee, its unit and what it does not protect.
    Never holds a user id or a record value.
    """

    transform: str
    guarantee: str
    metrics: dict[str, float] = field(default_factory=dict)
    groups: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"transform": self.transform, "guarantee": self.guarantee, "metrics": dict(self.metrics),
                "groups": {k: {str(g): dict(m) for g, m in v.items()} for k, v in self.groups.items()}}


@dataclass(frozen=True)
class TransformResult:
    """Output of :meth:`PrivacyTransform.apply`.

    ``withheld``: boolean mask over user indices of users whose data was withheld entirely (opted out);
    kept in memory to evaluate per consent segment, never logged. ``None`` when the transform withholds no one.
    """

    data: Dataset
    report: PrivacyReport
    withheld: NDArray[np.bool_] | None = None


@runtime_checkable
class PrivacyTransform(Protocol):
    """A frozen, keyword-only dataclass whose fields are its hyperparameters, validated when built.

    ``apply`` never mutates its input, takes all randomness from ``rng`` (secrets excepted: keys come from a
    file, the environment or the OS), keeps both vocabularies, and returns a report measured on its output
    (raising :class:`~privrec.errors.PrivacyGuaranteeError` when the requested guarantee cannot be met).

    Transforms also offer ``measure(original, released) -> PrivacyReport`` (the report, re-measured by
    comparing an input with any later output) and, when they promise a checkable guarantee,
    ``violations(original, released, report) -> list[str]`` (one ``"... must ...; got ..."`` clause per
    broken guarantee). :class:`~privrec.privacy.Chain` uses both to measure every step on its final output.
    """

    def apply(self, data: Dataset, *, rng: np.random.Generator) -> TransformResult: ...
