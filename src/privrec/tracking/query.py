"""Reading runs back from an MLflow store for reports (the only reporting code that touches MLflow).

Every store is read through MLflow's public client. Opening a store first repairs runs that a killed
process left RUNNING (:func:`privrec.tracking.store.repair`), so a killed sweep reads as interrupted.

:func:`load_runs` returns one row per FINISHED run with columns ``run_id``, ``params.<name>`` (strings, as
logged: the flattened resolved config in override syntax) and ``metrics.<name>`` (floats, latest value).
Every user error is a one-line :class:`~privrec.errors.ConfigError` naming what was asked and what exists.
"""

from __future__ import annotations

import gc
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privrec.errors import ConfigError
from privrec.tracking.uri import parse_tracking_uri, resolve_tracking_uri

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from privrec.tracking.uri import StoreURI

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # privrec prints its own one line
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

__all__ = ["RUN_COLUMNS", "SWEEP_TAG", "experiment_id", "load_runs", "log_report_artifacts", "open_client",
           "runs_table", "sweep_parent"]

#: Tag set on a sweep's parent run by :class:`~privrec.tracking.hydra_callback.MlflowSweepCallback`.
SWEEP_TAG = "privrec.sweep"
_PARENT_TAG = "mlflow.parentRunId"
_PAGE = 1000  # runs per search_runs page (MLflow's default; the store refuses more than 50,000)
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# ---------------------------------------------------------------------------------------------- public
def load_runs(tracking_uri: str | None = None, *, experiment: str = "privrec",
              sweep: str | None = None) -> pd.DataFrame:
    """One row per FINISHED run: ``run_id``, ``params.<name>`` (str) and ``metrics.<name>`` (float) columns.

    ``sweep``: ``None`` = every finished run of ``experiment`` except sweep parent runs; ``"latest"`` = the
    children of the most recently started parent run tagged ``privrec.sweep=true``; a run id = the children
    of that parent run (searched in the parent's own experiment, whatever ``experiment`` says).
    Rows are in start order; ``frame.attrs`` holds ``tracking_uri``, ``experiment`` and ``sweep_run_id``.
    """
    import pandas as pd

    uri = resolve_tracking_uri(tracking_uri)
    client = open_client(uri)
    if sweep is None:
        exp = _experiment(client, uri, experiment)
        runs = _search(client, uri, [exp.experiment_id], "")
        runs = [r for r in runs if r.data.tags.get(SWEEP_TAG) != "true"]
        finished = [r for r in runs if r.info.status == "FINISHED"]
        if not finished:
            raise ConfigError(
                f"experiment '{experiment}' must hold at least one FINISHED run to report on; got "
                f"{_status_counts(runs)} at {uri}. Run `privrec run` first."
            )
        parent, parent_id, exp_name = None, None, experiment
    else:
        parent = _parent_run(client, uri, experiment, sweep)
        parent_id = parent.info.run_id
        exp_name = _experiment_name(client, parent.info.experiment_id, experiment)
        runs = _search(client, uri, [parent.info.experiment_id], f"tags.`{_PARENT_TAG}` = '{parent_id}'")
        finished = [r for r in runs if r.info.status == "FINISHED"]
        if not finished:
            raise ConfigError(
                f"sweep {parent_id} must have at least one FINISHED child run to report on; got "
                f"{_status_counts(runs)}. Wait for the sweep to finish or pick another with --sweep RUN_ID."
            )
    params = pd.DataFrame.from_records([r.data.params for r in finished], index=range(len(finished)))
    metrics = pd.DataFrame.from_records([r.data.metrics for r in finished], index=range(len(finished)))
    params = params[sorted(params.columns)].add_prefix("params.").astype(object)
    metrics = metrics[sorted(metrics.columns)].add_prefix("metrics.").astype("float64")
    ids = pd.DataFrame({"run_id": [r.info.run_id for r in finished]})
    frame = pd.concat([ids, params, metrics], axis=1)
    frame.attrs.update(tracking_uri=uri, experiment=exp_name, sweep_run_id=parent_id)
    if parent is not None:
        total = parent.data.tags.get("privrec.jobs_total") or max(
            (r.data.tags.get("privrec.sweep_jobs", "") for r in runs), default="")
        frame.attrs.update(sweep_status=parent.info.status, sweep_finished=len(finished),
                           sweep_total=int(total) if str(total).isdigit() else None,
                           sweep_interrupted=parent.data.tags.get("privrec.interrupted") == "true")
    return frame


