"""How much memory a run will need, checked against what the machine has before the work starts.

:func:`estimate` adds up the big arrays of a run from the sizes of the loaded data and the plan (the dataset
and its split/treated copies, the model's factors and implicit's working copies, the evaluation's dense score
blocks per thread, the attack worker's copy of the data and its working set); :func:`check` logs the estimate
and raises a one-line :class:`~privrec.errors.ConfigError` naming the setting to lower when it exceeds the
memory available, so a run that cannot fit fails after loading the data instead of swapping or being killed
hours later. The coefficients are bytes per interaction / user / item measured on this code (see
``experiments/benchmarks/bench_scale.py``): an estimate, not a bound; :data:`HEADROOM` covers the error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from privrec.errors import ConfigError

__all__ = ["HEADROOM", "MemoryEstimate", "available_bytes", "check", "estimate"]

GIB = 2**30
#: Share of the available memory a run may plan to use (the rest covers the estimate's error).
HEADROOM = 0.85
#: Estimates below this are logged at DEBUG, above at INFO (everyday runs such as the default on ML-100K, about
#: 1.3 GiB with its attack process, print nothing new; the 1M-user run, about 14 GiB, says what it plans to use).
LOG_FROM = 4 * GIB

logger = logging.getLogger("privrec.memory")

# bytes per stored interaction: the loaded rows (user, item int32; weight float32; timestamp int64), the
# split's train and test copies, the treated copy, and the CSR matrices built from them (int32 indices and
# float32 values) that stay cached
_DATA_PER_ROW = 20 * 3 + 8 * 3
# implicit's fit: the float32 confidence matrix, its transpose, and the model's own CSR of the training rows
_FIT_PER_ROW = 8 * 3
# user attributes (pandas columns, strings as Python objects) and per-user index arrays
_PER_USER = 400
# a dense score block is copied about three times (scores, the sorted copy for AUC, the ranking keys)
_BLOCK_COPIES = 3
# the attack worker: its unpickled copy of split, treated data and model (and the pickle buffer)
_ATTACK_COPY = 1.3
# the attacks' working set per interaction (re-identification's item-major copy, membership pairs)
_ATTACK_PER_ROW = 24
#: Fixed cost: the interpreter with numpy, scipy, pandas, scikit-learn, implicit (per process).
BASE = 400 * 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak bytes by part (``data``, ``model``, ``evaluation``, ``attacks``) and what to lower for
    each (``knobs``: part -> config key)."""

    parts: Mapping[str, int]
    knobs: Mapping[str, str]
    basis: str = ""

    @property
    def total(self) -> int:
        return int(sum(self.parts.values()))

    def describe(self) -> str:
        parts = ", ".join(f"{name} {value / GIB:.2f}" for name, value in self.parts.items())
        return f"{self.total / GIB:.2f} GiB ({parts})"

    def log_line(self) -> str:
        """The estimate with what it is based on (sizes and batch shapes: counts only)."""
        return f"memory estimate: {self.describe()}" + (f" for {self.basis}" if self.basis else "")


def estimate(plan: Any, data: Any, *, parallel_attacks: bool = False) -> MemoryEstimate:
    """The estimate for running ``plan`` (a :class:`~privrec.experiment.Plan`) on ``data`` (the loaded
    :class:`~privrec.data.Dataset`); ``parallel_attacks``: the attacks run in a second process (which holds a
    copy of the data)."""
    rows, users, items = int(data.n_interactions), int(data.n_users), int(data.n_items)
    model = plan.model
    factors = int(getattr(model, "factors", 0) or 0)
    cfg = dict(plan.cfg)
    eval_cfg = dict(cfg.get("evaluation") or {})
    from privrec.evaluation.evaluate import _SCORE_BLOCK, _threads

    threads = _threads(None)
    batch = int(plan.batch_size)
    score_rows = max(1, min(batch, _SCORE_BLOCK // max(1, items)))
    block = score_rows * items * 4 * _BLOCK_COPIES + batch * 64 * 8 * 4  # scores + the batch's lists and metrics
    evaluated = users if eval_cfg.get("max_users") is None else min(users, int(eval_cfg["max_users"]))
    parts = {
        "data": BASE + rows * _DATA_PER_ROW + users * _PER_USER,
        "model": rows * _FIT_PER_ROW + (users + items) * max(factors, 1) * 4 * 2,
        "evaluation": threads * block + evaluated * 8 * 40,  # per-user metric columns and lists
    }
    knobs = {"data": "dataset size (dataset.n_interactions, preprocess.user_core)",
             "model": "model.factors",
             "evaluation": "evaluation.batch_size or evaluation.max_users"}
    if plan.attacks:
        attack = rows * _ATTACK_PER_ROW + (1 << 28) + (4096**2) * 8  # re-identification's bitmap and co-counts
        if parallel_attacks:
            attack += BASE + int(_ATTACK_COPY * (rows * _DATA_PER_ROW + (users + items) * max(factors, 1) * 4))
        parts["attacks"] = attack
        knobs["attacks"] = ("parallel_attacks=false (no second copy of the data)" if parallel_attacks
                            else "attack.<name>.max_targets")
    basis = (f"{rows:,} interactions, {users:,} users x {items:,} items, {factors} factors, evaluation "
             f"{threads} threads x {score_rows} score rows x {items:,} items (batches of {batch} users)")
    return MemoryEstimate(parts=parts, knobs=knobs, basis=basis)


def available_bytes() -> int:
    """Memory the run may still take: psutil's ``available`` plus what this process already holds (the
    estimate counts the loaded data too)."""
    import psutil

    return int(psutil.virtual_memory().available + psutil.Process().memory_info().rss)


def check(est: MemoryEstimate, *, available: int | None = None) -> MemoryEstimate:
    """Log ``est``; raise :class:`~privrec.errors.ConfigError` when it exceeds :data:`HEADROOM` of
    ``available`` (default :func:`available_bytes`), naming the setting to lower for the largest part."""
    have = available_bytes() if available is None else int(available)
    level = logging.INFO if est.total >= LOG_FROM else logging.DEBUG
    logger.log(level, "%s; available %.2f GiB", est.log_line(), have / GIB)
    if est.total > HEADROOM * have:
        biggest = max(est.parts, key=lambda k: est.parts[k])
        raise ConfigError(
            f"the run's memory estimate must fit {HEADROOM:.0%} of the available memory ({have / GIB:.2f} GiB); "
            f"got {est.describe()}. Lower {est.knobs.get(biggest, biggest)} (largest part: {biggest})."
        )
    return est
