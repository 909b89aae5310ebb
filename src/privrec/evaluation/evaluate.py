"""Evaluate a fitted recommender on held-out data, overall and per user segment.

:func:`evaluate` asks the model for top-``max(cutoffs)`` lists and dense scores in batches of users, computes the
per-user metrics of :mod:`privrec.evaluation.metrics`, and averages them over the evaluated users (those with at
least one test interaction), overall and inside each segment. The result, :class:`Evaluation`, flattens to MLflow
keys with :meth:`Evaluation.to_metrics` and to a per-segment table with :meth:`Evaluation.table`.

Privacy: per-user results stay in memory (:attr:`Evaluation.per_user`); only means, counts and set-level
aggregates reach :meth:`~Evaluation.to_metrics`, :meth:`~Evaluation.table` and warnings.
"""

from __future__ import annotations

import math
import posixpath
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from tqdm.auto import tqdm

from privrec.errors import ConfigError, DataValidationError, DataWarning
from privrec.evaluation.metrics import (
    auc,
    gini_exposure,
    item_coverage,
    mean_popularity,
    ranking_metrics,
)

if TYPE_CHECKING:  # type-only: evaluation needs no model code (and so never imports implicit)
    from privrec.data.dataset import Dataset
    from privrec.models.base import Recommendations, Recommender

__all__ = ["Evaluation", "evaluate", "metric_key"]

#: Row name of the whole population in :meth:`Evaluation.table`; not allowed as a segment name.
OVERALL = "overall"

# MLflow (3.x, POSIX) accepts metric names matching ``^[/\w.\- :]*$``; ``:`` is refused on Windows, and ``/``
# separates our key levels, so inside one level we keep only ``\w``, ``.``, ``-`` and space.
_UNSAFE_KEY_CHARS = re.compile(r"[^\w.\- ]")


def metric_key(*parts: str) -> str:
    """Join ``parts`` with ``/`` into an MLflow-safe key.

    MLflow rejects ``=`` in keys, so an attribute segment ``attr=value`` becomes two levels ``attr/value``;
    inside a part every other character MLflow rejects (``@``, ``:``, ``/``, ``+``, ``,`` ...) becomes ``_``:
    ``metric_key("eval", "gender=F", "ndcg_at_10") == "eval/gender/F/ndcg_at_10"``.
    """
    cleaned = [_UNSAFE_KEY_CHARS.sub("_", q) for p in parts for q in str(p).split("=", 1)]
    key = "/".join(cleaned)
    if any(p.strip() in ("", ".", "..") for p in cleaned) or posixpath.normpath(key) != key:
        raise ConfigError(
            f"metric key parts must be non-empty names other than '.' and '..'; got {len(parts)} parts "
            f"with an empty or dot-only one. Rename the prefix or segment."
        )
    return key


@dataclass(frozen=True, eq=False)
class Evaluation:
    """What :func:`evaluate` measured.

    ``overall``: metric name -> mean over all evaluated users (set-level metrics on all their lists), plus
    ``n_users`` and ``fallback_users``. ``segments``: segment name -> the same dict restricted to the evaluated
    users in that segment (NaN metrics and ``n_users`` 0 when it has none). ``per_user``: one row per evaluated
    user (index ``user_idx``), one column per per-user metric; keep it in memory, never log it.
    """

    overall: dict[str, float]
    segments: dict[str, dict[str, float]]
    per_user: pd.DataFrame = field(repr=False)

    def to_metrics(self, prefix: str = "eval") -> dict[str, float]:
        """Flat MLflow metrics: ``{prefix}/{metric}`` and ``{prefix}/{segment}/{metric}``.

        ``prefix`` may hold ``/`` levels (``"eval/test"``). Segment names are made MLflow-safe with
        :func:`metric_key` (``gender=F`` -> ``gender/F``: MLflow rejects ``=``); raises
        :class:`~privrec.errors.ConfigError` if two segments would share a key.
        """
        levels = prefix.split("/")  # a prefix may itself have levels: "eval/test"
        out = {metric_key(*levels, name): float(v) for name, v in self.overall.items()}
        seen: dict[str, str] = {}
        for seg, values in self.segments.items():
            safe = metric_key(seg)
            if safe in seen:
                raise ConfigError(
                    f"segment names must stay distinct as MLflow keys; got '{seen[safe]}' and '{seg}' both "
                    f"as '{safe}'. Rename one of them."
                )
            seen[safe] = seg
            out.update({metric_key(*levels, seg, name): float(v) for name, v in values.items()})
        return out

    def table(self) -> pd.DataFrame:
        """One row per population (``overall`` first, then the segments as named), one column per metric."""
        rows = {OVERALL: self.overall, **self.segments}
        table = pd.DataFrame.from_dict(rows, orient="index", dtype=np.float64)
        table.index.name = "segment"
        for col in ("n_users", "fallback_users"):
            if col in table:
                table[col] = table[col].astype(np.int64)
        return table


