"""The accuracy-vs-privacy frontier figure (matplotlib, Agg canvas, PNG and SVG).

One line per group (default: the model class), one point per setting at the mean over seeds, error bars the
95% t-interval over seeds (none for a single seed; horizontal bars too when x is a metric). Settings whose x
cannot be placed on the axis but that are the no-privacy reference (``privacy = NoPrivacy`` runs, which have
no x param, or x = inf such as epsilon = inf) are drawn as dashed horizontal lines in their group's colour.
One panel per population: all users, and when the runs have them the consented / opted-out users (consent
experiments) and the segments of requested user attributes (``panels=["overall", "gender"]``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from privrec.errors import ConfigError, DataWarning
from privrec.reporting._select import (
    NO_PRIVACY,
    Prepared,
    as_numeric,
    check_runs,
    metric_names,
    prepare,
    resolve_metric,
    short,
)
from privrec.reporting.stats import summarize_prepared

__all__ = ["frontier", "panel_columns"]

_POPULATIONS = {"consented": "consented users", "opted_out": "opted-out users"}
_MARKERS = "osD^vP*Xh<>p"


def frontier(runs: pd.DataFrame, *, x: str, y: str, out_dir: str | Path,
             group: str | Sequence[str] | None = "model", panels: str | Sequence[str] | None = None,
             logx: bool | None = None, title: str | None = None, stem: str = "frontier",
             formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Draw the frontier of ``y`` (a metric) against ``x`` (a param or a metric); return the written files.

    ``x``/``y`` accept short names (``privacy.rate``, ``eval/ndcg_at_10``) or full columns
    (``params.privacy.rate``). ``group``: config group(s) or param(s) whose values get their own line
    (``"model"`` -> the class of ``model._target_``; ``None``: one line). ``panels``: ``None`` = all users plus
    consented / opted-out users when present; else a list (or comma-separated string) of ``"overall"``,
    ``"consent"`` and attribute names (``"gender"``: one panel per ``eval/gender/<value>/<metric>``).
    ``logx``: ``None`` = log scale when x is positive and spans at least two decades.
    """
    runs = check_runs(runs)
    prep = prepare(runs, x=x, group=group)
    ycol = resolve_metric(runs, y)
    return draw(prep, runs, ycol, out_dir=out_dir, panels=panels, logx=logx, title=title, stem=stem,
                formats=formats)


def panel_columns(runs: pd.DataFrame, ycol: str, panels: str | Sequence[str] | None = None) -> list[tuple[str, str]]:
    """``(title, metric column)`` per panel (see :func:`frontier`)."""
    explicit = panels is not None
    if panels is None:
        tokens = ["overall", "consent"]
    else:
        raw = panels.split(",") if isinstance(panels, str) else list(panels)
        tokens = list(dict.fromkeys(t.strip() for t in raw if t and t.strip())) or ["overall"]
    name = short(ycol)
    parts = name.split("/")
    if len(parts) != 2:
        if explicit and set(tokens) - {"overall"}:
            raise ConfigError(f"panels need y to be an overall metric (group/name, e.g. eval/ndcg_at_10); "
                              f"got y={name!r}. Drop --panels or pass the overall metric.")
        return [(name, ycol)]
    prefix, metric = parts
    available = set(metric_names(runs))
    segments = sorted(n for n in available if n.count("/") == 3 and n.startswith(f"{prefix}/")
                      and n.endswith(f"/{metric}"))
    attributes = sorted({n.split("/")[1] for n in segments})
    out: list[tuple[str, str]] = []
    for token in tokens:
        if token == "overall":
            out.append(("all users", ycol))
        elif token == "consent":
            found = [(title, f"metrics.{prefix}/{pop}/{metric}") for pop, title in _POPULATIONS.items()
                     if f"{prefix}/{pop}/{metric}" in available]
            if explicit and not found:
                raise ConfigError(f"panels 'consent' needs {prefix}/consented/{metric} or {prefix}/opted_out/"
                                  f"{metric} in these runs; got neither. Use a consent treatment or drop it.")
            out += found
        elif token in attributes:
            out += [(f"{token} = {n.split('/')[2]}", f"metrics.{n}") for n in segments if n.split("/")[1] == token]
        else:
            raise ConfigError(f"panels must be 'overall', 'consent' or a segment attribute of {prefix}/<attribute>/"
                              f"<value>/{metric}; got {token!r}. Attributes: {', '.join(attributes) or 'none'}.")
    return out or [("all users", ycol)]


# ---------------------------------------------------------------------------------------------- drawing
def _reference_settings(prep: Prepared, runs: pd.DataFrame) -> pd.Series:
    """Per setting: why it is drawn as a horizontal reference ("" if it is not one)."""
    work = prep.work
    reason = pd.Series("", index=work.index, dtype=object)
    if prep.x_is_metric or not prep.x_numeric:
        return reason.groupby(work["_setting"]).first()
    xs = work["_x"].to_numpy(dtype=np.float64)
    reason[np.isinf(xs)] = f"{prep.x_name} = inf"
    col = "params.privacy._target_"
    if col in runs.columns:
        nopriv = runs[col].astype("string").str.rsplit(".", n=1).str[-1].eq(NO_PRIVACY).fillna(False).to_numpy(bool)
        reason[np.isnan(xs) & nopriv] = NO_PRIVACY
    return reason.groupby(work["_setting"]).first()


