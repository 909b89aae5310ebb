"""Reports over many runs: the accuracy-vs-privacy frontier figure and the results table.

Works on a runs frame (one row per run, ``params.<name>`` / ``metrics.<name>`` columns) as returned by
:func:`privrec.tracking.query.load_runs`; imports no MLflow, and matplotlib only when drawing.
"""

from privrec.reporting._select import default_x
from privrec.reporting.figures import frontier, panel_columns
from privrec.reporting.report import write_report
from privrec.reporting.stats import ci95_halfwidth, mean_ci95, summarize
from privrec.reporting.tables import table

__all__ = [
    "ci95_halfwidth",
    "default_x",
    "frontier",
    "mean_ci95",
    "panel_columns",
    "summarize",
    "table",
    "write_report",
]
