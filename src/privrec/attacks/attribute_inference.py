"""Attribute inference: predict a sensitive user attribute from what the release and the model expose."""

from __future__ import annotations

import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from privrec import progress
from privrec.attacks.base import (
    AttackResult,
    AttackTarget,
    auc_interval,
    check_int,
    check_max_targets,
    check_number,
    check_run_args,
    sample_targets,
)
from privrec.data.dataset import Schema
from privrec.errors import ConfigError, DataWarning
from privrec.random import int_seed

__all__ = ["AttributeInference"]

_OWNER = "attribute_inference"
_SOURCES = ("released", "factors", "raw_to_released")


@dataclass(frozen=True, kw_only=True)
class AttributeInference:
    """Infer a user attribute (gender, age band...) with a classifier, as in Weinsberg et al., "BlurMe:
    Inferring and Obfuscating User Gender Based on Ratings" (RecSys 2012).

    Ground truth is the attribute in ``original.user_attributes`` (users with a missing value are left out).
    The classifier is scikit-learn's ``LogisticRegression(C=C, max_iter=max_iter)`` evaluated by
    ``StratifiedKFold(folds, shuffle=True)`` seeded from ``rng``; the same folds serve every source, so the
    sources are compared on paired splits. Out-of-fold class probabilities are pooled over the folds, then
    scored: ``{attr}_auc_{source}`` is ROC AUC for a binary attribute and macro-averaged one-vs-rest AUC for
    more classes; ``{attr}_balanced_accuracy_{source}`` takes the most probable class. ``{attr}_users_{source}``
    is the number of users evaluated.

    Sources (any subset of ``("released", "factors", "raw_to_released")``):

    - ``released``: binarised released profiles (users x items), for users with a non-empty released row.
    - ``factors``: the fitted model's user embeddings (``model.user_embeddings()``, the model contract) for
      users with training data (the others' rows are NaN), standardised first. For the implicit models these
      are implicit's user factors: ALS has no bias column; BPR's last column is a constant 1 and LMF's bias
      columns are kept (harmless). A model whose ``user_embeddings()`` is ``None`` (ItemKNN, Popularity) or
      no model: recorded as missing.
    - ``raw_to_released``: an attacker with clean training data: fit on the *original* profiles of the
      training folds, predict from the *released* profiles of the held-out fold (same users and folds as
      ``released``). Compare with ``released`` to see whether a treatment fools a classifier trained on
      untreated data more than it fools one trained on the release itself.

    Decision: an attribute with a single class among a source's users, or a class with fewer members than
    ``folds`` (stratified folds are impossible), is **not an error**: the source's metrics are recorded in
    ``missing`` with the reason (counts only, never a class label) and a
    :class:`~privrec.errors.DataWarning` is issued, so a sweep over privacy treatments (which may empty
    rows) keeps running. Neither is an attribute the data does not have (a log without demographics): every
    metric is recorded in ``missing`` (:meth:`missing_metrics`, which a run consults before any work).

    Sampling (``max_targets``): with more labelled users than that, a simple random sample of ``max_targets``
    of them (drawn from ``rng`` after the fold seed; nothing is drawn otherwise) is the population every source
    works on, so the sources stay paired. A binary attribute's AUCs are then estimates with 95% intervals
    (``{attr}_auc_{source}_ci_low`` / ``_ci_high``: DeLong, with the finite-population factor), and
    ``{attr}_targets`` / ``{attr}_population`` give the sample and the labelled users.

    What it measures: how much the release and the model reveal about the attribute, relative to chance
    (AUC 0.5, balanced accuracy 1/number of classes), for an attacker with labelled training users.
    """

    attribute: str = "gender"
    folds: int = 5
    sources: tuple[str, ...] = _SOURCES
    max_iter: int = 1000
    C: float = 1.0
    max_targets: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.attribute, str) or not self.attribute:
            raise ConfigError(f"{_OWNER}.attribute must be a column name; got {self.attribute!r}.")
        object.__setattr__(self, "folds", check_int(_OWNER, "folds", self.folds, minimum=2))
        sources = (self.sources,) if isinstance(self.sources, str) else tuple(self.sources)
        unknown = [s for s in sources if s not in _SOURCES]
        if not sources or unknown or len(set(sources)) != len(sources):
            raise ConfigError(
                f"{_OWNER}.sources must be distinct names from {list(_SOURCES)}; got {list(sources)}."
            )
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "max_iter", check_int(_OWNER, "max_iter", self.max_iter, minimum=1))
        object.__setattr__(self, "max_targets", check_max_targets(_OWNER, self.max_targets))
        object.__setattr__(self, "C", check_number(_OWNER, "C", self.C, minimum=0.0, open_low=True))

    def missing_metrics(self, columns: Collection[str], schema: Schema | None = None) -> dict[str, str]:
        """Every metric with the reason, when ``attribute`` is not among the user-attribute ``columns``; else
        nothing (the attack can run). ``schema`` is not needed (the attribute is named here)."""
        if self.attribute in set(map(str, columns)):
            return {}
        reason = (f"the data has no user attribute {self.attribute!r}; columns are "
                  f"{sorted(map(str, columns))}.")
        return {name: reason for source in self.sources for name in self._names(source)}

    def run(self, target: AttackTarget, *, rng: np.random.Generator) -> AttackResult:
        check_run_args("AttributeInference", target, rng)
        attrs = target.original.user_attributes
        absent = self.missing_metrics(list(attrs.columns))
        if absent:
            return AttackResult(attack="attribute_inference", missing=absent)
        column = attrs[self.attribute]
        labels = column.astype("string").to_numpy(dtype=object, na_value=None)
        labelled = column.notna().to_numpy(dtype=bool)
        seed = int_seed(rng)
        metrics: dict[str, float] = {}
        missing: dict[str, str] = {}
        n_labelled = int(labelled.sum())
        chosen = sample_targets(np.flatnonzero(labelled), self.max_targets, rng)
        fraction = None
        if len(chosen) < n_labelled:  # sampled: every source works on the same random subset of labelled users
            labelled = np.zeros_like(labelled)
            labelled[chosen] = True
            fraction = len(chosen) / n_labelled
            metrics[f"{self.attribute}_targets"] = float(len(chosen))
            metrics[f"{self.attribute}_population"] = float(n_labelled)

        released = target.released.to_csr(binary=True)
        in_release = labelled & (np.diff(released.indptr) > 0)
        for source in self.sources:
            if source == "factors":
                users, features, reason = _factors(target.model, labelled)
                if reason:
                    self._skip(source, reason, metrics, missing)
                    continue
                fit_on = apply_to = features
            else:
                users = np.flatnonzero(in_release)
                apply_to = released[users]
                fit_on = target.original.to_csr(binary=True)[users] if source == "raw_to_released" else apply_to
                if source == "raw_to_released" and "released" in self.sources[: self.sources.index(source)] \
                        and _same_pattern(fit_on, apply_to):
                    # The treatment left these users' rows untouched (consent drop, no privacy): the attacker
                    # trained on raw data sees exactly the released one's data, folds and seed - same result.
                    self._copy("released", source, metrics, missing)
                    continue
            self._evaluate(source, labels[users], fit_on, apply_to, seed=seed, metrics=metrics, missing=missing,
                           fraction=fraction)
        return AttackResult(attack="attribute_inference", metrics=metrics, missing=missing)

    # ------------------------------------------------------------------ internals
    def _names(self, source: str) -> tuple[str, str]:
        return f"{self.attribute}_auc_{source}", f"{self.attribute}_balanced_accuracy_{source}"

    def _copy(self, source: str, to: str, metrics: dict, missing: dict) -> None:
        metrics[f"{self.attribute}_users_{to}"] = metrics[f"{self.attribute}_users_{source}"]
        for name, new in zip(self._names(source), self._names(to), strict=True):
            for suffix in ("", "_ci_low", "_ci_high"):
                if name + suffix in metrics:
                    metrics[new + suffix] = metrics[name + suffix]
            if name in missing:
                missing[new] = missing[name]

    def _skip(self, source: str, reason: str, metrics: dict, missing: dict, *, warn: bool = False) -> None:
        for name in self._names(source):
            missing[name] = reason
        if warn:
            warnings.warn(f"{_OWNER} skipped source {source!r}: {reason}", DataWarning, stacklevel=4)

    def _evaluate(
        self, source: str, y: NDArray, fit_on: Any, apply_to: Any, *, seed: int, metrics: dict, missing: dict,
        fraction: float | None = None,
    ) -> None:
        metrics[f"{self.attribute}_users_{source}"] = float(len(y))
        classes, counts = np.unique(y.astype(str), return_counts=True) if len(y) else (np.zeros(0), np.zeros(0))
        if len(classes) < 2:
            self._skip(source, f"attribute {self.attribute!r} has {len(classes)} class(es) among {len(y)} users; "
                       "need at least 2.", metrics, missing, warn=True)
            return
        if counts.min() < self.folds:
            self._skip(source, f"attribute {self.attribute!r} has a class with {int(counts.min())} users, fewer "
                       f"than folds={self.folds}.", metrics, missing, warn=True)
            return
        from sklearn.linear_model import LogisticRegression  # imported when used: ~1.5 s with scipy.stats
        from sklearn.metrics import balanced_accuracy_score, roc_auc_score
        from sklearn.model_selection import StratifiedKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        y = y.astype(str)
        dense = not sp.issparse(fit_on)
        proba = np.zeros((len(y), len(classes)))
        splitter = StratifiedKFold(n_splits=self.folds, shuffle=True, random_state=seed)
        with threadpool_limits(1, "blas"), \
                progress.track(f"attack {_OWNER} ({source})", self.folds, unit="folds") as bar:
            # one BLAS thread: small problems, where threads only contend (and vary run to run)
            for train, test in splitter.split(np.zeros(len(y)), y):
                clf = LogisticRegression(C=self.C, max_iter=self.max_iter)
                if dense:
                    clf = make_pipeline(StandardScaler(), clf)
                clf.fit(fit_on[train], y[train])
                proba[test] = clf.predict_proba(apply_to[test])  # classes_ are sorted, as `classes`
                bar.update(1)
        auc_name, bacc_name = self._names(source)
        if len(classes) == 2:
            metrics[auc_name] = float(roc_auc_score(y == classes[1], proba[:, 1]))
            if fraction is not None:  # a sample of the labelled users: the AUC's 95% interval
                positive = y == classes[1]
                low, high = auc_interval(proba[positive, 1], proba[~positive, 1],
                                         population=round(len(y) / fraction))
                metrics[f"{auc_name}_ci_low"], metrics[f"{auc_name}_ci_high"] = low, high
        else:
            metrics[auc_name] = float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))
        metrics[bacc_name] = float(balanced_accuracy_score(y, classes[np.argmax(proba, axis=1)]))


