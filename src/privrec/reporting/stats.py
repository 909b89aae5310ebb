"""Per-setting means over seeds, 95% confidence intervals, relative cost and paired tests against a baseline.

* Runs of one setting that share a seed are averaged first; ``n`` is then the number of seeds.
* 95% CI half-width: ``t.ppf(0.975, n - 1) * sd / sqrt(n)`` with the sample standard deviation (ddof 1);
  none (NaN) for n = 1.
* Relative cost: ``(mean_baseline - mean) / mean_baseline``, the baseline being the setting(s) of the same
  group (and the same non-privacy extras) selected by the baseline rule; positive = lower than the baseline.
* p-value: two-sided paired t-test (the test of :func:`scipy.stats.ttest_rel`) of the per-seed values against
  the baseline's per-seed values, over the seeds present in both; NaN (shown as n/a) with fewer than 2 pairs.

The t-distribution comes from :mod:`scipy.special` (``stdtrit`` is what ``scipy.stats.t.ppf`` calls, ``stdtr``
what ``t.sf`` calls): importing :mod:`scipy.stats` would add about a second to every ``privrec report``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special as _sp

from privrec.reporting._select import (
    MISSING,
    Baseline,
    Prepared,
    check_runs,
    match_columns,
    prepare,
    resolve_metric,
    short,
)

__all__ = ["ci95_halfwidth", "compare_to_baseline", "mean_ci95", "summarize"]


def ci95_halfwidth(sd: np.ndarray | float, n: np.ndarray | int) -> np.ndarray:
    """Half-width of the 95% t-interval of a mean: ``t.ppf(0.975, n-1) * sd / sqrt(n)``; NaN where n < 2."""
    sd = np.asarray(sd, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = _sp.stdtrit(np.maximum(n - 1, 1), 0.975) * sd / np.sqrt(n)
    return np.where(n >= 2, half, np.nan)


def mean_ci95(values: Sequence[float] | np.ndarray) -> tuple[float, float, int]:
    """(mean, 95% CI half-width, n) of the non-NaN ``values``; half-width NaN for n < 2."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return float("nan"), float("nan"), 0
    sd = x.std(ddof=1) if n > 1 else float("nan")
    return float(x.mean()), float(ci95_halfwidth(sd, n)), n


def _rows(prep: Prepared, ycol: str) -> pd.DataFrame:
    work = prep.work
    keep = work[ycol].notna()
    if prep.x_is_metric:
        keep &= work["_x"].notna()
    return work[keep]


def per_seed(prep: Prepared, ycol: str, measures: Sequence[str] = ()) -> pd.DataFrame:
    """Mean of ``ycol`` (and x when it is a metric, and ``measures``) per (setting, seed)."""
    rows = _rows(prep, ycol)
    agg = {ycol: "mean", **{m: "mean" for m in measures if m != ycol}}
    if prep.x_is_metric:
        agg["_x"] = "mean"
    return rows.groupby(["_setting", "_seed"], sort=False).agg(agg).reset_index()


def summarize_prepared(prep: Prepared, ycol: str, measures: Sequence[str] = ()) -> pd.DataFrame:
    """One row per setting: key columns, ``x``, ``n``, ``y_mean``, ``y_sd``, ``y_ci95`` (+ ``x_ci95``, measures)."""
    rows = _rows(prep, ycol)
    if rows.empty:
        return pd.DataFrame(columns=["_setting", "_line", *prep.key_columns, "x", "n", "y_mean", "y_sd", "y_ci95"])
    seeds = per_seed(prep, ycol, measures)
    by = seeds.groupby("_setting", sort=False)
    out = pd.DataFrame({"n": by[ycol].count(), "y_mean": by[ycol].mean(), "y_sd": by[ycol].std(ddof=1)})
    out["y_ci95"] = ci95_halfwidth(out["y_sd"], out["n"])
    keys = [c for c in ("_line", *prep.key_columns) if c != prep.x_name or prep.x_is_metric]
    first = rows.groupby("_setting", sort=False)[[*keys, *([] if prep.x_is_metric else ["_x"])]].first()
    if prep.x_is_metric:
        first["x"] = by["_x"].mean()
        x_sd, x_n = by["_x"].std(ddof=1), by["_x"].count()
        first["x_ci95"] = ci95_halfwidth(x_sd, x_n)
    else:
        first = first.rename(columns={"_x": "x"})
        xkey = rows.groupby("_setting", sort=False)["_xkey"].first()
        if "_privacy" in rows.columns:  # a setting without x (a NoPrivacy run has no privacy.rate): name it
            treatment = rows.groupby("_setting", sort=False)["_privacy"].first()
            xkey = xkey.where(xkey != MISSING, MISSING + " (" + treatment + ")")
        first[prep.x_name] = xkey
    out = first.join(out)
    for m in measures:
        if m == ycol:
            continue
        n_m, sd_m = by[m].count(), by[m].std(ddof=1)
        out[f"{short(m)}_mean"] = by[m].mean()
        out[f"{short(m)}_ci95"] = ci95_halfwidth(sd_m, n_m)
    out = out.reset_index()
    order = ["_setting", "_line", *prep.key_columns, "x"] + (["x_ci95"] if prep.x_is_metric else [])
    return out[order + [c for c in out.columns if c not in order]]


