"""``write_report``: the frontier figure and the results table of a set of runs, written to one folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from privrec.reporting._select import check_runs, choose_baseline, prepare, resolve_metric
from privrec.reporting.figures import draw
from privrec.reporting.tables import render

__all__ = ["write_report"]


def write_report(runs: pd.DataFrame, *, x: str, y: str, out_dir: str | Path,
                 group: str | Sequence[str] | None = "model", panels: str | Sequence[str] | None = None,
                 baseline: Any = None, measures: Sequence[str] = (), logx: bool | None = None,
                 title: str | None = None) -> dict[str, Path]:
    """Write ``frontier.png``, ``frontier.svg``, ``table.md``, ``table.tex`` and ``table.csv`` (the table's
    numbers unrounded) to ``out_dir``; return ``{file name: path}``.

    Arguments as in :func:`~privrec.reporting.frontier` and :func:`~privrec.reporting.table`. Every name is
    checked before anything is written.
    """
    runs = check_runs(runs)
    prep = prepare(runs, x=x, group=group)
    ycol = resolve_metric(runs, y)
    mcols = [resolve_metric(runs, m, role="measure") for m in measures]
    base = choose_baseline(runs, prep, baseline)
    markdown, latex, frame = render(prep, ycol, mcols, base)
    out = Path(out_dir)
    figures = draw(prep, runs, ycol, out_dir=out, panels=panels, logx=logx, title=title)
    paths = {p.name: p for p in figures}
    for name, text in (("table.md", markdown), ("table.tex", latex)):
        (out / name).write_text(text, encoding="utf-8")
        paths[name] = out / name
    frame.drop(columns=["_setting"]).rename(columns={"_line": "line"}).to_csv(out / "table.csv", index=False,
                                                                               float_format="%.6g")
    paths["table.csv"] = out / "table.csv"
    return paths