#: The first columns of :func:`runs_table`, in this order (then ``params.<name>`` and ``metrics.<name>``).
RUN_COLUMNS = ("run_id", "run_name", "status", "start_time", "end_time", "parent_run_id", "parent_run_name")


def runs_table(tracking_uri: str | None = None, *, experiment: str = "privrec") -> pd.DataFrame:
    """Every run of ``experiment`` whatever its status, sweep parent runs excepted, one row each, oldest first.

    Columns: :data:`RUN_COLUMNS` (``start_time``/``end_time`` as UTC timestamps, ``end_time`` NaT while a run is
    running; ``parent_run_id``/``parent_run_name``: the sweep the run belongs to, else missing), then
    ``params.<name>`` (str, as logged) and ``metrics.<name>`` (float; NaN where a run has no such metric, e.g. a
    FAILED run). A store or an experiment that does not exist yet (nothing was tracked there) gives an empty
    frame with the :data:`RUN_COLUMNS` and one warning, not an error: reading must not create a store.
    """
    import warnings

    import pandas as pd

    from privrec.errors import DataWarning

    uri = resolve_tracking_uri(tracking_uri)
    loc = parse_tracking_uri(uri)
    empty = pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]" if c.endswith("_time") else object)
                          for c in RUN_COLUMNS})
    if loc.sqlite_path is not None and not loc.sqlite_path.is_file():
        warnings.warn(f"no runs: tracking store {uri} does not exist (nothing was tracked there yet).",
                      DataWarning, stacklevel=3)
        return empty
    client = open_client(uri)
    try:
        exp = client.get_experiment_by_name(experiment)
    except Exception as exc:
        raise _unreachable(uri, exc) from exc
    if exp is None or exp.lifecycle_stage != "active":
        there = ", ".join(repr(n) for n in _experiment_names(client)) or "none"
        warnings.warn(f"no runs: experiment '{experiment}' is not in {uri} (experiments there: {there}).",
                      DataWarning, stacklevel=3)
        return empty
    runs = _search(client, uri, [exp.experiment_id], "")
    names = {r.info.run_id: r.info.run_name for r in runs}
    rows = [r for r in runs if r.data.tags.get(SWEEP_TAG) != "true"]
    if not rows:
        return empty
    parent_ids = [r.data.tags.get(_PARENT_TAG) or None for r in rows]

    def when(ms: int | None) -> Any:
        return pd.to_datetime(ms, unit="ms", utc=True) if ms else pd.NaT

    head = pd.DataFrame({
        "run_id": [r.info.run_id for r in rows], "run_name": [r.info.run_name for r in rows],
        "status": [r.info.status for r in rows],
        "start_time": pd.Series([when(r.info.start_time) for r in rows], dtype="datetime64[ns, UTC]"),
        "end_time": pd.Series([when(r.info.end_time) for r in rows], dtype="datetime64[ns, UTC]"),
        "parent_run_id": parent_ids, "parent_run_name": [names.get(p) if p else None for p in parent_ids]},
        columns=list(RUN_COLUMNS))
    params = pd.DataFrame.from_records([r.data.params for r in rows], index=range(len(rows)))
    metrics = pd.DataFrame.from_records([r.data.metrics for r in rows], index=range(len(rows)))
    params = params[sorted(params.columns)].add_prefix("params.").astype(object)
    metrics = metrics[sorted(metrics.columns)].add_prefix("metrics.").astype("float64")
    frame = pd.concat([head, params, metrics], axis=1)
    frame.attrs.update(tracking_uri=uri, experiment=experiment)
    return frame


