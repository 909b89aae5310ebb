"""From a runs frame to settings: name resolution, lines, settings, seeds and the baseline rule.

A *runs frame* has one row per run and columns ``params.<name>`` (strings as logged) and
``metrics.<name>`` (floats), as returned by :func:`privrec.tracking.query.load_runs` (or by
``mlflow.search_runs``). Rows are grouped as follows:

* **seed**: ``params.seed`` (the replicate; runs without it are each their own replicate).
* **setting**: one point of the figure / row of the table = the ``group`` labels, the x value when x is a param,
  and every other param that varies across the runs except the seed (and ``run_name``, ``progress``,
  ``tracking.*``, which label or route a run). Runs of one setting differ only by seed.
* **line**: the ``group`` labels plus, when x is a param, every varying param that is not already fixed by
  (group, x) (so a sweep over ``model.factors`` draws one line per factor count); when x is a metric, the
  group labels only (the line then runs through all settings of the group, ordered by their mean x).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from privrec.errors import ConfigError

SEED = "params.seed"
#: Params that label or route a run rather than configure it: never part of a setting.
# not settings: where a run is recorded or shown, and hyperparameters each run's tuning chose for itself
IGNORED_PARAMS = ("params.run_name", "params.progress", "params.tracking.", "params.tuned.")
MISSING = "—"  # label of a param a run does not have (e.g. privacy.rate of a NoPrivacy run)
NO_PRIVACY = "NoPrivacy"


# ---------------------------------------------------------------------------------------------- names
def short(column: str) -> str:
    """``params.privacy.rate`` -> ``privacy.rate``; ``metrics.eval/ndcg_at_10`` -> ``eval/ndcg_at_10``."""
    for prefix in ("params.", "metrics."):
        if column.startswith(prefix):
            return column[len(prefix):]
    return column


def metric_names(runs: pd.DataFrame) -> list[str]:
    """Metrics with at least one value in ``runs``."""
    cols = [c for c in runs.columns if c.startswith("metrics.")]
    present = runs[cols].notna().any(axis=0) if cols else pd.Series(dtype=bool)
    return sorted(short(c) for c in cols if present[c])


def param_names(runs: pd.DataFrame) -> list[str]:
    return sorted(short(c) for c in runs.columns if c.startswith("params."))


def varying_params(runs: pd.DataFrame) -> list[str]:
    """Param columns with more than one value (a missing param counts as a value)."""
    cols = [c for c in runs.columns if c.startswith("params.")]
    return [c for c in cols if runs[c].astype("string").fillna(MISSING).nunique() > 1]


def _hint(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def resolve_metric(runs: pd.DataFrame, name: str, *, role: str = "y") -> str:
    """The ``metrics.`` column ``name`` refers to (``eval/ndcg_at_10`` or ``metrics.eval/ndcg_at_10``)."""
    col = name if name.startswith("metrics.") else f"metrics.{name}"
    if col in runs.columns and runs[col].notna().any():
        return col
    names = metric_names(runs)
    raise ConfigError(f"{role} must name a metric of these runs; got {name!r}. Metrics: "
                      f"{', '.join(names) or 'none'}.{_hint(short(name), names)}")


def resolve_x(runs: pd.DataFrame, name: str) -> str:
    """The column ``name`` refers to: a param (``privacy.rate``) or a metric (``attack/reid_rate_m8``)."""
    if name.startswith(("params.", "metrics.")):
        candidates = [name]
    elif "/" in name:  # MLflow metric keys are group/name; params are dotted
        candidates = [f"metrics.{name}", f"params.{name}"]
    else:
        candidates = [f"params.{name}", f"metrics.{name}"]
    for col in candidates:
        if col in runs.columns and runs[col].notna().any():
            return col
    swept = [short(c) for c in varying_params(runs)]
    metrics = metric_names(runs)
    raise ConfigError(f"x must name a param or a metric of these runs; got {name!r}. Swept params: "
                      f"{', '.join(swept) or 'none'}; metrics: {', '.join(metrics) or 'none'}."
                      f"{_hint(short(name), swept + metrics + param_names(runs))}")


def default_x(runs: pd.DataFrame) -> str:
    """The x to use when none is given: the swept ``privacy.*`` param (numeric ones first, then by name)."""
    runs = check_runs(runs)
    swept = [c for c in varying_params(runs) if c != SEED and not _ignored(c)]
    candidates = [c for c in swept if c.startswith("params.privacy.") and not c.endswith("._target_")]
    if not candidates:
        raise ConfigError(f"x must be given when no privacy param is swept; got swept params: "
                          f"{', '.join(short(c) for c in swept) or 'none'}. Pass --x PARAM_OR_METRIC.")
    return short(min(candidates, key=lambda c: (as_numeric(runs[c]) is None, c)))


def group_labels(runs: pd.DataFrame, name: str) -> tuple[pd.Series, str]:
    """Labels of config group or param ``name`` for each run, and the column they come from.

    A config group (``model``, ``privacy``) is labelled by the class name of its ``_target_``
    (``privrec.models.ALS`` -> ``ALS``); any other param by its value.
    """
    bare = short(name)
    target = f"params.{bare}._target_"
    if target in runs.columns:
        values = runs[target].astype("string")
        return values.str.rsplit(".", n=1).str[-1].fillna(MISSING).astype(object), target
    for col in (name, f"params.{bare}"):
        if col in runs.columns:
            return runs[col].astype("string").fillna(MISSING).astype(object), col
    groups = sorted({short(c)[: -len("._target_")] for c in runs.columns
                     if c.startswith("params.") and c.endswith("._target_")})
    swept = [short(c) for c in varying_params(runs)]
    raise ConfigError(f"group must name a config group or a param of these runs; got {name!r}. Config groups: "
                      f"{', '.join(groups) or 'none'}; swept params: {', '.join(swept) or 'none'}."
                      f"{_hint(bare, groups + swept)}")


def as_numeric(values: pd.Series) -> pd.Series | None:
    """Param strings as floats (``null`` -> NaN, ``inf`` -> inf); None when some value is not a number."""
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    cleaned = values.astype("string").replace({"null": pd.NA, "None": pd.NA, "nan": pd.NA})
    try:
        return pd.to_numeric(cleaned, errors="raise").astype("float64")
    except (ValueError, TypeError):
        return None


def _ignored(column: str) -> bool:
    return any(column == p or (p.endswith(".") and column.startswith(p)) for p in IGNORED_PARAMS)


# ---------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True, eq=False)
class Prepared:
    """The runs with their setting, line and seed keys (internal to the reporting package)."""

    work: pd.DataFrame            # one row per run: keys + the x column (+ every metric of ``runs``)
    x: str                        # resolved x column
    x_is_metric: bool
    x_numeric: bool               # x values are numbers (a metric always is)
    group_names: tuple[str, ...]  # display names of the group labels ("model")
    extras: tuple[str, ...]       # varying params (short names) splitting lines besides the group
    shown: tuple[str, ...]        # varying params (short names) shown as table columns (extras, or when x is a
                                  # metric, the params that place a setting along its group's line)
    key_columns: tuple[str, ...]  # display columns identifying a setting (group names, [x], extras)
    setting_params: tuple[str, ...]  # every param column that defines a setting (besides the group)
    shown_sources: tuple[str, ...] = ()  # the param column behind each of ``shown``

    @property
    def x_name(self) -> str:
        return short(self.x)


def check_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with a fresh 0..n-1 index (masks and groupings align by index), or a ConfigError."""
    if not isinstance(runs, pd.DataFrame) or runs.empty:
        raise ConfigError("runs must be a non-empty DataFrame of runs (load_runs); got "
                          f"{'an empty frame' if isinstance(runs, pd.DataFrame) else type(runs).__name__}.")
    return runs.reset_index(drop=True)


