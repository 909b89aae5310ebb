"""Record finished runs straight into an MLflow SQLite store, without importing MLflow.

Importing MLflow and opening its SQL store costs 4-5 s of CPU on the project's machine (SQLAlchemy, alembic,
MLflow's own package), more than a whole ML-100K experiment; a sweep paid it in every worker. Recording a
finished run is, however, only a handful of rows in six tables of a schema MLflow itself created. This module
writes exactly the rows MLflow's ``SqlAlchemyStore`` writes for ``create_run`` + ``log_batch`` +
``set_terminated`` (same columns, same metric sanitising, same artifact layout), with the standard library's
``sqlite3``, in **one transaction**: a run appears complete and terminated, or not at all (never RUNNING).

It is used only when it is safe, otherwise the caller records through MLflow (:func:`open_store` says why
not):

- the tracking URI is a local ``sqlite:///`` file that MLflow has already initialised (``alembic_version``
  present); creating a store (alembic migrations) is always left to MLflow;
- every table has the columns written here and no other required column, so a future MLflow schema that
  needs more falls back instead of being written wrongly;
- the experiment exists (MLflow creates experiments), is active, and stores artifacts on the local file system.

``tests/tracking/test_sqlite_store.py`` records the same run through MLflow and through this module and checks
that MLflow reads both back identically (params, metrics including nan/inf, tags, status, times, artifacts,
search filters).
"""

from __future__ import annotations

import math
import os
import posixpath
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

__all__ = ["FastPathUnavailable", "RunNotFound", "SqliteReadClient", "SqliteRunStore", "open_store", "read_client",
           "sqlite_path"]

MAX_PARAM_VALUE = 6000  # MLflow's MAX_PARAM_VAL_LENGTH; longer values are truncated (as privrec always did)
MAX_TAG_VALUE = 8000  # MLflow's MAX_TAG_VAL_LENGTH
MAX_KEY = 250  # MLflow's MAX_ENTITY_KEY_LENGTH
_FLOAT_MAX = 1.7976931348623157e308  # MLflow stores +-inf as +-max float (SQL has no infinity)
_KEY_RULE = re.compile(r"^[/\w.\- :]*$")  # MLflow's validate_param_and_metric_name (POSIX)

# Columns written per table. A store qualifies when each table has at least these columns and every other
# column of it is nullable or has a default.
_WRITES: dict[str, frozenset[str]] = {
    "runs": frozenset({"run_uuid", "name", "source_type", "source_name", "entry_point_name", "user_id", "status",
                       "start_time", "end_time", "source_version", "lifecycle_stage", "artifact_uri",
                       "experiment_id", "deleted_time"}),
    "tags": frozenset({"key", "value", "run_uuid"}),
    "params": frozenset({"key", "value", "run_uuid"}),
    "metrics": frozenset({"key", "value", "timestamp", "run_uuid", "step", "is_nan"}),
    "latest_metrics": frozenset({"key", "value", "timestamp", "step", "is_nan", "run_uuid"}),
}
_READS: dict[str, frozenset[str]] = {
    "experiments": frozenset({"experiment_id", "name", "artifact_location", "lifecycle_stage"}),
}
_RUN_NAME_TAG = "mlflow.runName"
_PARENT_TAG = "mlflow.parentRunId"
_USER_TAG = "mlflow.user"


class FastPathUnavailable(RuntimeError):
    """The store cannot be written directly; record through MLflow instead. The message says why."""


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URI; None for anything else
    (other databases, in-memory SQLite, URIs with query options)."""
    if not uri.startswith("sqlite:///") or "?" in uri:
        return None
    path = uri.removeprefix("sqlite:///")
    return Path(path) if path and path != ":memory:" else None


def _artifact_dir(location: str | None) -> Path | None:
    """Local directory of an experiment's artifact location (plain absolute path or ``file:`` URI)."""
    if not location:
        return None
    if location.startswith("file:"):
        parsed = urlparse(location)
        if parsed.netloc not in ("", "localhost"):
            return None
        location = unquote(parsed.path)
    elif re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", location):  # s3:, mlflow-artifacts:, dbfs:, ...
        return None
    path = Path(location)
    return path if path.is_absolute() else None