def _category_order(values: pd.Series) -> list[str]:
    unique = list(dict.fromkeys(values.astype(str)))
    numeric = as_numeric(pd.Series(unique))
    if numeric is not None and numeric.notna().all():
        return [u for _, u in sorted(zip(numeric, unique, strict=True))]
    return sorted(unique)


def draw(prep: Prepared, runs: pd.DataFrame, ycol: str, *, out_dir: str | Path,
         panels: str | Sequence[str] | None = None, logx: bool | None = None, title: str | None = None,
         stem: str = "frontier", formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    import matplotlib
    from matplotlib.figure import Figure

    specs = panel_columns(runs, ycol, panels)
    summaries = [(t, summarize_prepared(prep, col)) for t, col in specs]
    summaries = [(t, s) for t, s in summaries if not s.empty] or summaries[:1]
    reference = _reference_settings(prep, runs)
    lines = sorted(prep.work["_line"].unique())
    colors = matplotlib.color_sequences["tab10"]  # the tab10 colormap's colours, as a typed list
    style = {line: (colors[i % len(colors)], _MARKERS[i % len(_MARKERS)]) for i, line in enumerate(lines)}
    categories = None if prep.x_numeric else _category_order(prep.work["_x"])

    n = len(summaries)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    width = max(6.0, 4.4 * ncols + 0.4)
    fig = Figure(figsize=(width, 3.3 * nrows + 1.2), layout="constrained")
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    handles: dict[str, Any] = {}
    dropped = 0
    all_x: list[float] = []
    # the grid may have more axes than panels: the spare ones are hidden below
    for ax, (panel_title, panel) in zip(axes, summaries, strict=False):
        if panel.empty:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            continue
        why = reference.reindex(panel["_setting"]).fillna("").to_numpy()
        summary = panel.assign(_why=why)
        if prep.x_numeric:
            xs = summary["x"].to_numpy(dtype=np.float64)
            finite = np.isfinite(xs)
            dropped = max(dropped, int((~finite & (why == "")).sum()))
            plotted = summary[finite].assign(_px=xs[finite])
            all_x += xs[finite].tolist()
        else:
            assert categories is not None  # set when x is not numeric
            pos = {c: i for i, c in enumerate(categories)}
            plotted = summary.assign(_px=summary["x"].astype(str).map(pos).astype(float))
        for line, line_points in plotted.groupby("_line", sort=True):
            pts = line_points.sort_values("_px")
            color, marker = style[line]
            xerr = pts["x_ci95"].to_numpy(dtype=float) if prep.x_is_metric else None
            h = ax.errorbar(pts["_px"].to_numpy(), pts["y_mean"].to_numpy(), yerr=pts["y_ci95"].to_numpy(dtype=float),
                            xerr=xerr, color=color, marker=marker, markersize=5, capsize=3, linewidth=1.4,
                            elinewidth=0.9, label=line)
            handles.setdefault(line, h)
        refs = summary[why != ""] if prep.x_numeric else summary.iloc[0:0]
        for _, row in refs.iterrows():
            color, _marker = style[row["_line"]]
            label = f"{row['_line']} ({row['_why']})"
            dash = "--" if row["_why"] == NO_PRIVACY else ":"
            h = ax.axhline(row["y_mean"], color=color, linestyle=dash, linewidth=1.2, label=label)
            if np.isfinite(row["y_ci95"]):
                ax.axhspan(row["y_mean"] - row["y_ci95"], row["y_mean"] + row["y_ci95"], color=color, alpha=0.08,
                           linewidth=0)
            handles.setdefault(label, h)
        ax.set_title(panel_title, fontsize=10)
        ax.grid(True, alpha=0.3, linewidth=0.6)
        if categories is not None:
            ax.set_xticks(range(len(categories)), categories)
            ax.set_xlim(-0.5, len(categories) - 0.5)
    if dropped:
        warnings.warn(f"{dropped} setting(s) have no finite {prep.x_name} and are not the no-privacy reference; "
                      f"they are left out of the figure (the table keeps them).", DataWarning, stacklevel=3)
    use_log = logx
    if use_log is None:
        pos_x = [v for v in all_x if v > 0]
        use_log = bool(prep.x_numeric and all_x and len(pos_x) == len(all_x) and max(pos_x) / min(pos_x) >= 100)
    for i, ax in enumerate(axes):
        if i >= n:
            ax.set_visible(False)
            continue
        if use_log:
            ax.set_xscale("log")
        if i // ncols == nrows - 1 or i + ncols >= n:
            ax.set_xlabel(prep.x_name)
        if i % ncols == 0:
            ax.set_ylabel(short(ycol))
    fig.suptitle(title or f"{short(ycol)} vs {prep.x_name}", fontsize=11)
    if handles:
        # as many legend columns as fit the width (8 pt labels: ~0.075 in a character, plus the handle)
        per_column = max(0.075 * max(len(label) for label in handles) + 0.7, 1.0)
        fig.legend(list(handles.values()), list(handles.keys()), loc="outside lower center",
                   ncols=max(1, min(len(handles), int((width - 0.4) // per_column))), fontsize=8, frameon=False,
                   title="points: mean over seeds; bars: 95% CI (t)", title_fontsize=8)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context({"svg.hashsalt": "privrec", "svg.fonttype": "path"}):
        for fmt in formats:
            path = out / f"{stem}.{fmt}"
            metadata = {"Date": None} if fmt in ("svg", "pdf") else None
            fig.savefig(path, format=fmt, dpi=150, metadata=metadata)
            paths.append(path)
            fig.set_layout_engine("none")  # laid out once by the first save; the others reuse the positions
    return paths
