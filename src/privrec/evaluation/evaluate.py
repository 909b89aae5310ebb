"""Evaluate a fitted recommender on held-out data, overall and per user segment.

:func:`evaluate` asks the model for top-``max(cutoffs)`` lists and dense scores in batches of users, computes the
per-user metrics of :mod:`privrec.evaluation.metrics`, and averages them over the evaluated users (those with at
least one test interaction), overall and inside each segment. The result, :class:`Evaluation`, flattens to MLflow
keys with :meth:`Evaluation.to_metrics` and to a per-segment table with :meth:`Evaluation.table`.

Privacy: per-user results stay in memory (:attr:`Evaluation.per_user`); only means, counts and set-level
aggregates reach :meth:`~Evaluation.to_metrics`, :meth:`~Evaluation.table` and warnings.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import posixpath
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from privrec import progress as _progress
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

__all__ = ["Evaluation", "check_max_users", "evaluate", "mean_interval", "metric_key", "sample_users"]

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
    per_user: pd.DataFrame, top: NDArray[np.int64], fallback: NDArray[np.bool_], n_items: int, cutoffs: tuple[int, ...],
    *, population: int | None = None,
) -> dict[str, float]:
    out = {col: _nanmean(per_user[col].to_numpy()) for col in per_user.columns}
    out.update(_list_metrics(top, n_items, cutoffs))
    out["n_users"] = float(len(per_user))
    out["fallback_users"] = float(fallback.sum())
    if population is not None:  # a sample of the users with test data: the sample size, the population, intervals
        out["n_users_evaluated"] = float(len(per_user))
        out["n_users_eligible"] = float(population)
        for col in per_user.columns:
            low, high = mean_interval(per_user[col].to_numpy(), population)
            out[f"{col}_ci_low"], out[f"{col}_ci_high"] = low, high
    return out


#: Two-sided 95% normal quantile of every interval this module and the attacks report.
Z95 = 1.959963984540054


def mean_interval(values: NDArray[np.float64], population: int) -> tuple[float, float]:
    """95% interval of the population mean from a simple random sample (without replacement) of it.

    ``mean +- 1.96 * sd / sqrt(n) * sqrt(1 - n / N)`` over the ``n`` non-NaN ``values`` (``sd`` with ``n - 1``
    degrees of freedom) out of ``N = population`` units; the finite-population factor makes the interval a
    point when every unit was measured. NaN when fewer than two values are defined.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = len(x)
    if n < 2:
        return math.nan, math.nan
    mean = float(x.mean())
    fpc = max(0.0, 1.0 - n / max(population, n))
    half = Z95 * float(x.std(ddof=1)) / math.sqrt(n) * math.sqrt(fpc)
    return mean - half, mean + half