# ---------------------------------------------------------------------------------------------- helpers
def _nanmean(x: NDArray[np.float64]) -> float:
    """Mean over the non-NaN values; NaN (without a RuntimeWarning) when there are none."""
    x = np.asarray(x, dtype=np.float64)
    ok = ~np.isnan(x)
    return float(x[ok].mean()) if ok.any() else math.nan


def _check_cutoffs(cutoffs: int | Sequence[int]) -> tuple[int, ...]:
    values = (cutoffs,) if isinstance(cutoffs, (int, np.integer)) else tuple(cutoffs)  # a lone int from a config
    if not values or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in values):
        raise ConfigError(f"evaluation.cutoffs must be a non-empty list of positive integers; got {list(values)}.")
    return tuple(sorted({int(k) for k in values}))


def _check_segments(segments: Mapping[str, NDArray[np.bool_]] | None, n_users: int) -> dict[str, NDArray]:
    out: dict[str, NDArray[np.bool_]] = {}
    for name, mask in (segments or {}).items():
        if not isinstance(name, str) or not name or name == OVERALL:
            raise ConfigError(f"segment names must be non-empty strings other than '{OVERALL}'; got {name!r}.")
        m = np.asarray(mask)
        if m.dtype != np.bool_ or m.shape != (n_users,):
            raise DataValidationError(
                f"segment '{name}' must be a boolean mask over all {n_users} users; "
                f"got dtype {m.dtype} and shape {m.shape}."
            )
        out[name] = m
    return out


def _list_metrics(top: NDArray[np.int64], n_items: int, cutoffs: tuple[int, ...]) -> dict[str, float]:
    """Set-level beyond-accuracy metrics of a group of lists."""
    out = {f"item_coverage_at_{k}": item_coverage(top, n_items, k=k) for k in cutoffs}
    out.update({f"gini_exposure_at_{k}": gini_exposure(top, n_items, k=k) for k in cutoffs})
    return out


def _summarize(
    per_user: pd.DataFrame, top: NDArray[np.int64], fallback: NDArray[np.bool_], n_items: int, cutoffs: tuple[int, ...]
) -> dict[str, float]:
    out = {col: _nanmean(per_user[col].to_numpy()) for col in per_user.columns}
    out.update(_list_metrics(top, n_items, cutoffs))
    out["n_users"] = float(len(per_user))
    out["fallback_users"] = float(fallback.sum())
    return out


