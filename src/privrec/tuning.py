"""Fair tuning: pick a model's hyperparameters for each run on the data that run trains on.

A privacy treatment changes the training data (fewer users, noisy or merged profiles); hyperparameters chosen
for the untreated data then overstate what privacy costs. With ``tuning=grid`` every run picks its model's
hyperparameters itself, the way a data holder who only has the *treated* data would:

1. a validation split is carved from the treated training data only - per user, a random
   ``validation_fraction`` of their treated training interactions (:class:`~privrec.data.split.RandomHoldout`,
   so users with one interaction keep it and nobody loses all of theirs). The run's test split is never read;
2. every point of the grid the config declares for the model is fitted on the rest and scored by the
   validation ``metric`` (:func:`privrec.evaluation.evaluate`, batched; the run's ``evaluation.exclude``);
   every candidate is fitted from the same generator state (common random numbers), so the comparison
   reflects the hyperparameters, not the draw;
3. the best point (the first in grid order on ties) is refitted by the run on *all* treated training data
   with the run's own model stream, so a tuned run whose winner equals the configured values gives exactly
   the untuned run's numbers.

The run logs the choice as params ``tuned.<key>``, the winner's score as ``tuning/validation_<metric>`` and
the number of candidates as ``tuning/candidates``; ``tuning.json`` holds every candidate's score.

Config (``conf/tuning/``, a plain node: tuning is a pipeline stage, not a component)::

    method: grid                  # none | grid
    validation_fraction: 0.2
    metric: null                  # e.g. ndcg_at_10, recall_at_20, auc; null: ndcg at the smallest cutoff
    grid:                         # per model, keyed by config option or class name (dp_als == DPALS)
      als: {factors: [32, 64], regularization: [0.01, 0.1]}

Only the hyperparameters in :data:`TUNABLE` that the model actually has may be tuned; grids of other models
are ignored (one config serves a sweep over models); a model without a grid is not tuned.

**What it does not do.** It does not account for privacy: choosing hyperparameters on the data is itself a
release. For a model that is a differential-privacy mechanism (DP-ALS, DP-item-kNN) the reported epsilon
covers the final fit only, not the selection (Papernot & Steinke, ICLR 2022, bound the extra cost); tune on
public data or add that cost when the guarantee must cover the whole pipeline. A temporal split's run is
still validated on a *random* per-user holdout.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from privrec.data.dataset import Dataset
from privrec.data.split import RandomHoldout, Split
from privrec.errors import ConfigError, DataValidationError

__all__ = ["METHODS", "TUNABLE", "GridSearch", "TuningResult", "from_config", "model_key", "validation_split"]

#: The ``tuning`` config group's methods.
METHODS = ("grid", "none")
#: Hyperparameters a grid may name (implicit's own names; ``K``: neighbours of item-kNN).
TUNABLE = ("K", "alpha", "factors", "iterations", "learning_rate", "regularization")
_METRIC = re.compile(r"(precision|recall|ndcg|map|mrr|hit_rate)_at_([1-9][0-9]*)")
_OPTIONS = ("method", "validation_fraction", "metric", "grid")


def model_key(name: str) -> str:
    """The grid key of a model: lower case without underscores, so a config option (``dp_als``) and a class
    name (``DPALS``) name the same grid."""
    return str(name).replace("_", "").lower()


def _metric_cutoff(metric: str) -> int:
    """The list length a validation metric needs (1 for ``auc``); ConfigError for an unknown metric."""
    if metric == "auc":
        return 1
    match = _METRIC.fullmatch(metric)
    if match is None:
        raise ConfigError(f"tuning.metric must be auc or <precision|recall|ndcg|map|mrr|hit_rate>_at_<K>; got "
                          f"{metric!r}.")
    return int(match.group(2))


@dataclass(frozen=True)
class TuningResult:
    """What :meth:`GridSearch.tune` chose: the winner's hyperparameters and validation score, every candidate's
    score, and the (unfitted) winning model. Aggregates only: safe to log."""

    params: Mapping[str, Any]
    metric: str
    score: float
    candidates: tuple[tuple[Mapping[str, Any], float], ...]
    model: Any = dataclasses.field(repr=False)

    def to_params(self) -> dict[str, str]:
        """``{"tuned.factors": "32", ...}``: the chosen values, formatted like the flattened config."""
        return {f"tuned.{k}": str(v) for k, v in self.params.items()}

    def to_metrics(self) -> dict[str, float]:
        """``tuning/validation_<metric>`` (the winner's score) and ``tuning/candidates``."""
        return {f"tuning/validation_{self.metric}": float(self.score), "tuning/candidates": float(len(self.candidates))}

    def to_json(self) -> str:
        """Every candidate and its validation score (the ``tuning.json`` artifact)."""
        rows = [{"params": dict(p), f"validation_{self.metric}": s} for p, s in self.candidates]
        return json.dumps({"metric": self.metric, "chosen": dict(self.params), "candidates": rows}, indent=2,
                          default=str)


@dataclass(frozen=True, kw_only=True)
class GridSearch:
    """Grid search on a validation split of the treated training data (see the module docstring).

    ``grid``: model key (:func:`model_key` of a config option or class name) -> hyperparameter -> values;
    ``validation_fraction``: per user, the share of treated training interactions held out for validation;
    ``metric``: a per-user metric of :func:`privrec.evaluation.evaluate` (``ndcg_at_10``, ``auc``...), higher is
    better. Validated when built; :meth:`candidates` checks a grid against the model it tunes."""

    grid: Mapping[str, Mapping[str, tuple[Any, ...]]]
    validation_fraction: float = 0.2
    metric: str = "ndcg_at_10"

    def __post_init__(self) -> None:
        f = self.validation_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1:
            raise ConfigError(f"tuning.validation_fraction must be in (0, 1); got {f!r}.")
        _metric_cutoff(self.metric)
        if not isinstance(self.grid, Mapping):
            raise ConfigError(f"tuning.grid must map models to {{hyperparameter: [values]}}; got "
                              f"{type(self.grid).__name__}.")
        grid: dict[str, dict[str, tuple[Any, ...]]] = {}
        for name, params in self.grid.items():
            if not isinstance(params, Mapping):
                raise ConfigError(f"tuning.grid.{name} must map hyperparameters to lists of values; got "
                                  f"{type(params).__name__}.")
            for key, values in params.items():
                if key not in TUNABLE:
                    raise ConfigError(f"tuning.grid.{name}.{key} must be one of the tunable hyperparameters "
                                      f"{list(TUNABLE)}; got {key!r}.")
                if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                    raise ConfigError(f"tuning.grid.{name}.{key} must be a non-empty list of values; got "
                                      f"{values!r}.")
            grid[model_key(name)] = {k: tuple(v) for k, v in params.items()}
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "validation_fraction", float(f))

    def candidates(self, model: Any) -> list[dict[str, Any]]:
        """Every grid point for ``model`` (the product of its grid, in declared order); ``[]`` when the grid
        has no entry for it. ConfigError when a grid key names no model, when the grid names a hyperparameter
        the model does not have, or a value the model refuses (each candidate is built once here, so a bad grid
        fails before any work)."""
        self._check_models(model)
        grid = self.grid.get(model_key(type(model).__name__))
        if not grid:
            return []
        where = f"tuning.grid.{model_key(type(model).__name__)}"
        if not dataclasses.is_dataclass(model) or isinstance(model, type):
            raise ConfigError(f"{where} needs a model whose hyperparameters are dataclass fields; got "
                              f"{type(model).__name__}.")
        fields = {f.name for f in dataclasses.fields(model) if f.init}
        missing = sorted(set(grid) - fields)
        if missing:
            raise ConfigError(f"{where} must name hyperparameters {type(model).__name__} has; got {missing[0]!r}. "
                              f"Tunable ones it has: {sorted(fields & set(TUNABLE))}.")
        points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
        for params in points:
            dataclasses.replace(model, **params)  # the model validates its hyperparameters when built
        return points

    def _check_models(self, model: Any) -> None:
        """A grid key that names no privrec model (nor ``model``) is a typo that would silently tune nothing."""
        import privrec.models

        known = {model_key(name) for name in privrec.models.__all__} | {model_key(type(model).__name__)}
        unknown = sorted(set(self.grid) - known)
        if unknown:
            raise ConfigError(f"tuning.grid keys must name models (a config option such as als or dp_als, or a "
                              f"class name); got {unknown[0]!r}.")

    def tune(self, model: Any, train: Dataset, *, rng: np.random.Generator, exclude_seen: bool = True,
             batch_size: int = 2048, prepare: Callable[[Dataset], Dataset] | None = None) -> TuningResult | None:
        """Choose ``model``'s hyperparameters on a validation split of ``train`` (the treated training data);
        ``None`` when the grid has nothing for this model. ``rng``: the run's tuning stream (one child draws
        the validation split, another seeds every candidate's fit identically). ``prepare``: what turns training
        data into the model's input (weights that depend on other rows, such as BM25), applied to the validation
        split's training part only, so the held-out validation rows never shape the weights."""
        from privrec.evaluation import evaluate

        points = self.candidates(model)
        if not points:
            return None
        split_rng, fit_rng = rng.spawn(2)
        val = validation_split(train, fraction=self.validation_fraction, rng=split_rng)
        cutoff = _metric_cutoff(self.metric)
        fit_on = val.train if prepare is None else prepare(val.train)
        scores: list[float] = []
        for params in points:
            fitted = dataclasses.replace(model, **params).fit(fit_on, rng=copy.deepcopy(fit_rng))
            result = evaluate(fitted, val.train, val.test, cutoffs=(cutoff,), batch_size=batch_size,
                              exclude_seen=exclude_seen)
            scores.append(float(result.overall[self.metric]))
        finite = [s if math.isfinite(s) else -math.inf for s in scores]
        if not any(math.isfinite(s) for s in finite):
            raise DataValidationError(f"tuning.metric {self.metric} must be defined on the validation split; got "
                                      f"NaN for all {len(points)} candidates. Choose another metric.")
        best = int(np.argmax(finite))  # the first best on ties
        return TuningResult(params=points[best], metric=self.metric, score=scores[best],
                            candidates=tuple(zip(points, scores, strict=True)),
                            model=dataclasses.replace(model, **points[best]))