def _same_pattern(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    """Whether two binary CSR matrices hold the same entries."""
    a, b = a.tocsr(), b.tocsr()
    a.sort_indices()
    b.sort_indices()
    return (a.shape == b.shape and np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
            and np.array_equal(a.data, b.data))


def _factors(model: Any, labelled: NDArray[np.bool_]) -> tuple[NDArray, NDArray, str]:
    """Users, their embedding rows and '' -- or empty arrays and the reason embeddings are unavailable.

    Asks the model contract only (``model.user_embeddings()``); users with a NaN row (no training data,
    served by the fallback) are left out.
    """
    none = np.zeros(0, dtype=np.int64), np.zeros((0, 0)), ""
    if model is None:
        return none[0], none[1], "no model was given."
    name = type(model).__name__
    embeddings = getattr(model, "user_embeddings", None)
    if not callable(embeddings):
        return none[0], none[1], f"the model ({name}) has no user factors (no user_embeddings method)."
    factors = embeddings()
    if factors is None:
        return none[0], none[1], f"the model ({name}) has no user factors."
    factors = np.asarray(factors, dtype=np.float64)
    if factors.ndim != 2 or factors.shape[0] != len(labelled):
        return none[0], none[1], (f"the model's user factors have shape {factors.shape}; expected one row per "
                                  f"user ({len(labelled)}).")
    users = np.flatnonzero(labelled & np.isfinite(factors).all(axis=1))
    return users, factors[users], ""
