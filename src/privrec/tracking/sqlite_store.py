"""An accelerator for one kind of store: writing run records straight into an MLflow SQLite store with
``sqlite3``, without importing MLflow (whose import costs ~4 s of CPU per process, more than an ML-100K run).

Only used behind :func:`privrec.speed.enabled` and only for a store that MLflow itself created at a schema
revision this module was tested against (:data:`TESTED_REVISIONS`, MLflow's alembic revision); for any other
store, revision or experiment :meth:`SqliteStore.open` returns None and MLflow's client
(:class:`~privrec.tracking.mlflow_store.MlflowStore`, the reference) is used. A record is written as exactly
the rows MLflow's ``SqlAlchemyStore`` writes for ``create_run`` + ``log_batch`` + ``log_inputs`` +
``set_terminated`` (same columns, same metric sanitising, same dataset rows, same artifact layout), in **one
transaction**: a run appears complete and terminated, or not at all.
``tests/tracking/test_store_contract.py`` runs the same contract tests against both stores and compares what
MLflow's client reads back from each.
"""

from __future__ import annotations

import contextlib
import math
import posixpath
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from privrec.tracking.record import InputDataset, RunRecord
from privrec.tracking.store import (
    CONFIG_SHA_TAG,
    INTERRUPTED_TAG,
    LIVENESS_TAG,
    PARENT_TAG,
    SWEEP_KEY_TAG,
    liveness,
)
from privrec.tracking.uri import StoreURI

__all__ = ["TESTED_REVISIONS", "SqliteStore"]

#: MLflow schema revisions (``alembic_version.version_num``) this writer was tested against (MLflow 3.17).
TESTED_REVISIONS = frozenset({"dc11669786a5"})
MAX_PARAM_VALUE = 6000  # MLflow's MAX_PARAM_VAL_LENGTH; longer values are truncated (as privrec always did)
MAX_TAG_VALUE = 8000  # MLflow's MAX_TAG_VAL_LENGTH
MAX_KEY = 250  # MLflow's MAX_ENTITY_KEY_LENGTH
MAX_DATASET_SOURCE = 65535  # MLflow's MAX_DATASET_SOURCE_SIZE
MAX_DATASET_SCHEMA = 1048575  # MLflow's MAX_DATASET_SCHEMA_SIZE
MAX_INPUT_TAG_KEY = 255  # MLflow's MAX_INPUT_TAG_KEY_SIZE
MAX_INPUT_TAG_VALUE = 500  # MLflow's MAX_INPUT_TAG_VALUE_SIZE
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
    "datasets": frozenset({"dataset_uuid", "experiment_id", "name", "digest", "dataset_source_type",
                           "dataset_source", "dataset_schema", "dataset_profile"}),
    "inputs": frozenset({"input_uuid", "source_type", "source_id", "destination_type", "destination_id", "step"}),
    "input_tags": frozenset({"input_uuid", "name", "value"}),
}
_READS: dict[str, frozenset[str]] = {
    "experiments": frozenset({"experiment_id", "name", "artifact_location", "lifecycle_stage"}),
}
_RUN_NAME_TAG = "mlflow.runName"
_USER_TAG = "mlflow.user"


class _UnqualifiedError(RuntimeError):
    """The store does not qualify for direct writing (the message says why)."""


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