def sweep_parent(tracking_uri: str | None, experiment: str = "privrec", sweep: str | None = "latest") -> str | None:
    """The run id of the sweep's parent run (``sweep`` as in :func:`load_runs`); ``None`` when ``sweep`` is None."""
    if sweep is None:
        return None
    uri = resolve_tracking_uri(tracking_uri)
    return _parent_run(open_client(uri), uri, experiment, sweep).info.run_id


def experiment_id(tracking_uri: str | None = None, *, experiment: str = "privrec") -> str | None:
    """The id of the active experiment named ``experiment`` in an existing store, ``None`` when it has none
    (``privrec ui``'s landing page). A server must answer ``/health`` first (one line, no retries)."""
    uri = resolve_tracking_uri(tracking_uri)
    if parse_tracking_uri(uri).scheme in ("http", "https"):
        from privrec.tracking.store import _check_server

        _check_server(uri)
    client = open_client(uri)
    try:
        exp = client.get_experiment_by_name(experiment)
    except Exception as exc:
        raise _unreachable(uri, exc) from exc
    return None if exp is None or exp.lifecycle_stage != "active" else str(exp.experiment_id)


def log_report_artifacts(tracking_uri: str | None, run_id: str, paths: Iterable[str | os.PathLike],
                         *, artifact_path: str = "report") -> list[str]:
    """Log each file of ``paths`` under ``artifact_path/`` of run ``run_id``; return the artifact paths."""
    uri = resolve_tracking_uri(tracking_uri)
    client = open_client(uri)
    _get_run(client, uri, run_id, what="run id")
    files = [Path(p) for p in paths]
    missing = [p.name for p in files if not p.is_file()]
    if missing:
        raise ConfigError(f"report artifacts must be existing files; got {len(missing)} missing: "
                          f"{', '.join(missing)}. Write the report first.")
    for path in files:
        client.log_artifact(run_id, str(path), artifact_path=artifact_path)
    return [f"{artifact_path}/{p.name}" for p in files]


# ---------------------------------------------------------------------------------------------- helpers
def open_client(uri: str) -> MlflowClient:
    """MLflow's client for an existing store (a missing SQLite file is an error: reading must not create a
    store), after repairing runs that killed processes left RUNNING."""
    loc = parse_tracking_uri(uri)
    if loc.sqlite_path is not None and not loc.sqlite_path.is_file():
        raise ConfigError(f"tracking store {uri} must exist to report on; got no file at "
                          f"{loc.sqlite_path.resolve()}. Pass --tracking-uri (or set MLFLOW_TRACKING_URI) to the "
                          f"store the runs were logged to.")
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        _repair_all(client, loc)
    except ConfigError:
        raise
    except Exception as exc:
        raise _unreachable(uri, exc) from exc
    return client


def _repair_all(client: MlflowClient, loc: StoreURI) -> None:
    """:func:`~privrec.tracking.store.repair` for every experiment of the store with RUNNING runs."""
    from privrec.tracking.mlflow_store import MlflowStore
    from privrec.tracking.store import repair

    experiments = {e.experiment_id: e.name for e in client.search_experiments(max_results=_PAGE)}
    if not experiments:
        return
    running = client.search_runs(list(experiments), filter_string="attributes.status = 'RUNNING'",
                                 max_results=_PAGE)
    for exp_id in sorted({r.info.experiment_id for r in running}):
        repair(MlflowStore.from_client(loc, experiments[exp_id], client, exp_id))


def _unreachable(uri: str, exc: BaseException) -> ConfigError:
    detail = (str(exc).strip().splitlines() or [""])[0][:200]
    return ConfigError(f"tracking store {uri} must be reachable; got {type(exc).__name__}"
                       f"{': ' + detail if detail else ''}. Check --tracking-uri / MLFLOW_TRACKING_URI.")


def _experiment(client: MlflowClient, uri: str, name: str) -> Any:
    try:
        exp = client.get_experiment_by_name(name)
    except Exception as exc:
        raise _unreachable(uri, exc) from exc
    if exp is None or exp.lifecycle_stage != "active":
        names = _experiment_names(client)
        raise ConfigError(f"experiment '{name}' must exist in {uri}; got experiments: "
                          f"{', '.join(repr(n) for n in names) or 'none'}. Pass --experiment NAME.")
    return exp


