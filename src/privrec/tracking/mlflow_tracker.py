"""MLflow implementation of the tracker (the only module family that imports mlflow).

Uses :class:`mlflow.tracking.MlflowClient` directly (no fluent API, no global active run), so runs from
the in-process and the joblib launchers behave the same. Connecting (importing mlflow, opening the store,
creating the run) can start in a background thread while the pipeline computes: ``connect_async``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# MLflow logs schema migrations at INFO; keep the console for privrec's own output.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

__all__ = ["DEFAULT_TRACKING_URI", "MlflowTracker", "ensure_store", "resolve_tracking_uri"]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_MAX_PARAM = 6000


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the working directory."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def ensure_store(uri: str, experiment: str) -> str:
    """Create the store's schema and the experiment once; return the experiment id."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(experiment)
    except Exception:  # created concurrently by another job
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            raise
        return exp.experiment_id


class MlflowTracker:
    """Records one run in an MLflow store; child of ``parent_run_id`` when given."""

    def __init__(self, *, tracking_uri: str | None = None, experiment: str = "privrec",
                 parent_run_id: str | None = None, run_name: str | None = None,
                 start_time: int | None = None) -> None:
        self.tracking_uri = resolve_tracking_uri(tracking_uri)
        self.experiment = experiment
        self.parent_run_id = parent_run_id or os.environ.get("PRIVREC_PARENT_RUN_ID") or None
        self.run_name = run_name
        self.start_time = start_time
        self.run_id: str | None = None
        self._client = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ connection
    def _connect(self) -> None:
        try:
            from mlflow.tracking import MlflowClient
            from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

            experiment_id = ensure_store(self.tracking_uri, self.experiment)
            client = MlflowClient(self.tracking_uri)
            tags = {}
            if self.parent_run_id:
                tags[MLFLOW_PARENT_RUN_ID] = self.parent_run_id
            if self.run_name:
                tags[MLFLOW_RUN_NAME] = self.run_name
            run = client.create_run(experiment_id, start_time=self.start_time, tags=tags, run_name=self.run_name)
            self._client, self.run_id = client, run.info.run_id
        except BaseException as exc:  # re-raised in the caller's thread by _wait
            self._error = exc

    def connect_async(self) -> None:
        """Start importing mlflow and creating the run in the background."""
        if self._thread is None and self._client is None:
            self._thread = threading.Thread(target=self._connect, name="privrec-mlflow", daemon=True)
            self._thread.start()

    def _wait(self):
        if self._client is None:
            if self._thread is None:
                self._connect()
            else:
                self._thread.join()
            if self._error is not None:
                raise self._error
        return self._client

    # ------------------------------------------------------------------ Tracker
    def start(self, *, run_name: str | None = None) -> None:
        if run_name:
            self.run_name = run_name
        self.connect_async()

    def log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:_MAX_PARAM]) for k, v in params.items()]
        client = self._wait()
        for i in range(0, len(items), 100):
            client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        client = self._wait()
        for i in range(0, len(items), 1000):
            client.log_batch(self.run_id, metrics=items[i:i + 1000])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        client = self._wait()
        client.log_batch(self.run_id, tags=[RunTag(k, str(v)[:_MAX_PARAM]) for k, v in tags.items()])

    def log_artifact(self, path: str | Path, *, artifact_path: str | None = None) -> None:
        client = self._wait()
        path = Path(path)
        if path.is_dir():
            client.log_artifacts(self.run_id, str(path), artifact_path=artifact_path)
        else:
            client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)

    def log_text(self, text: str, *, artifact_file: str) -> None:
        self._wait().log_text(self.run_id, text, artifact_file)

    def finish(self, status: str, *, error: str | None = None) -> None:
        try:
            client = self._wait()
        except BaseException:
            return  # the run was never created: nothing is left RUNNING
        if error:
            client.set_tag(self.run_id, "error", error[:_MAX_PARAM])
        client.set_terminated(self.run_id, status)

    def describe(self) -> str:
        return f"run {self.run_id} in experiment '{self.experiment}' at {self.tracking_uri}"


