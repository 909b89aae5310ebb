"""Apply several privacy treatments in order; every report is measured on the chain's final output."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, PrivacyGuaranteeError
from privrec.privacy.base import PrivacyReport, PrivacyTransform, TransformResult

__all__ = ["Chain"]


@dataclass(frozen=True, kw_only=True)
class Chain:
    """Treatments applied in order, each to the previous one's output, each with its own report.

    ``steps`` maps a step name to a transform (a mapping keeps names stable, so every step's keys stay
    sweepable from the CLI: ``privacy.steps.consent.rate=0.1,0.5``). Step ``i`` draws from the ``i``-th
    child of ``rng``. A user is withheld if any step withheld them, and **stays withheld**: rows a later step
    would give an opted-out user (randomized response flips empty cells to 1, for instance) are removed, so
    an opted-out user never reappears in the output.

    **Every step's report is measured on the chain's final output** -- what is trained on and what
    ``privrec release`` publishes -- not on the step's own intermediate output: the chain calls
    ``step.measure(step_input, final_output)`` (a step that withholds users also gets its withheld mask),
    so a step's counts compare that step's input with the published table (later steps' effects included;
    e.g. a minimization step followed by a consent step counts the opted-out users' interactions among
    those removed). Then it checks each step's guarantee on that final output (``step.violations``: k and l
    of k-anonymity, k of profile k-anonymity, at most ``n`` rows per user of minimization, no original id of
    pseudonymization): when a later step broke one -- e.g. profile k-anonymity followed by anything that
    changes interactions -- it raises :class:`~privrec.errors.PrivacyGuaranteeError` naming the step, rather
    than report a guarantee the output does not have. Put such a step after the steps that change what it
    protects.

    The combined report namespaces every step's metrics as ``<step>/<metric>``. The guarantee is that of
    each step, measured on the final output; composition of different guarantees is not claimed. A step
    may not itself be a chain (list its steps in this one).
    """

    steps: Mapping[str, PrivacyTransform]

    def __post_init__(self) -> None:
        if not self.steps:
            raise ConfigError("chain.steps must name at least one treatment; got none.")
        for name, step in self.steps.items():
            if not hasattr(step, "apply"):
                raise ConfigError(f"chain.steps.{name} must be a privacy transform; got {type(step).__name__}.")
            if isinstance(step, Chain):
                raise ConfigError(f"chain.steps.{name} must be a single treatment; got a chain. List its steps "
                                  "in this chain instead.")
            if not hasattr(step, "measure"):
                raise ConfigError(f"chain.steps.{name} must be a transform with a measure(original, released) "
                                  f"method, so its report can be measured on the chain's output; got "
                                  f"{type(step).__name__}.")
        object.__setattr__(self, "steps", dict(self.steps))

    def apply(self, data: Dataset, *, rng: np.random.Generator) -> TransformResult:
        child_rngs = rng.spawn(len(self.steps))
        withheld = np.zeros(data.n_users, dtype=bool)
        current = data
        inputs: list[tuple[str, Any, Dataset, TransformResult]] = []  # (name, step, its input, its result)
        for (name, step), child in zip(self.steps.items(), child_rngs, strict=True):
            result = step.apply(current, rng=child)
            inputs.append((name, step, current, result))
            current = result.data
            if withheld.any() and np.any(current.user_counts[withheld]):
                current = current.subset(~withheld[current.user_idx])  # opted-out users stay out
            if result.withheld is not None:
                withheld |= result.withheld
        final = current

        metrics: dict[str, float] = {}
        groups: dict = {}
        guarantees = []
        names = [name for name, *_ in inputs]
        for i, (name, step, before, result) in enumerate(inputs):
            problems: list[str] = []
            if result.data is final:  # its own output is the final one: its report was measured on it
                report = result.report
            else:
                extra = {"withheld": result.withheld} if result.withheld is not None else {}
                report = step.measure(before, final, **extra)
                check = getattr(step, "violations", None)
                problems = check(before, final, report) if check is not None else []
            if problems:
                later = ", ".join(names[i + 1:])
                raise PrivacyGuaranteeError(
                    f"chain.steps.{name}: {problems[0]} on the chain's output, after the later steps ({later}). "
                    f"Put {name} after the steps that change what it protects."
                )
            metrics.update({f"{name}/{k}": v for k, v in report.metrics.items()})
            groups.update({f"{name}/{k}": v for k, v in report.groups.items()})
            guarantees.append(f"{name}: {report.guarantee}")
        report = PrivacyReport(transform="chain", guarantee=" Then ".join(guarantees), metrics=metrics, groups=groups)
        return TransformResult(data=final, report=report, withheld=withheld)