def prepare(runs: pd.DataFrame, *, x: str, group: str | Sequence[str] | None = "model") -> Prepared:
    """Attach setting/line/seed keys to ``runs`` (see the module docstring for the rules). ``runs`` must have
    passed :func:`check_runs`."""
    xcol = resolve_x(runs, x)
    x_is_metric = xcol.startswith("metrics.")
    groups = [] if group is None else [group] if isinstance(group, str) else list(group)
    work = pd.DataFrame(index=runs.index)
    sources: list[str] = []
    group_names: list[str] = []
    for name in groups:
        labels, source = group_labels(runs, name)
        group_name = short(name)
        work[group_name] = labels
        group_names.append(group_name)
        sources.append(source)

    # seed: a string key (runs without a seed param are their own replicates and never pair up)
    work["_seed"] = runs[SEED].astype("string").fillna(MISSING).astype(object) if SEED in runs.columns \
        else runs.get("run_id", pd.Series(runs.index.astype(str), index=runs.index)).astype(str)

    # x
    if x_is_metric:
        work["_x"] = runs[xcol].astype("float64")
        x_numeric = True
    else:
        numeric = as_numeric(runs[xcol])
        x_numeric = numeric is not None
        work["_x"] = numeric if x_numeric else runs[xcol].astype("string").fillna(MISSING).astype(object)
        work["_xkey"] = runs[xcol].astype("string").fillna(MISSING).astype(object)

    # settings: group labels, x (param), every other varying param except the seed
    skip = {SEED, xcol, *sources}
    setting_params = [c for c in varying_params(runs) if c not in skip and not _ignored(c)]
    strings = runs[setting_params].astype("string").fillna(MISSING).astype(object)
    fixed_by = [*group_names] + ([] if x_is_metric else ["_xkey"])
    probe = pd.concat([work[fixed_by], strings], axis=1)
    # params that still vary once (group, x) are fixed: they split lines (x a param) or, when x is a metric,
    # identify the points along a group's line (shown as table columns, not as separate lines). Chosen greedily,
    # config-group classes (``model._target_``) first, so params implied by those (``model.factors`` of a model
    # swept as model=als,bpr) do not show up again.
    shown: list[str] = []
    display: dict[str, str] = {}
    for col in sorted(setting_params, key=lambda c: (not c.endswith("._target_"), c)):
        keys = [*fixed_by, *shown]
        if keys:
            varies = (probe.groupby(keys, sort=False, dropna=False)[col].nunique() > 1).any()
        else:
            varies = probe[col].nunique() > 1
        if not varies:
            continue
        shown.append(col)
        name = short(col)
        if col.endswith("._target_") and name[: -len("._target_")] not in (*group_names, *display.values()):
            name = name[: -len("._target_")]
            work[name] = strings[col].str.rsplit(".", n=1).str[-1]
        else:
            work[name] = strings[col]
        display[col] = name
    extras = [] if x_is_metric else shown
    for col in setting_params:
        work[f"_p:{col}"] = strings[col]
    setting_keys = [*group_names] + ([] if x_is_metric else ["_xkey"]) + [f"_p:{c}" for c in setting_params]
    if setting_keys:
        work["_setting"] = work.groupby(setting_keys, sort=False, dropna=False).ngroup()
    else:
        work["_setting"] = 0
    line_parts = [work[g] for g in group_names]
    line_parts += [display[c] + "=" + work[display[c]].astype(str) for c in extras]
    if line_parts:
        label = line_parts[0].astype(str)
        for part in line_parts[1:]:
            label = label + ", " + part.astype(str)
    else:
        label = pd.Series("all runs", index=work.index)
    work["_line"] = label
    if "params.privacy._target_" in runs.columns:  # the treatment's class, to name rows without an x value
        work["_privacy"] = runs["params.privacy._target_"].astype("string").str.rsplit(".", n=1).str[-1] \
            .fillna(MISSING).astype(object)
    metrics = [c for c in runs.columns if c.startswith("metrics.") and c != xcol]
    values = pd.DataFrame(runs[metrics].to_numpy(dtype="float64"), index=runs.index, columns=metrics)
    work = pd.concat([work, values], axis=1)  # two consolidated blocks, however fragmented ``runs`` is
    key_columns = (*group_names, *([] if x_is_metric else [short(xcol)]), *(display[c] for c in shown))
    return Prepared(work=work, x=xcol, x_is_metric=x_is_metric, x_numeric=x_numeric,
                    group_names=tuple(group_names), extras=tuple(display[c] for c in extras),
                    shown=tuple(display[c] for c in shown), key_columns=key_columns,
                    setting_params=tuple(setting_params),
                    shown_sources=tuple(c for c in shown))