def _experiment_names(client: MlflowClient) -> list[str]:
    names: list[str] = []
    token = None
    while True:
        page = client.search_experiments(max_results=_PAGE, page_token=token)
        names.extend(e.name for e in page)
        token = page.token
        if not token:
            return sorted(names)


def _experiment_name(client: MlflowClient, experiment_id: str, default: str) -> str:
    try:
        return client.get_experiment(experiment_id).name
    except Exception:  # noqa: BLE001 - only a label for the report: any store error keeps the default
        return default


def _search(client: MlflowClient, uri: str, experiment_ids: list[str], filter_string: str) -> list:
    """Every run matching ``filter_string`` (all pages), oldest first.

    The SQL store builds one ORM object per param, metric and tag (~60,000 for 300 runs); the cyclic garbage
    collector, triggered over and over by those allocations, doubled the time, so it is paused meanwhile.
    """
    out: list[Any] = []
    token = None
    collecting = gc.isenabled()
    gc.disable()
    try:
        while True:
            page = client.search_runs(experiment_ids, filter_string=filter_string, max_results=_PAGE,
                                      order_by=["attributes.start_time ASC"], page_token=token)
            out.extend(page)
            token = page.token
            if not token:
                return out
    except Exception as exc:
        raise _unreachable(uri, exc) from exc
    finally:
        if collecting:
            gc.enable()


def _get_run(client: MlflowClient, uri: str, run_id: str, *, what: str, experiment: str | None = None) -> Any:
    if not _RUN_ID.match(str(run_id)):
        raise ConfigError(f"{what} must be an MLflow run id (letters, digits, '-', '_'); got {run_id!r}.")
    try:
        return client.get_run(run_id)
    except Exception as exc:  # MLflow's MlflowException and the SQLite reader's RunNotFound carry this code
        if getattr(exc, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
            raise _unreachable(uri, exc) from exc
    hint = ""
    if experiment is not None:
        try:
            exp = _experiment(client, uri, experiment)
            recent = _search_page(client, uri, exp.experiment_id, f"tags.`{SWEEP_TAG}` = 'true'", n=5)
            hint = (f"; the latest sweeps of experiment '{experiment}' are "
                    f"{', '.join(r.info.run_id for r in recent) or 'none'}")
        except ConfigError:  # the experiment is unknown too: the missing run is the error to report
            pass
    raise ConfigError(f"{what} {run_id!r} must name a run in {uri}; got no such run{hint}.")


def _search_page(client: MlflowClient, uri: str, experiment_id: str, filter_string: str, *, n: int) -> list:
    try:
        return list(client.search_runs([experiment_id], filter_string=filter_string, max_results=n,
                                       order_by=["attributes.start_time DESC"]))
    except Exception as exc:
        raise _unreachable(uri, exc) from exc


def _parent_run(client: MlflowClient, uri: str, experiment: str, sweep: str) -> Any:
    if sweep == "latest":
        exp = _experiment(client, uri, experiment)
        latest = _search_page(client, uri, exp.experiment_id, f"tags.`{SWEEP_TAG}` = 'true'", n=1)
        if not latest:
            raise ConfigError(f"--sweep latest needs a sweep parent run (tag {SWEEP_TAG}=true) in experiment "
                              f"'{experiment}'; got none. Run a sweep (`privrec run -m ...`) or omit --sweep.")
        return latest[0]
    run = _get_run(client, uri, sweep, what="sweep", experiment=experiment)
    parent_of = run.data.tags.get(_PARENT_TAG)
    if parent_of:
        raise ConfigError(f"sweep {sweep} must be a sweep's parent run; got a child run of sweep {parent_of}. "
                          f"Pass --sweep {parent_of}.")
    return run


def _status_counts(runs: list) -> str:
    if not runs:
        return "no runs"
    counts = Counter(r.info.status for r in runs)
    return f"{len(runs)} run{'s' if len(runs) != 1 else ''} (" + ", ".join(
        f"{n} {status}" for status, n in sorted(counts.items())) + ")"
