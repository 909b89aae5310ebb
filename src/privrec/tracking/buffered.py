"""The tracker ``privrec run`` uses: buffer the run's record, write it to MLflow in one go when the run ends.

Writing at the end means a run never sits in the store as RUNNING, so a crash cannot leave one behind; a
failed run is recorded as FAILED with its one-line error. The record is written

1. straight into the MLflow SQLite store (:mod:`privrec.tracking.sqlite_store`: one transaction, no MLflow
   import, milliseconds) when the store already exists with a schema and experiment that qualify - the
   normal case after a project's first run;
2. otherwise through MLflow itself, which also creates the store's schema and the experiment:
   ``fallback="subprocess"`` (single runs) starts a writer process (``python -m privrec.tracking._writer``)
   at :meth:`start`, so MLflow's 4-5 s import and the schema creation overlap the pipeline on another core;
   ``fallback="inprocess"`` (sweep jobs, whose cores are all busy anyway) writes from this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from privrec.tracking.base import MemoryTracker
from privrec.tracking.mlflow_tracker import resolve_tracking_uri
from privrec.tracking.sqlite_store import FastPathUnavailable, SqliteRunStore, open_store

__all__ = ["BufferedMlflowTracker", "discard_writer", "spawn_writer"]

_SPARE: subprocess.Popen | None = None


def spawn_writer(uri: str, experiment: str) -> subprocess.Popen:
    """Start an MLflow writer process for ``uri``/``experiment``; it imports MLflow and creates the store
    and the experiment at once, then waits for a record on stdin. Reused by the next tracker."""
    global _SPARE
    if _SPARE is None or _SPARE.poll() is not None:
        env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
        _SPARE = subprocess.Popen([sys.executable, "-m", "privrec.tracking._writer", uri, experiment],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env)
    return _SPARE


def discard_writer() -> None:
    """Stop an unused writer (it has created no run: runs are created only from a full record)."""
    global _SPARE
    if _SPARE is not None:
        _SPARE.kill()
        _SPARE.communicate()
        _SPARE = None


class BufferedMlflowTracker(MemoryTracker):
    """Buffers the record in memory (see :class:`MemoryTracker`) and writes it to MLflow at :meth:`finish`."""

    def __init__(self, *, tracking_uri: str | None = None, experiment: str = "privrec",
                 run_name: str | None = None, fallback: str = "subprocess") -> None:
        super().__init__()
        if fallback not in ("subprocess", "inprocess"):
            raise ValueError(f"fallback must be 'subprocess' or 'inprocess'; got {fallback!r}.")
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.experiment = experiment
        self.run_name = run_name
        self.fallback = fallback
        self.run_id: str | None = None
        self.direct: bool | None = None  # True when written with sqlite3, False through MLflow
        self.fast_path_problem: str | None = None
        self._store: SqliteRunStore | None = None
        self._start_ms: int | None = None
        self._paths: list[tuple[str, str | None]] = []

    def start(self, *, run_name: str | None = None) -> None:
        super().start(run_name=run_name)
        self.run_name = run_name or self.run_name
        self._start_ms = int(time.time() * 1000)
        self._store, self.fast_path_problem = open_store(self.tracking_uri, self.experiment)
        if self._store is None and self.fallback == "subprocess":
            spawn_writer(self.tracking_uri, self.experiment)

    def log_artifact(self, path: str | Path, *, artifact_path: str | None = None) -> None:
        self._paths.append((str(Path(path).resolve()), artifact_path))

    def finish(self, status: str, *, error: str | None = None) -> None:
        super().finish(status, error=error)
        parent = os.environ.get("PRIVREC_PARENT_RUN_ID") or None
        if self._store is not None:
            try:
                self.run_id = self._store.record_run(
                    run_name=self.run_name or "privrec", params=self.params, metrics=self.metrics, tags=self.tags,
                    texts=self.artifacts, paths=self._paths, status=status, start_time=self._start_ms,
                    parent_run_id=parent)
                self.direct = True
                return
            except FastPathUnavailable as exc:  # e.g. the experiment was deleted meanwhile: let MLflow decide
                self.fast_path_problem = str(exc)
        document = {
            "spec": {"tracking_uri": self.tracking_uri, "experiment": self.experiment, "run_name": self.run_name,
                     "parent_run_id": parent, "start_time": self._start_ms},
            "record": {"params": self.params, "metrics": self.metrics, "tags": self.tags,
                       "texts": dict(self.artifacts), "paths": self._paths, "status": status},
        }
        self.direct = False
        if self.fallback == "inprocess":
            from privrec.tracking._writer import write_record

            self.run_id = write_record(document)
            return
        self.run_id = self._through_writer(document)

    @staticmethod
    def _through_writer(document: dict) -> str:
        global _SPARE
        proc = _SPARE if (_SPARE is not None and _SPARE.poll() is None) else spawn_writer(
            document["spec"]["tracking_uri"], document["spec"]["experiment"])
        _SPARE = None
        out, err = proc.communicate(json.dumps(document))
        try:
            answer = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        except json.JSONDecodeError:
            answer = {}
        if "run_id" not in answer:
            reason = answer.get("error") or (err.strip().splitlines() or ["no answer from the writer"])[-1]
            raise RuntimeError(f"recording the run in MLflow failed: {reason}")
        return answer["run_id"]

    def describe(self) -> str:
        return f"run {self.run_id} in experiment '{self.experiment}' at {self.tracking_uri}"