def _check_key(key: str, kind: str) -> str:
    """MLflow's rules for param / metric / tag names (it would reject the same keys)."""
    norm = posixpath.normpath(key)
    if (not key or len(key) > MAX_KEY or not _KEY_RULE.match(key) or norm != key or norm == "."
            or norm.startswith(("..", "/"))):
        raise ValueError(f"MLflow {kind} names must be 1-{MAX_KEY} characters of letters, digits, '_-./: ' "
                         f"and not path-like; got {key!r}.")
    return key


def _metric_row(value: float) -> tuple[float, int]:
    """MLflow's sanitising: nan is stored as 0 with is_nan=1, +-inf as +-max float."""
    value = float(value)
    if math.isnan(value):
        return 0.0, 1
    if math.isinf(value):
        return (_FLOAT_MAX if value > 0 else -_FLOAT_MAX), 0
    return value, 0


@dataclass(frozen=True)
class _Experiment:
    experiment_id: int
    artifact_location: str  # as stored (plain path or file: URI); run artifact URIs extend it
    artifact_dir: Path


class SqliteRunStore:
    """Direct writer for one MLflow SQLite store; construct with :meth:`open` (raises
    :class:`FastPathUnavailable` when the store does not qualify)."""

    def __init__(self, path: Path, experiment: _Experiment) -> None:
        self.path = path
        self._experiment = experiment

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, uri: str, experiment: str) -> SqliteRunStore:
        path = sqlite_path(uri)
        if path is None:
            raise FastPathUnavailable(f"tracking URI {uri!r} is not a local sqlite:/// file")
        if not path.is_file():
            raise FastPathUnavailable(f"store {path} does not exist yet (MLflow creates its schema)")
        with closing(cls._connect(path)) as con:
            schema = _schema(con, ["alembic_version", *_WRITES, *_READS])
            if "alembic_version" not in schema:
                raise FastPathUnavailable(f"store {path} has no MLflow schema yet")
            for table, needed in (_WRITES | _READS).items():
                if table not in schema:
                    raise FastPathUnavailable(f"store {path} has no table {table!r}")
                columns = schema[table]
                missing = needed - set(columns)
                if missing:
                    raise FastPathUnavailable(f"table {table!r} lacks columns {sorted(missing)}")
                if table in _WRITES:
                    # PRAGMA row: (cid, name, type, notnull, default, pk)
                    required = {name for name, row in columns.items() if row[3] and row[4] is None}
                    unknown = required - needed
                    if unknown:
                        raise FastPathUnavailable(f"table {table!r} requires unknown columns {sorted(unknown)}")
            found = cls._find_experiment(con, experiment, workspace="workspace" in schema["experiments"])
        return cls(path, found)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        # Autocommit mode; transactions are opened explicitly with BEGIN IMMEDIATE (one writer at a time,
        # waiting up to the timeout for other jobs of a sweep, as MLflow's own busy timeout does).
        return sqlite3.connect(str(path), timeout=60.0, isolation_level=None)

    @staticmethod
    def _find_experiment(con: sqlite3.Connection, name: str, *, workspace: bool) -> _Experiment:
        query = "SELECT experiment_id, artifact_location, lifecycle_stage FROM experiments WHERE name = ?"
        if workspace:  # MLflow 3.x workspaces: privrec writes to the default one only
            query += " AND workspace = 'default'"
        rows = con.execute(query, (name,)).fetchall()
        if not rows:
            raise FastPathUnavailable(f"experiment {name!r} does not exist yet (MLflow creates experiments)")
        experiment_id, location, stage = rows[0]
        if stage != "active":
            raise FastPathUnavailable(f"experiment {name!r} is {stage}")
        artifact_dir = _artifact_dir(location)
        if artifact_dir is None:
            raise FastPathUnavailable(f"experiment {name!r} stores artifacts outside the local file system")
        return _Experiment(int(experiment_id), location, artifact_dir)

    # ------------------------------------------------------------------ writing
    def record_run(
        self,
        *,
        run_name: str,
        params: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        texts: Mapping[str, str] | None = None,
        paths: Iterable[tuple[str, str | None]] = (),
        status: str = "FINISHED",
        start_time: int | None = None,
        end_time: int | None = None,
        parent_run_id: str | None = None,
    ) -> str:
        """Write a whole run (rows and artifacts) and return its id. ``status`` ``RUNNING`` leaves it open
        (for a sweep's parent run, closed by :meth:`terminate`)."""
        if status not in ("FINISHED", "FAILED", "KILLED", "RUNNING"):
            raise ValueError(f"run status must be FINISHED, FAILED, KILLED or RUNNING; got {status!r}.")
        now = int(time.time() * 1000)
        start_time = int(start_time if start_time is not None else now)
        end_time = None if status == "RUNNING" else int(end_time if end_time is not None else now)
        all_tags = {_RUN_NAME_TAG: run_name} | dict(tags or {})
        if parent_run_id:
            all_tags[_PARENT_TAG] = parent_run_id
        tag_rows = [(_check_key(k, "tag"), str(v)[:MAX_TAG_VALUE]) for k, v in all_tags.items()]
        param_rows = [(_check_key(k, "param"), str(v)[:MAX_PARAM_VALUE]) for k, v in (params or {}).items()]
        metric_rows = [(_check_key(k, "metric"), *_metric_row(v)) for k, v in (metrics or {}).items()]

        run_id = uuid.uuid4().hex
        run_dir = self._experiment.artifact_dir / run_id
        artifacts = run_dir / "artifacts"
        try:
            _write_artifacts(artifacts, texts or {}, paths)
            with closing(self._connect(self.path)) as con:
                con.execute("BEGIN IMMEDIATE")
                try:
                    (stage,) = con.execute("SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?",
                                           (self._experiment.experiment_id,)).fetchone() or ("missing",)
                    if stage != "active":
                        raise FastPathUnavailable(f"experiment {self._experiment.experiment_id} is {stage}")
                    con.execute(
                        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, "
                        "status, start_time, end_time, source_version, lifecycle_stage, artifact_uri, "
                        "experiment_id, deleted_time) VALUES (?, ?, 'UNKNOWN', '', '', ?, ?, ?, ?, '', 'active', "
                        "?, ?, NULL)",
                        (run_id, run_name, all_tags.get(_USER_TAG, "unknown"), status, start_time, end_time,
                         f"{self._experiment.artifact_location.rstrip('/')}/{run_id}/artifacts",
                         self._experiment.experiment_id))
                    con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
                                    [(k, v, run_id) for k, v in tag_rows])
                    con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                                    [(k, v, run_id) for k, v in param_rows])
                    con.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                                    "VALUES (?, ?, ?, ?, 0, ?)", [(k, v, now, run_id, n) for k, v, n in metric_rows])
                    con.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                                    "VALUES (?, ?, ?, 0, ?, ?)", [(k, v, now, n, run_id) for k, v, n in metric_rows])
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing half-written: no rows, no stray files
            raise
        return run_id

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Insert or replace tags of an existing run."""
        rows = [(_check_key(k, "tag"), str(v)[:MAX_TAG_VALUE], run_id) for k, v in tags.items()]
        with closing(self._connect(self.path)) as con:
            con.execute("BEGIN IMMEDIATE")
            con.executemany("INSERT OR REPLACE INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", rows)
            con.execute("COMMIT")

    def children(self, run_id: str) -> list[str]:
        """Statuses of the runs whose parent is ``run_id``."""
        with closing(self._connect(self.path)) as con:
            rows = con.execute("SELECT r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                               "WHERE t.key = ? AND t.value = ? AND r.lifecycle_stage = 'active'",
                               (_PARENT_TAG, run_id)).fetchall()
        return [status for (status,) in rows]

    def terminate(self, run_id: str, status: str, *, end_time: int | None = None) -> None:
        """Set a RUNNING run's final status and end time (MLflow's ``set_terminated``)."""
        if status not in ("FINISHED", "FAILED", "KILLED"):
            raise ValueError(f"run status must be FINISHED, FAILED or KILLED; got {status!r}.")
        with closing(self._connect(self.path)) as con:
            con.execute("BEGIN IMMEDIATE")
            updated = con.execute("UPDATE runs SET status = ?, end_time = ? WHERE run_uuid = ?",
                                  (status, int(end_time or time.time() * 1000), run_id)).rowcount
            con.execute("COMMIT")
        if updated != 1:
            raise FastPathUnavailable(f"run {run_id} is not in store {self.path}")


def _write_artifacts(root: Path, texts: Mapping[str, str], paths: Iterable[tuple[str, str | None]]) -> None:
    """Artifacts as MLflow's local repository lays them out: ``log_text`` files at their relative path, a
    logged directory's contents under ``artifact_path``, a logged file under ``artifact_path/<name>``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        target = _inside(root, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for source, artifact_path in paths:
        src = Path(source)
        dest = _inside(root, artifact_path) if artifact_path else root
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / src.name)