# ---------------------------------------------------------------------------------------------- evaluate
def evaluate(
    model: Recommender,
    train: Dataset,
    test: Dataset,
    *,
    cutoffs: Sequence[int] = (10, 20),
    segments: Mapping[str, NDArray[np.bool_]] | None = None,
    item_popularity: NDArray[np.float64] | None = None,
    batch_size: int = 2048,
    progress: bool = False,
    exclude_seen: bool = True,
) -> Evaluation:
    """Evaluate a fitted ``model`` on ``test``, overall and per segment.

    Evaluated users are those with at least one ``test`` interaction; ``train`` and ``test`` must share their
    vocabularies, so user *i* is the same person in both. For each batch of them the model is asked for
    ``recommend(users, n=max(cutoffs), exclude_seen=exclude_seen)`` (ranking and beyond-accuracy metrics) and
    ``score(users)`` (AUC over the whole catalogue minus the user's training items, or the whole catalogue
    when ``exclude_seen`` is false).

    Metrics (see ``docs/metrics.md``): per user ``precision|recall|ndcg|map|mrr|hit_rate_at_K``, ``auc`` and
    ``mean_popularity_at_K``; per group of lists ``item_coverage_at_K`` and ``gini_exposure_at_K``; plus the
    counts ``n_users`` (evaluated users) and ``fallback_users`` (of them, served by the fallback model).

    Parameters
    ----------
    cutoffs
        List lengths ``K``.
    segments
        Name -> boolean mask over *all* ``n_users`` user indices (e.g. from
        :func:`~privrec.evaluation.published_segments`, which keeps segments too small to publish out; every
        segment given here is evaluated). A segment's metrics are means over the evaluated users inside the
        mask; set-level metrics use only their lists. Segments with no evaluated user get NaN metrics,
        ``n_users`` 0 and one :class:`~privrec.errors.DataWarning` (counting them; naming only those without
        an attribute value, ``attr=value``).
    item_popularity
        Per-item popularity for ``mean_popularity_at_K``; default: the share of users with training data who
        interacted with each item in ``train``.
    batch_size
        Users per call to the model.
    progress
        Show a progress bar over users.
    exclude_seen
        Whether the items of a user's row in ``train`` (the profile the model was trained on: the *released*
        one after a privacy treatment) are removed from the candidates (and from AUC); the run's
        ``evaluation.exclude`` (``released``: true, the default; ``none``: false).

    Notes
    -----
    Means: ``auc`` and ``mean_popularity_at_K`` skip users where they are undefined (NaN: no negative or no
    positive item left for AUC; an empty list for popularity). Test items that also appear in ``train`` cannot
    be recommended with ``exclude_seen=True``; they still count in ``|T|`` (as in implicit) and are left out of
    AUC. A :class:`~privrec.errors.DataWarning` reports how many there are. With ``exclude_seen=False`` every
    item is a candidate: such test items can be hits, and training items that are not test items are misses.
    """
    # Index i is the same person in train and test; only the sizes must agree (a pseudonymised train set
    # relabels the external ids but keeps every index).
    if train.n_users != test.n_users or train.n_items != test.n_items:
        raise DataValidationError(
            "train and test must share user and item indices; "
            f"got {train.n_users}/{test.n_users} users and {train.n_items}/{test.n_items} items. "
            "Split one Dataset so both keep its vocabularies."
        )
    ks = _check_cutoffs(cutoffs)
    max_k = ks[-1]
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"evaluation.batch_size must be a positive integer; got {batch_size!r}.")
    n_users, n_items = train.n_users, train.n_items
    masks = _check_segments(segments, n_users)

    train_csr = train.to_csr(binary=True)
    test_csr = test.to_csr(binary=True)
    if item_popularity is None:
        n_train_users = int((np.diff(train_csr.indptr) > 0).sum())
        item_popularity = np.diff(train_csr.tocsc().indptr) / max(1, n_train_users)
    popularity = np.asarray(item_popularity, dtype=np.float64)
    if popularity.shape != (n_items,):
        raise DataValidationError(
            f"item_popularity must have one value per item, shape ({n_items},); got {popularity.shape}."
        )

    users = np.flatnonzero(np.diff(test_csr.indptr) > 0)
    if users.size == 0:
        raise DataValidationError(
            "test must hold at least one interaction; got none. Check the split before evaluating."
        )
    n_overlap = train_csr.multiply(test_csr).nnz if exclude_seen else 0
    if n_overlap:
        warnings.warn(
            f"{n_overlap} test interactions also appear in train; with exclude_seen=True they can never be "
            "recommended and count as misses (and are left out of AUC).",
            DataWarning,
            stacklevel=2,
        )

    columns: dict[str, list[NDArray[np.float64]]] = {}
    tops: list[NDArray[np.int64]] = []
    fallbacks: list[NDArray[np.bool_]] = []
    with tqdm(total=users.size, disable=not progress, desc="evaluate", unit="user") as bar:
        for start in range(0, users.size, batch_size):
            batch = users[start : start + batch_size]
            recs = model.recommend(batch, n=max_k, exclude_seen=exclude_seen)
            top, fallback = _check_recommendations(recs, batch, max_k)
            batch_test = test_csr[batch]
            values = ranking_metrics(top, batch_test, cutoffs=ks)
            values["auc"] = auc(model.score(batch), batch_test, train_csr[batch] if exclude_seen else None)
            for k in ks:
                values[f"mean_popularity_at_{k}"] = mean_popularity(top, popularity, k=k)
            for name, v in values.items():
                columns.setdefault(name, []).append(v)
            tops.append(top)
            fallbacks.append(fallback)
            bar.update(batch.size)

    per_user = pd.DataFrame(
        {name: np.concatenate(parts) for name, parts in columns.items()},
        index=pd.Index(users, name="user_idx"),
    )
    top_all = np.concatenate(tops)
    fallback_all = np.concatenate(fallbacks)
    overall = _summarize(per_user, top_all, fallback_all, n_items, ks)

    segment_results: dict[str, dict[str, float]] = {}
    empty: list[str] = []
    for name, mask in masks.items():
        inside = mask[users]
        if not inside.any():
            empty.append(name)
            result = dict.fromkeys(overall, math.nan)
            result["n_users"] = 0.0
            result["fallback_users"] = 0.0
        else:
            result = _summarize(per_user.loc[inside], top_all[inside], fallback_all[inside], n_items, ks)
        segment_results[name] = result
    if empty:  # names only of segments that carry no attribute value (attr=value names could hold a record value)
        named = [repr(name) for name in empty if "=" not in name]
        valued = len(empty) - len(named)
        detail = ", ".join([*named, *([f"{valued} attribute values"] if valued else [])])
        warnings.warn(
            f"{len(empty)} segments have no evaluated user (none with test data); their metrics are NaN: {detail}.",
            DataWarning,
            stacklevel=2,
        )
    return Evaluation(overall=overall, segments=segment_results, per_user=per_user)


def _check_recommendations(
    recs: Recommendations, batch: NDArray, n: int
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Top lists (exactly ``n`` columns, -1 padded) and fallback flags, checked against the request."""
    rec_users = np.asarray(recs.users)
    items = np.asarray(recs.items)
    fallback = np.asarray(recs.fallback, dtype=bool)
    if not np.array_equal(rec_users, batch) or items.ndim != 2 or items.shape[0] != batch.size:
        raise ValueError(
            "model.recommend must return one list per requested user, in the requested order; "
            f"got {items.shape[0] if items.ndim == 2 else 'no'} lists for {batch.size} users."
        )
    if fallback.shape != (batch.size,):
        raise ValueError(f"Recommendations.fallback must have shape ({batch.size},); got {fallback.shape}.")
    items = items[:, :n].astype(np.int64, copy=False)
    if items.shape[1] < n:
        items = np.pad(items, ((0, 0), (0, n - items.shape[1])), constant_values=-1)
    return items, fallback