def validation_split(train: Dataset, *, fraction: float, rng: np.random.Generator) -> Split:
    """Per user, a random ``fraction`` of ``train``'s interactions as validation (``Split.test``), the rest as
    the candidates' training data; vocabularies kept. DataValidationError when no user has two interactions."""
    try:
        return RandomHoldout(fraction=fraction).split(train, rng=rng)
    except DataValidationError:
        raise DataValidationError(
            f"tuning.validation_fraction={fraction:g} must leave validation users; got no user with 2 or more "
            "treated training interactions. Use tuning=none for this treatment."
        ) from None


def from_config(node: Mapping[str, Any] | None, *, cutoffs: Sequence[int]) -> GridSearch | None:
    """The ``tuning`` config node as a :class:`GridSearch` (``None`` for ``method: none`` or no node).

    ``cutoffs``: the run's ``evaluation.cutoffs``; the default metric is ndcg at the smallest one."""
    if node is None:
        return None
    if not isinstance(node, Mapping):
        raise ConfigError(f"tuning must be a mapping (tuning=none or tuning=grid); got {type(node).__name__}.")
    unknown = sorted(set(node) - set(_OPTIONS))
    if unknown:
        raise ConfigError(f"tuning has no option {unknown[0]!r}; options are {list(_OPTIONS)}.")
    method = node.get("method", "none")
    if method not in METHODS:
        raise ConfigError(f"tuning.method must be one of {list(METHODS)}; got {method!r}.")
    if method == "none":
        return None
    metric = node.get("metric") or f"ndcg_at_{min(cutoffs)}"
    return GridSearch(grid=node.get("grid") or {}, validation_fraction=node.get("validation_fraction", 0.2),
                      metric=str(metric))
