"""Apply several privacy treatments in order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from privrec.data.dataset import Dataset
from privrec.errors import ConfigError
from privrec.privacy.base import PrivacyReport, PrivacyTransform, TransformResult

__all__ = ["Chain"]


@dataclass(frozen=True, kw_only=True)
class Chain:
    """Treatments applied in order, each to the previous one's output, each with its own report.

    ``steps`` maps a step name to a transform (a mapping keeps names stable, so every step's keys stay
    sweepable from the CLI: ``privacy.steps.consent.rate=0.1,0.5``). Step ``i`` draws from the ``i``-th
    child of ``rng``. The combined report namespaces every step's metrics as ``<step>/<metric>``; a user is
    withheld if any step withheld them. The guarantee is that of each step on its own input; composition
    of different guarantees is not claimed.
    """

    steps: Mapping[str, PrivacyTransform]

    def __post_init__(self) -> None:
        if not self.steps:
            raise ConfigError("chain.steps must name at least one treatment; got none.")
        for name, step in self.steps.items():
            if not hasattr(step, "apply"):
                raise ConfigError(f"chain.steps.{name} must be a privacy transform; got {type(step).__name__}.")
        object.__setattr__(self, "steps", dict(self.steps))

    def apply(self, data: Dataset, *, rng: np.random.Generator) -> TransformResult:
        child_rngs = rng.spawn(len(self.steps))
        metrics: dict[str, float] = {}
        groups: dict = {}
        guarantees = []
        withheld = np.zeros(data.n_users, dtype=bool)
        current = data
        for (name, step), child in zip(self.steps.items(), child_rngs, strict=True):
            result = step.apply(current, rng=child)
            current = result.data
            if result.withheld is not None:
                withheld |= result.withheld
            metrics.update({f"{name}/{k}": v for k, v in result.report.metrics.items()})
            groups.update({f"{name}/{k}": v for k, v in result.report.groups.items()})
            guarantees.append(f"{name}: {result.report.guarantee}")
        report = PrivacyReport(transform="chain", guarantee=" Then ".join(guarantees), metrics=metrics, groups=groups)
        return TransformResult(data=current, report=report, withheld=withheld)
