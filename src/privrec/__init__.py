"""privrec: what does each level of privacy cost a recommender system, and who pays for it?

From Python (a notebook): :func:`compose` a config as ``privrec run`` does, :func:`run` it (a :class:`RunResult`),
and :func:`load_runs` to read tracked runs back as a DataFrame (see docs/python_api.md).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("privrec")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from privrec.api import RunResult, compose, load_runs, run

__all__ = ["RunResult", "__version__", "compose", "load_runs", "run"]