def _inside(root: Path, relative: str) -> Path:
    norm = posixpath.normpath(relative)
    if norm.startswith(("..", "/")) or norm == ".":
        raise ValueError(f"artifact paths must stay inside the run's artifact folder; got {relative!r}.")
    return root / norm


def _schema(con: sqlite3.Connection, tables: Iterable[str]) -> dict[str, dict[str, tuple]]:
    """Those of ``tables`` that exist: column name -> ``PRAGMA table_info`` row."""
    present = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return {t: {row[1]: row for row in con.execute(f'PRAGMA table_info("{t}")')} for t in tables if t in present}


def _mlflow_api_forced() -> bool:
    return os.environ.get("PRIVREC_MLFLOW_API", "").lower() in ("1", "true", "yes")


def open_store(uri: str, experiment: str) -> tuple[SqliteRunStore | None, str | None]:
    """``(store, None)`` when runs for ``experiment`` at ``uri`` can be written directly, else
    ``(None, why not)``. ``PRIVREC_MLFLOW_API=1`` always answers no (every run then goes through MLflow)."""
    if _mlflow_api_forced():
        return None, "PRIVREC_MLFLOW_API is set"
    try:
        return SqliteRunStore.open(uri, experiment), None
    except FastPathUnavailable as exc:
        return None, str(exc)
    except sqlite3.Error as exc:
        return None, f"store unreadable: {exc}"