def check_max_users(value: object) -> int | None:
    """``evaluation.max_users``: a positive integer or None (evaluate every user with test data)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"evaluation.max_users must be a positive integer or null; got {value!r}.")
    return int(value)


def sample_users(test: Dataset, *, max_users: int | None, rng: np.random.Generator) -> NDArray[np.int64]:
    """The users :func:`evaluate` should evaluate: every user with test data, or, when there are more than
    ``max_users``, a simple random sample of ``max_users`` of them (without replacement, drawn from ``rng``;
    ascending indices). Users are sampled, never candidate items: metrics over sampled items are biased
    (Krichene & Rendle, "On Sampled Metrics for Item Recommendation", KDD 2020), a user sample is not. Every
    segment's users in the sample are a simple random sample of that segment too, so per-segment means stay
    unbiased (their intervals are wider for small segments)."""
    max_users = check_max_users(max_users)
    eligible = np.flatnonzero(np.bincount(test.user_idx, minlength=test.n_users) > 0)
    if max_users is None or len(eligible) <= max_users:
        return eligible
    return np.sort(rng.choice(eligible, size=max_users, replace=False))


#: Upper bound on the elements of one dense block of scores (users x items) scored and ranked for AUC at once.
_SCORE_BLOCK = 1 << 23


def _threads(threads: int | None) -> int:
    if threads is None:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # pragma: no cover - not Linux
            return max(1, os.cpu_count() or 1)
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ConfigError(f"threads must be a positive integer or None (every usable core); got {threads!r}.")
    return int(threads)


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
    progress: bool | None = None,
    exclude_seen: bool = True,
    users: NDArray[np.integer] | None = None,
    threads: int | None = None,
) -> Evaluation:
    """Evaluate a fitted ``model`` on ``test``, overall and per segment.

    Evaluated users are those with at least one ``test`` interaction (or the sample of them given as
    ``users``); ``train`` and ``test`` must share their vocabularies, so user *i* is the same person in both.
    For each batch of them the model is asked for ``recommend(users, n=max(cutoffs), exclude_seen=exclude_seen)``
    (ranking and beyond-accuracy metrics) and ``score(users)`` (AUC over the whole catalogue minus the user's
    training items, or the whole catalogue when ``exclude_seen`` is false).

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
        Users per call to ``recommend``; dense scores for AUC are computed in blocks of at most
        :data:`_SCORE_BLOCK` elements (users x items) whatever the batch size.
    progress
        Show progress over users (:mod:`privrec.progress`; ``None``: the process-wide switch, the run's
        ``progress`` key).
    exclude_seen
        Whether the items of a user's row in ``train`` (the profile the model was trained on: the *released*
        one after a privacy treatment) are removed from the candidates (and from AUC); the run's
        ``evaluation.exclude`` (``released``: true, the default; ``none``: false).
    users
        The users to evaluate, a subset of those with test data (ascending, distinct), typically
        :func:`sample_users` (``evaluation.max_users``). When it is a strict subset, every per-user mean is an
        estimate and comes with its 95% interval (``<metric>_ci_low`` / ``_ci_high``, :func:`mean_interval`),
        overall and per segment, plus ``n_users_evaluated`` (the sample) and ``n_users_eligible`` (users with
        test data). Set-level metrics (``item_coverage_at_K``, ``gini_exposure_at_K``) are then those of the
        sampled lists, not estimates of the whole population's. Default: every user with test data, and no
        interval (the means are exact).
    threads
        Batches evaluated at once, each in a thread with one BLAS thread (numpy's sort, BLAS and implicit's
        top-k release the GIL); default: every usable core. Results do not depend on it.

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
    n_threads = _threads(threads)
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

    has_test = np.diff(test_csr.indptr) > 0
    eligible = np.flatnonzero(has_test)
    if eligible.size == 0:
        raise DataValidationError(
            "test must hold at least one interaction; got none. Check the split before evaluating."
        )
    if users is None:
        users = eligible
    else:
        users = np.asarray(users)
        if (users.ndim != 1 or not np.issubdtype(users.dtype, np.integer) or users.size == 0
                or users.min() < 0 or users.max() >= n_users or np.any(np.diff(users) <= 0)
                or not has_test[users].all()):
            raise DataValidationError(
                f"users must be distinct ascending indices of users with test data (1 to {eligible.size} of "
                f"them); got {users.size} entries that are not. Use sample_users(test, ...)."
            )
        users = users.astype(np.int64)
    sampled = users.size < eligible.size
    if exclude_seen:
        # only the evaluated users' pairs: the overlap of the whole matrices costs as much as a sparse product
        n_overlap = (train_csr[users].multiply(test_csr[users]).nnz if sampled
                     else train_csr.multiply(test_csr).nnz)
    else:
        n_overlap = 0
    if n_overlap:
        warnings.warn(
            f"{n_overlap} test interactions also appear in train; with exclude_seen=True they can never be "
            "recommended and count as misses (and are left out of AUC).",
            DataWarning,
            stacklevel=2,
        )

    def one_batch(batch: NDArray[np.integer]) -> tuple[dict[str, NDArray[np.float64]], NDArray, NDArray]:
        recs = model.recommend(batch, n=max_k, exclude_seen=exclude_seen)
        top, fallback = _check_recommendations(recs, batch, max_k)
        batch_test = test_csr[batch]
        values = ranking_metrics(top, batch_test, cutoffs=ks)
        step = max(1, _SCORE_BLOCK // max(1, n_items))  # dense score rows per block, whatever the batch size
        values["auc"] = np.concatenate([
            auc(model.score(batch[i : i + step]), batch_test[i : i + step],
                train_csr[batch[i : i + step]] if exclude_seen else None)
            for i in range(0, batch.size, step)])
        for k in ks:
            values[f"mean_popularity_at_{k}"] = mean_popularity(top, popularity, k=k)
        return values, top, fallback

    batches = [users[start : start + batch_size] for start in range(0, users.size, batch_size)]
    columns: dict[str, list[NDArray[np.float64]]] = {}
    tops: list[NDArray[np.int64]] = []
    fallbacks: list[NDArray[np.bool_]] = []
    with _progress.track("evaluate", users.size, unit="users", on=progress) as bar, \
            threadpool_limits(1, "blas"):  # one BLAS thread per batch; batches run on every core
        if n_threads == 1 or len(batches) == 1:
            results = map(one_batch, batches)
            pool = None
        else:
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="privrec-eval")
            results = _bounded_map(pool, one_batch, batches, ahead=2 * n_threads)
        try:
            for batch, (values, top, fallback) in zip(batches, results, strict=True):
                for name, v in values.items():
                    columns.setdefault(name, []).append(v)
                tops.append(top)
                fallbacks.append(fallback)
                bar.update(batch.size)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    per_user = pd.DataFrame(
        {name: np.concatenate(parts) for name, parts in columns.items()},
        index=pd.Index(users, name="user_idx"),
    )
    top_all = np.concatenate(tops)
    fallback_all = np.concatenate(fallbacks)
    overall = _summarize(per_user, top_all, fallback_all, n_items, ks,
                         population=eligible.size if sampled else None)

    segment_results: dict[str, dict[str, float]] = {}
    empty: list[str] = []
    for name, mask in masks.items():
        inside = mask[users]
        if not inside.any():
            if mask.any():  # members but none evaluated: a warning; a group nobody is in (opted_out at rate 0): none
                empty.append(name)
            result = dict.fromkeys(overall, math.nan)
            result["n_users"] = 0.0
            result["fallback_users"] = 0.0
            if sampled:
                result["n_users_evaluated"] = 0.0
                result["n_users_eligible"] = float(np.count_nonzero(mask & has_test))
        else:
            result = _summarize(per_user.loc[inside], top_all[inside], fallback_all[inside], n_items, ks,
                                population=int(np.count_nonzero(mask & has_test)) if sampled else None)
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


def _bounded_map(pool: concurrent.futures.Executor, fn: Any, items: list, *, ahead: int) -> Any:
    """``pool.map(fn, items)`` in order, with at most ``ahead`` items submitted and not yet consumed (so at most
    that many batches' results are held in memory at once)."""
    pending: list[concurrent.futures.Future] = []
    it = iter(items)
    for item in it:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            break
    while pending:
        done = pending.pop(0).result()
        nxt = next(it, None)
        if nxt is not None:
            pending.append(pool.submit(fn, nxt))
        yield done


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
