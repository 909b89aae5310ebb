"""A tracker that records through MLflow in a **separate process**, started as early as possible.

Importing MLflow and opening a SQLite store costs about 4-5 s of CPU (SQLAlchemy's mappers, alembic, MLflow's
own package), more than the whole ML-100K pipeline. For a single ``privrec run`` a writer process
(``python -m privrec.tracking._writer``) is spawned when the command starts; it imports MLflow on the other
core while Hydra composes the config and the pipeline computes. The run is then recorded in one go at
``finish``: the buffered record (params, metrics, tags, artifacts, final status, start time) is sent to the
writer as one JSON document; it creates the run, writes everything and terminates the run. A run therefore
never exists in a RUNNING state that a crash could leave behind; if this process dies before ``finish``, the
writer sees its input close empty and exits without creating anything.
Sweeps use the in-process :class:`~privrec.tracking.MlflowTracker` instead (MLflow is imported once per worker).
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

__all__ = ["SubprocessMlflowTracker", "spawn_writer"]

_SPARE: subprocess.Popen | None = None


def spawn_writer() -> subprocess.Popen:
    """Start a writer process (it begins importing MLflow at once); reused by the next tracker."""
    global _SPARE
    if _SPARE is None or _SPARE.poll() is not None:
        env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
        _SPARE = subprocess.Popen([sys.executable, "-m", "privrec.tracking._writer"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return _SPARE


def discard_writer() -> None:
    """Stop an unused writer. It has created nothing (runs are created only from a full record), so it is
    simply killed instead of waiting for its MLflow import to finish."""
    global _SPARE
    if _SPARE is not None:
        _SPARE.kill()
        _SPARE.communicate()
        _SPARE = None


class SubprocessMlflowTracker(MemoryTracker):
    """Buffers the record in memory (see :class:`MemoryTracker`) and hands it to an MLflow writer process."""

    def __init__(self, *, tracking_uri: str | None = None, experiment: str = "privrec",
                 run_name: str | None = None) -> None:
        super().__init__()
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.experiment = experiment
        self.run_name = run_name
        self.run_id: str | None = None
        self._start_ms: int | None = None
        self._paths: list[tuple[str, str | None]] = []

    def start(self, *, run_name: str | None = None) -> None:
        super().start(run_name=run_name)
        self.run_name = run_name or self.run_name
        self._start_ms = int(time.time() * 1000)
        spawn_writer()

    def log_artifact(self, path: str | Path, *, artifact_path: str | None = None) -> None:
        self._paths.append((str(Path(path).resolve()), artifact_path))

    def finish(self, status: str, *, error: str | None = None) -> None:
        global _SPARE
        super().finish(status, error=error)
        proc, _SPARE = spawn_writer(), None
        document = {
            "spec": {"tracking_uri": self.tracking_uri, "experiment": self.experiment, "run_name": self.run_name,
                     "parent_run_id": os.environ.get("PRIVREC_PARENT_RUN_ID") or None,
                     "start_time": self._start_ms},
            "record": {"params": self.params, "metrics": self.metrics, "tags": self.tags,
                       "texts": dict(self.artifacts), "paths": self._paths, "status": status},
        }
        out, err = proc.communicate(json.dumps(document))
        try:
            answer = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        except json.JSONDecodeError:
            answer = {}
        if "run_id" not in answer:
            reason = answer.get("error") or (err.strip().splitlines() or ["no answer from the writer"])[-1]
            raise RuntimeError(f"recording the run in MLflow failed: {reason}")
        self.run_id = answer["run_id"]

    def describe(self) -> str:
        return f"run {self.run_id} in experiment '{self.experiment}' at {self.tracking_uri}"