# ---------------------------------------------------------------------------------------------- reading
class RunNotFound(LookupError):
    """No active run with that id."""

    error_code = "RESOURCE_DOES_NOT_EXIST"  # as MLflow's exception says it


_TAG_FILTER = re.compile(r"^tags\.`?([^`=\s]+)`?\s*=\s*'([^']*)'$")
_ORDER = {"attributes.start_time ASC": "ASC", "attributes.start_time DESC": "DESC"}


def _ns(**kwargs):
    from types import SimpleNamespace

    return SimpleNamespace(**kwargs)


class _Page(list):
    def __init__(self, items, token):
        super().__init__(items)
        self.token = token


class SqliteReadClient:
    """The few :class:`mlflow.tracking.MlflowClient` calls privrec's reports make (experiments by name or id,
    run search filtered by one tag and ordered by start time, a run by id, logging a file artifact), answered
    from the SQLite store with ``sqlite3``: ``privrec report`` then needs no MLflow import (~4 s). Results
    have the same shape and content as MLflow's (``tests/tracking/test_query.py`` runs every report test
    against both); built by :func:`read_client`, which says None for stores it cannot read this way."""

    def __init__(self, path: Path, uri: str, workspace: bool) -> None:
        self.path, self.uri, self._workspace = path, uri, workspace

    def _rows(self, sql: str, args: tuple = ()) -> list[tuple]:
        with closing(_read_only(self.path)) as con:
            return con.execute(sql, args).fetchall()

    # ------------------------------------------------------------------ experiments
    def _experiments(self, where: str, args: tuple) -> list:
        extra = " AND workspace = 'default'" if self._workspace else ""
        rows = self._rows("SELECT experiment_id, name, artifact_location, lifecycle_stage FROM experiments "
                          f"WHERE {where}{extra} ORDER BY experiment_id", args)
        return [_ns(experiment_id=str(i), name=n, artifact_location=loc, lifecycle_stage=stage)
                for i, n, loc, stage in rows]

    def get_experiment_by_name(self, name: str):
        found = self._experiments("name = ?", (name,))
        return found[0] if found else None

    def get_experiment(self, experiment_id: str):
        found = self._experiments("experiment_id = ?", (int(experiment_id),))
        if not found:
            raise LookupError(f"no experiment {experiment_id}")
        return found[0]

    def search_experiments(self, max_results: int = 1000, page_token: str | None = None) -> _Page:
        start = int(page_token or 0)
        found = self._experiments("lifecycle_stage = 'active'", ())
        page = found[start: start + max_results]
        return _Page(page, str(start + max_results) if start + max_results < len(found) else None)

    # ------------------------------------------------------------------ runs
    def search_runs(self, experiment_ids: list[str], filter_string: str = "", max_results: int = 1000,
                    order_by: list[str] | None = None, page_token: str | None = None) -> _Page:
        where = [f"r.experiment_id IN ({','.join('?' * len(experiment_ids))})", "r.lifecycle_stage = 'active'"]
        args: list = [int(i) for i in experiment_ids]
        if filter_string.strip():
            match = _TAG_FILTER.match(filter_string.strip())
            if match is None:
                raise ValueError(f"filter must be tags.`KEY` = 'VALUE' or empty; got {filter_string!r}.")
            where.append("r.run_uuid IN (SELECT run_uuid FROM tags WHERE key = ? AND value = ?)")
            args += [match.group(1), match.group(2)]
        direction = "DESC"
        for clause in order_by or []:
            if clause not in _ORDER:
                raise ValueError(f"order_by must be one of {sorted(_ORDER)}; got {clause!r}.")
            direction = _ORDER[clause]
        start = int(page_token or 0)
        rows = self._rows(f"SELECT r.run_uuid FROM runs r WHERE {' AND '.join(where)} "
                          f"ORDER BY r.start_time {direction}, r.run_uuid LIMIT ? OFFSET ?",
                          (*args, max_results + 1, start))
        ids = [r[0] for r in rows[:max_results]]
        return _Page(self._runs(ids), str(start + max_results) if len(rows) > max_results else None)

    def get_run(self, run_id: str):
        runs = self._runs([run_id])
        if not runs:
            raise RunNotFound(f"Run with id={run_id} not found")
        return runs[0]

    def _runs(self, ids: list[str]) -> list:
        out = []
        for k in range(0, len(ids), 500):
            chunk = ids[k:k + 500]
            marks = ",".join("?" * len(chunk))
            info = {r[0]: r for r in self._rows(
                "SELECT run_uuid, status, start_time, end_time, experiment_id, lifecycle_stage, artifact_uri, name "
                f"FROM runs WHERE run_uuid IN ({marks}) AND lifecycle_stage = 'active'", tuple(chunk))}
            data = {i: ({}, {}, {}) for i in info}
            for run_id, key, value in self._rows(f"SELECT run_uuid, key, value FROM params WHERE run_uuid IN ({marks})",
                                                 tuple(chunk)):
                data[run_id][0][key] = value
            for run_id, key, value, is_nan in self._rows(
                    f"SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN ({marks})", tuple(chunk)):
                data[run_id][1][key] = math.nan if is_nan else float(value)
            for run_id, key, value in self._rows(f"SELECT run_uuid, key, value FROM tags WHERE run_uuid IN ({marks})",
                                                 tuple(chunk)):
                data[run_id][2][key] = value
            for run_id in chunk:  # in the order asked
                if run_id in info:
                    _, status, start, end, exp, stage, artifact_uri, name = info[run_id]
                    params, metrics, tags = data[run_id]
                    out.append(_ns(info=_ns(run_id=run_id, status=status, start_time=start, end_time=end,
                                            experiment_id=str(exp), lifecycle_stage=stage, artifact_uri=artifact_uri,
                                            run_name=name),
                                   data=_ns(params=params, metrics=metrics, tags=tags)))
        return out

    # ------------------------------------------------------------------ writing a report
    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        """Copy a file into the run's artifact folder (MLflow's layout), or let MLflow do it when the
        artifacts are not on the local file system."""
        root = _artifact_dir(self.get_run(run_id).info.artifact_uri)
        if root is None:
            from mlflow.tracking import MlflowClient

            MlflowClient(self.uri).log_artifact(run_id, local_path, artifact_path=artifact_path)
            return
        _write_artifacts(root, {}, [(local_path, artifact_path)])


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0)


def read_client(uri: str) -> SqliteReadClient | None:
    """A :class:`SqliteReadClient` for an existing local SQLite store with a schema it can read, else None
    (the caller uses MLflow's client; so does everything when ``PRIVREC_MLFLOW_API=1``)."""
    if _mlflow_api_forced():
        return None
    path = sqlite_path(uri)
    if path is None or not path.is_file():
        return None
    wanted = {"alembic_version": set(),
              "experiments": {"experiment_id", "name", "artifact_location", "lifecycle_stage"},
              "runs": {"run_uuid", "status", "start_time", "end_time", "experiment_id", "lifecycle_stage",
                       "artifact_uri", "name"},
              "params": {"run_uuid", "key", "value"}, "tags": {"run_uuid", "key", "value"},
              "latest_metrics": {"run_uuid", "key", "value", "is_nan"}}
    try:
        with closing(_read_only(path)) as con:
            schema = _schema(con, wanted)
    except sqlite3.Error:
        return None
    if any(t not in schema or not cols <= set(schema[t]) for t, cols in wanted.items()):
        return None
    return SqliteReadClient(path, uri, workspace="workspace" in schema["experiments"])