def summarize(runs: pd.DataFrame, *, x: str, y: str, group: str | Sequence[str] | None = "model",
              measures: Sequence[str] = ()) -> pd.DataFrame:
    """Per setting: mean over seeds, sample sd and 95% CI half-width of ``y`` (and of x when it is a metric,
    and of each metric in ``measures``). Columns: ``_setting``, ``_line`` (the figure's line label), the key
    columns (group names, x when a param, extra swept params), ``x``, ``n`` (seeds), ``y_mean``, ``y_sd``,
    ``y_ci95``, ``<measure>_mean``, ``<measure>_ci95``."""
    runs = check_runs(runs)
    prep = prepare(runs, x=x, group=group)
    ycol = resolve_metric(runs, y)
    return summarize_prepared(prep, ycol, [resolve_metric(runs, m, role="measure") for m in measures])


def compare_to_baseline(prep: Prepared, ycol: str, baseline: Baseline) -> pd.DataFrame:
    """Per setting: ``is_baseline``, ``baseline_mean``, ``rel_cost`` and the paired t-test ``p_value`` over
    ``n_pairs`` seeds (NaN with fewer than 2 pairs). Index: ``_setting``."""
    rows = _rows(prep, ycol)
    settings = pd.Index(rows["_setting"].unique(), name="_setting")
    out = pd.DataFrame(index=settings, data={"is_baseline": False, "baseline_mean": np.nan, "rel_cost": np.nan,
                                             "p_value": np.nan, "n_pairs": 0})
    if baseline.mask is None:
        return out
    in_base = baseline.mask.reindex(rows.index).fillna(False).astype(bool)
    out["is_baseline"] = in_base.groupby(rows["_setting"]).all().reindex(settings).fillna(False).astype(bool)
    match = match_columns(prep)
    keyed = rows.assign(_match=_match_key(rows, match))
    base_seed = keyed[in_base].groupby(["_match", "_seed"])[ycol].mean()
    if base_seed.empty:
        return out
    base_mean = base_seed.groupby(level="_match").mean()
    seeds = keyed.groupby(["_setting", "_match", "_seed"], sort=False)[ycol].mean().reset_index()
    setting_match = seeds.groupby("_setting", sort=False)["_match"].first()
    setting_mean = seeds.groupby("_setting", sort=False)[ycol].mean()
    b = base_mean.reindex(setting_match.values).to_numpy()
    out.loc[setting_match.index, "baseline_mean"] = b
    with np.errstate(invalid="ignore", divide="ignore"):
        out.loc[setting_match.index, "rel_cost"] = (b - setting_mean.reindex(setting_match.index).to_numpy()) / b
    paired = seeds.join(base_seed.rename("_base"), on=["_match", "_seed"]).dropna(subset=["_base"])
    for setting, pairs in paired.groupby("_setting", sort=False):
        out.loc[setting, "n_pairs"] = len(pairs)
        if len(pairs) >= 2 and not out.loc[setting, "is_baseline"]:
            out.loc[setting, "p_value"] = paired_ttest(pairs["_base"].to_numpy(), pairs[ycol].to_numpy())
    return out


def paired_ttest(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of the paired t-test of :func:`scipy.stats.ttest_rel` (``a`` and ``b`` matched by
    position); NaN for fewer than 2 pairs or when every difference is 0, 0 when they are all equal but not 0."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n = d.size
    if n < 2:
        return float("nan")
    with np.errstate(all="ignore"):
        t = d.mean() / (d.std(ddof=1) / np.sqrt(n))
        return float(2 * _sp.stdtr(n - 1, -np.abs(t)))


def _match_key(rows: pd.DataFrame, columns: list[str]) -> pd.Series:
    if not columns:
        return pd.Series("", index=rows.index)
    key = rows[columns[0]].astype(str)
    for col in columns[1:]:
        key = key + "\x1f" + rows[col].astype(str)
    return key