# ---------------------------------------------------------------------------------------------- baseline
@dataclass(frozen=True)
class Baseline:
    """Which runs are the no-privacy reference, and the rule that picked them (stated in captions)."""

    mask: pd.Series | None  # per run of Prepared.work; None: no baseline
    rule: str


def _equals(values: pd.Series, target: Any) -> pd.Series:
    numeric = as_numeric(values)
    try:
        number = float(target)
    except (TypeError, ValueError):
        number = None
    if numeric is not None and number is not None:
        return numeric == number
    return values.astype("string").fillna(MISSING) == str(target)


def _is_no_privacy(runs: pd.DataFrame) -> pd.Series | None:
    col = "params.privacy._target_"
    if col not in runs.columns:
        return None
    mask = runs[col].astype("string").str.rsplit(".", n=1).str[-1] == NO_PRIVACY
    mask = mask.fillna(False).astype(bool)
    return mask if mask.any() else None


def choose_baseline(runs: pd.DataFrame, prep: Prepared, baseline: Any = None) -> Baseline:
    """The baseline runs.

    ``baseline``: ``None`` = automatic: x == 0 if some run has it, else x == inf (epsilon = inf is no privacy),
    else the runs whose treatment is ``privrec.privacy.NoPrivacy``; when x is a metric, the first swept
    ``privacy.*`` param (alphabetically) with a value 0 (else inf) takes x's place. Else none.
    ``False`` / ``"none"``: no baseline. ``"param=value"``: the runs where that param (or config group, by class
    name: ``privacy=NoPrivacy``) has that value. Any other value: the runs where x equals it.
    """
    if baseline is False or (isinstance(baseline, str) and baseline.strip().lower() in ("none", "off", "")):
        return Baseline(None, "none")
    if baseline is None:
        candidates = [prep.x] if not prep.x_is_metric else \
            sorted(c for c in prep.setting_params if c.startswith("params.privacy."))
        for col in candidates:
            numeric = as_numeric(runs[col]) if col.startswith("params.") else None
            if numeric is None:
                continue
            for no_privacy, text in ((0.0, "0"), (math.inf, "inf")):
                mask = numeric == no_privacy
                if mask.any():
                    return Baseline(mask, f"{short(col)} = {text}")
        mask = _is_no_privacy(runs)
        if mask is not None:
            return Baseline(mask, f"privacy = {NO_PRIVACY}")
        return Baseline(None, "none")
    if isinstance(baseline, str) and "=" in baseline:
        name, _, value = (s.strip() for s in baseline.partition("="))
        labels, _source = group_labels(runs, name)
        mask = _equals(labels, value)
        if not mask.any():
            values = sorted(map(str, labels.unique()))
            raise ConfigError(f"baseline {baseline!r} must match some runs; got no run with {name} = {value}. "
                              f"Values of {name}: {', '.join(values)}.")
        return Baseline(mask, f"{short(name)} = {value}")
    if prep.x_is_metric:
        raise ConfigError(f"baseline must be 'param=value' when x is a metric ({prep.x_name}); got {baseline!r}.")
    mask = _equals(runs[prep.x], baseline)
    if not mask.any():
        values = sorted(map(str, runs[prep.x].astype("string").fillna(MISSING).unique()))
        raise ConfigError(f"baseline must be a value of {prep.x_name} in these runs; got {baseline!r}. "
                          f"Values: {', '.join(values)}.")
    return Baseline(mask, f"{prep.x_name} = {baseline}")


def match_columns(prep: Prepared) -> list[str]:
    """Columns that pair a setting with its baseline: the group labels and the shown params outside ``privacy``
    (a baseline differs from the treated settings in its privacy params only)."""
    return [*prep.group_names, *(name for name, source in zip(prep.shown, prep.shown_sources, strict=True)
                                 if not source.startswith("params.privacy."))]