class SqliteStore:
    """Direct writer for one experiment of one MLflow SQLite store; construct with :meth:`open`."""

    accelerated = True

    def __init__(self, loc: StoreURI, path: Path, experiment_name: str, experiment: _Experiment) -> None:
        self.loc = loc
        self.uri = loc.uri
        self.path = path
        self.experiment = experiment_name
        self._experiment = experiment

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, loc: StoreURI, experiment: str) -> SqliteStore | None:
        """The writer, or None when the store does not qualify (then MLflow's client is used)."""
        try:
            return cls._open(loc, experiment)
        except (_UnqualifiedError, sqlite3.Error):
            return None

    @classmethod
    def _open(cls, loc: StoreURI, experiment: str) -> SqliteStore:
        path = loc.sqlite_path
        if path is None or not path.is_file():
            raise _UnqualifiedError("not an existing local SQLite file")
        with closing(cls._connect(path)) as con:
            schema = _schema(con, ["alembic_version", *_WRITES, *_READS])
            if "alembic_version" not in schema:
                raise _UnqualifiedError("no MLflow schema yet")
            revisions = {row[0] for row in con.execute("SELECT version_num FROM alembic_version")}
            if not revisions or not revisions <= TESTED_REVISIONS:
                raise _UnqualifiedError(f"schema revision {sorted(revisions)} was not tested")
            for table, needed in (_WRITES | _READS).items():
                columns = schema.get(table)
                if columns is None or needed - set(columns):
                    raise _UnqualifiedError(f"table {table!r} lacks columns")
                if table in _WRITES:
                    # PRAGMA row: (cid, name, type, notnull, default, pk)
                    required = {name for name, row in columns.items() if row[3] and row[4] is None}
                    if required - needed:
                        raise _UnqualifiedError(f"table {table!r} requires unknown columns")
            found = cls._find_experiment(con, experiment, workspace="workspace" in schema["experiments"])
        return cls(loc, path, experiment, found)

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
            raise _UnqualifiedError("the experiment does not exist yet (MLflow creates experiments)")
        experiment_id, location, stage = rows[0]
        if stage != "active":
            raise _UnqualifiedError("the experiment is not active")
        artifact_dir = _artifact_dir(location)
        if artifact_dir is None:
            raise _UnqualifiedError("the experiment stores artifacts outside the local file system")
        return _Experiment(int(experiment_id), location, artifact_dir)

    # ------------------------------------------------------------------ the RunStore interface
    def write(self, record: RunRecord, *, parent_run_id: str | None = None) -> str:
        return self._insert_run(run_name=record.run_name, params=record.params, metrics=record.metrics,
                                tags=record.tags, texts=record.artifacts, status=record.status,
                                start_time=record.start_time, end_time=record.end_time, parent_run_id=parent_run_id,
                                datasets=record.datasets)

    def start_parent(self, *, run_name: str, tags: Mapping[str, str]) -> str:
        return self._insert_run(run_name=run_name, tags={**tags, LIVENESS_TAG: liveness()}, status="RUNNING")

    def reopen_parent(self, run_id: str) -> None:
        with self._transaction() as con:
            con.execute("UPDATE runs SET status = 'RUNNING', end_time = NULL WHERE run_uuid = ?", (run_id,))
            self._set_tags(con, run_id, {LIVENESS_TAG: liveness(), INTERRUPTED_TAG: "false"})

    def finish_parent(self, run_id: str, status: str, tags: Mapping[str, str]) -> None:
        self._terminate([run_id], status, tags)

    def children(self, parent_run_id: str) -> list[tuple[str, str | None]]:
        with closing(self._connect(self.path)) as con:
            rows = con.execute(
                "SELECT r.status, s.value FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                "LEFT JOIN tags s ON s.run_uuid = r.run_uuid AND s.key = ? "
                "WHERE t.key = ? AND t.value = ? AND r.lifecycle_stage = 'active'",
                (CONFIG_SHA_TAG, PARENT_TAG, parent_run_id)).fetchall()
        return [(status, sha) for status, sha in rows]

    def find_sweep(self, sweep_key: str) -> tuple[str, str] | None:
        with closing(self._connect(self.path)) as con:
            row = con.execute(
                "SELECT r.run_uuid, r.status FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                "WHERE t.key = ? AND t.value = ? AND r.experiment_id = ? AND r.lifecycle_stage = 'active' "
                "ORDER BY r.start_time DESC LIMIT 1",
                (SWEEP_KEY_TAG, sweep_key, self._experiment.experiment_id)).fetchone()
        return (row[0], row[1]) if row else None

    def running(self) -> list[tuple[str, str | None]]:
        with closing(self._connect(self.path)) as con:
            rows = con.execute(
                "SELECT r.run_uuid, t.value FROM runs r LEFT JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = ? "
                "WHERE r.status = 'RUNNING' AND r.experiment_id = ? AND r.lifecycle_stage = 'active'",
                (LIVENESS_TAG, self._experiment.experiment_id)).fetchall()
        return [(run_id, alive) for run_id, alive in rows]

    def mark_interrupted(self, run_ids: list[str], reason: str) -> None:
        self._terminate(run_ids, "FAILED", {INTERRUPTED_TAG: "true", "error": reason})

    # ------------------------------------------------------------------ rows
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect(self.path)) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @staticmethod
    def _set_tags(con: sqlite3.Connection, run_id: str, tags: Mapping[str, str]) -> None:
        con.executemany("INSERT OR REPLACE INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
                        [(_check_key(k, "tag"), str(v)[:MAX_TAG_VALUE], run_id) for k, v in tags.items()])

    def _terminate(self, run_ids: list[str], status: str, tags: Mapping[str, str]) -> None:
        """Tags, then MLflow's ``set_terminated``: final status and end time, in one transaction."""
        if status not in ("FINISHED", "FAILED", "KILLED"):
            raise ValueError(f"run status must be FINISHED, FAILED or KILLED; got {status!r}.")
        with self._transaction() as con:
            for run_id in run_ids:
                self._set_tags(con, run_id, tags)
                con.execute("UPDATE runs SET status = ?, end_time = ? WHERE run_uuid = ?",
                            (status, int(time.time() * 1000), run_id))

    def _insert_run(
        self,
        *,
        run_name: str,
        params: Mapping[str, str] | None = None,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, str] | None = None,
        texts: Mapping[str, str] | None = None,
        status: str = "FINISHED",
        start_time: int | None = None,
        end_time: int | None = None,
        parent_run_id: str | None = None,
        datasets: Iterable[InputDataset] = (),
    ) -> str:
        """Write a whole run (rows and artifacts) and return its id. ``RUNNING`` leaves it open (a sweep's
        parent run, closed by :meth:`finish_parent`)."""
        if status not in ("FINISHED", "FAILED", "KILLED", "RUNNING"):
            raise ValueError(f"run status must be FINISHED, FAILED, KILLED or RUNNING; got {status!r}.")
        now = int(time.time() * 1000)
        start_time = int(start_time if start_time is not None else now)
        end_time = None if status == "RUNNING" else int(end_time if end_time is not None else now)
        all_tags = {_RUN_NAME_TAG: run_name} | dict(tags or {})
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        tag_rows = [(_check_key(k, "tag"), str(v)[:MAX_TAG_VALUE]) for k, v in all_tags.items()]
        param_rows = [(_check_key(k, "param"), str(v)[:MAX_PARAM_VALUE]) for k, v in (params or {}).items()]
        metric_rows = [(_check_key(k, "metric"), *_metric_row(v)) for k, v in (metrics or {}).items()]
        stamp = end_time if end_time is not None else now

        run_id = uuid.uuid4().hex
        run_dir = self._experiment.artifact_dir / run_id
        try:
            _write_artifacts(run_dir / "artifacts", texts or {}, ())
            with self._transaction() as con:
                (stage,) = con.execute("SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?",
                                       (self._experiment.experiment_id,)).fetchone() or ("missing",)
                _check_active(stage, self.experiment, self.uri)
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
                                "VALUES (?, ?, ?, ?, 0, ?)", [(k, v, stamp, run_id, n) for k, v, n in metric_rows])
                con.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                                "VALUES (?, ?, ?, 0, ?, ?)", [(k, v, stamp, n, run_id) for k, v, n in metric_rows])
                self._insert_inputs(con, run_id, datasets)
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing half-written: no rows, no stray files
            raise
        return run_id

    def _insert_inputs(self, con: sqlite3.Connection, run_id: str, datasets: Iterable[InputDataset]) -> None:
        """MLflow's ``log_inputs`` for a new run: a dataset is one row per (experiment, name, digest), reused when
        it exists (the first description written is kept, as MLflow keeps it); one input edge per dataset and
        run, with the input's tags. A dataset given twice (same name and digest) is logged once."""
        seen: set[tuple[str, str]] = set()
        for d in datasets:
            if (d.name, d.digest) in seen:
                continue
            seen.add((d.name, d.digest))
            _check_dataset(d)
            row = con.execute("SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
                              (self._experiment.experiment_id, d.name, d.digest)).fetchone()
            if row is None:
                dataset_uuid = uuid.uuid4().hex
                con.execute("INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, "
                            "dataset_source, dataset_schema, dataset_profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (dataset_uuid, self._experiment.experiment_id, d.name, d.digest, d.source_type,
                             d.source, d.schema, d.profile))
            else:
                dataset_uuid = row[0]
            input_uuid = uuid.uuid4().hex
            con.execute("INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, "
                        "step) VALUES (?, 'DATASET', ?, 'RUN', ?, 0)", (input_uuid, dataset_uuid, run_id))
            con.executemany("INSERT INTO input_tags (input_uuid, name, value) VALUES (?, ?, ?)",
                            [(input_uuid, k, v) for k, v in d.tags.items()])


def _check_dataset(d: InputDataset) -> None:
    """MLflow's limits for a dataset input (it would reject the same values)."""
    if len(d.source) > MAX_DATASET_SOURCE or len(d.schema or "") > MAX_DATASET_SCHEMA:
        raise ValueError(f"MLflow dataset sources must be at most {MAX_DATASET_SOURCE} and schemas "
                         f"{MAX_DATASET_SCHEMA} characters; got {len(d.source)} and {len(d.schema or '')}.")
    for key, value in d.tags.items():
        if not key or len(key) > MAX_INPUT_TAG_KEY or len(value) > MAX_INPUT_TAG_VALUE:
            raise ValueError(f"MLflow input tags must have 1-{MAX_INPUT_TAG_KEY} character names and values of at "
                             f"most {MAX_INPUT_TAG_VALUE}; got {len(key)} and {len(value)}.")


def _check_active(stage: str, experiment: str, uri: str) -> None:
    if stage != "active":
        raise RuntimeError(f"experiment '{experiment}' is {stage} in {uri}")


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
