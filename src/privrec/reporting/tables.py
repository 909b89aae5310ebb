"""The results table: per setting mean ± 95% CI over seeds, relative cost and a paired test vs the baseline.

Rendered as Markdown (plain string formatting, pipe table with a pandoc-style ``Table:`` caption) and as a
LaTeX ``table`` with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from privrec.reporting._select import (
    MISSING,
    Baseline,
    Prepared,
    as_numeric,
    check_runs,
    choose_baseline,
    match_columns,
    prepare,
    resolve_metric,
    short,
)
from privrec.reporting.stats import compare_to_baseline, summarize_prepared

__all__ = ["table"]


def table(runs: pd.DataFrame, *, x: str, y: str, group: str | Sequence[str] | None = "model",
          baseline: Any = None, measures: Sequence[str] = ()) -> tuple[str, str, pd.DataFrame]:
    """``(markdown, latex, frame)`` of one row per setting.

    ``frame`` columns: ``_setting``, ``_line``, the key columns (group names, x when it is a param, other
    swept params), ``x`` (numeric when possible; the mean when x is a metric, with ``x_ci95``), ``n`` (seeds),
    ``y_mean``, ``y_sd``, ``y_ci95``, ``<measure>_mean`` / ``_ci95``, ``is_baseline``, ``baseline_mean``,
    ``rel_cost`` = (baseline − mean) / baseline, ``p_value`` (paired t-test over seeds vs the baseline, NaN with
    fewer than 2 pairs) and ``n_pairs``. ``frame.attrs`` holds ``x``, ``y``, ``baseline_rule`` and ``caption``.
    The baseline rule (``baseline``) is documented in :func:`privrec.reporting._select.choose_baseline`.
    """
    runs = check_runs(runs)
    prep = prepare(runs, x=x, group=group)
    ycol = resolve_metric(runs, y)
    mcols = [resolve_metric(runs, m, role="measure") for m in measures]
    base = choose_baseline(runs, prep, baseline)
    return render(prep, ycol, mcols, base)


def build_frame(prep: Prepared, ycol: str, mcols: Sequence[str], base: Baseline) -> pd.DataFrame:
    summary = summarize_prepared(prep, ycol, mcols)
    compared = compare_to_baseline(prep, ycol, base)
    frame = summary.join(compared, on="_setting")
    # order: line, baseline first, then the shown params (numerically when they are numbers), then x
    sort = {"_nb": ~frame["is_baseline"].astype(bool)}
    for i, col in enumerate(c for c in prep.shown if c not in prep.extras):
        numeric = as_numeric(frame[col])
        sort[f"_s{i}"] = numeric if numeric is not None else frame[col].astype(str)
    sort["_sx"] = frame["x"] if prep.x_numeric else frame["x"].astype(str)
    return frame.assign(**sort).sort_values(["_line", *sort], kind="stable", na_position="first") \
        .drop(columns=list(sort)).reset_index(drop=True)


def render(prep: Prepared, ycol: str, mcols: Sequence[str], base: Baseline) -> tuple[str, str, pd.DataFrame]:
    frame = build_frame(prep, ycol, mcols, base)
    y = short(ycol)
    caption = _caption(prep, y, base)
    frame.attrs.update(x=prep.x_name, y=y, baseline_rule=base.rule, caption=caption)
    with_baseline = base.mask is not None

    headers = [*prep.group_names, *prep.shown, prep.x_name, "n", y, *(short(m) for m in mcols)]
    numeric = [False] * len(prep.group_names) + [as_numeric(frame[c]) is not None for c in prep.shown]
    numeric += [prep.x_numeric, True, True] + [True] * len(mcols)
    if with_baseline:
        headers += ["rel. cost", "p"]
        numeric += [True, True]
    # (markdown, latex) per cell, column-major
    columns = [[(v, _tex(v)) for v in frame[name].astype(str)] for name in (*prep.group_names, *prep.shown)]
    if prep.x_is_metric:
        columns.append(_mean_ci_cells(frame["x"], frame["x_ci95"]))
    else:
        columns.append([(v, _tex(v)) for v in frame[prep.x_name].astype(str)])
    columns.append([(str(int(n)), str(int(n))) for n in frame["n"]])
    columns.append(_mean_ci_cells(frame["y_mean"], frame["y_ci95"]))
    columns.extend(_mean_ci_cells(frame[f"{short(m)}_mean"], frame[f"{short(m)}_ci95"]) for m in mcols)
    if with_baseline:
        columns.append([_rel_cell(r, b) for r, b in zip(frame["rel_cost"], frame["is_baseline"], strict=True)])
        columns.append([_p_cell(p, b) for p, b in zip(frame["p_value"], frame["is_baseline"], strict=True)])
    rows = list(zip(*columns, strict=True)) if columns else []
    markdown = _markdown(headers, numeric, rows, caption)
    latex = _latex(headers, numeric, rows, caption, frame["_line"].tolist())
    return markdown, latex, frame


# ---------------------------------------------------------------------------------------------- cells
def _decimals(values: pd.Series) -> int:
    finite = np.abs(values.to_numpy(dtype=np.float64))
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if finite.size == 0:
        return 4
    return int(min(6, max(0, 3 - math.floor(math.log10(finite.max())))))


def _mean_ci_cells(means: pd.Series, cis: pd.Series) -> list[tuple[str, str]]:
    d = _decimals(means)
    cells = []
    for m, c in zip(means, cis, strict=True):
        if not np.isfinite(m):
            cells.append(("n/a", "n/a"))
        elif np.isfinite(c):
            cells.append((f"{m:.{d}f} ± {c:.{d}f}", f"${m:.{d}f} \\pm {c:.{d}f}$"))
        else:
            cells.append((f"{m:.{d}f}", f"${m:.{d}f}$"))
    return cells


def _rel_cell(rel: float, is_baseline: bool) -> tuple[str, str]:
    if is_baseline:
        return "baseline", "baseline"
    if not np.isfinite(rel):
        return "n/a", "n/a"
    text = f"{100 * rel:+.1f}%"
    return text, f"${100 * rel:+.1f}\\%$"


def _p_cell(p: float, is_baseline: bool) -> tuple[str, str]:
    if is_baseline:
        return MISSING, "---"
    if not np.isfinite(p):
        return "n/a", "n/a"
    if p < 0.001:
        return "<0.001", "$<0.001$"
    return f"{p:.3f}", f"{p:.3f}"


def _caption(prep: Prepared, y: str, base: Baseline) -> str:
    text = (f"{y} by setting: mean ± 95% CI half-width over seeds (t-distribution with n−1 degrees of freedom; "
            f"n = number of seeds; no interval for n = 1)")
    if prep.x_is_metric:
        text += f"; {prep.x_name} likewise"
    if base.mask is None:
        return text + ". No baseline: relative cost and tests omitted."
    matched = ", ".join(match_columns(prep)) or "all runs"
    return (text + f". Baseline: {base.rule} (matched on {matched}). Relative cost = (baseline − mean) / baseline "
            f"(positive: lower {y} than the baseline). p: two-sided paired t-test (as scipy.stats.ttest_rel) of the "
            f"per-seed values against the baseline's, over the seeds both have; n/a with fewer than 2 pairs.")


# ---------------------------------------------------------------------------------------------- render
def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _markdown(headers: list[str], numeric: list[bool], rows: list[tuple[tuple[str, str], ...]],
              caption: str) -> str:
    head = "| " + " | ".join(_md_escape(h) for h in headers) + " |"
    rule = "|" + "|".join("---:" if n else ":---" for n in numeric) + "|"
    body = ["| " + " | ".join(_md_escape(cell[0]) for cell in row) + " |" for row in rows]
    return "\n".join([head, rule, *body, "", f"Table: {caption}", ""])


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "---", "−": "--", "±": r"$\pm$"}


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def _latex(headers: list[str], numeric: list[bool], rows: list[tuple[tuple[str, str], ...]], caption: str,
           lines: list[str]) -> str:
    spec = "".join("r" if n else "l" for n in numeric)
    out = [r"\begin{table}[tbp]", r"\centering", rf"\caption{{{_tex(caption)}}}", r"\label{tab:privrec-report}",
           rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(_tex(h) for h in headers) + r" \\", r"\midrule"]
    previous = None
    for row, line in zip(rows, lines, strict=True):
        if previous is not None and line != previous:
            out.append(r"\addlinespace")
        out.append(" & ".join(cell[1] for cell in row) + r" \\")
        previous = line
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)
