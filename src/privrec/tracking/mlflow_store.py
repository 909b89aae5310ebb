"""The reference store: MLflow's public client (:class:`mlflow.tracking.MlflowClient`), for every store MLflow
supports (SQLite, PostgreSQL/MySQL, a tracking server).

MLflow's client cannot create a run that is already finished: a record is written as create_run (tagged with
this process's liveness) + log_batch + log_inputs (its datasets) + artifacts + set_terminated. If the process
is killed in between, the run is left RUNNING with the liveness of a process that no longer exists, and the
next privrec command that opens the store marks it FAILED (:func:`privrec.tracking.store.repair`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

from privrec.errors import ConfigError
from privrec.tracking.record import InputDataset, RunRecord, now_ms
from privrec.tracking.store import (
    CONFIG_SHA_TAG,
    INTERRUPTED_TAG,
    LIVENESS_TAG,
    PARENT_TAG,
    SWEEP_KEY_TAG,
    liveness,
    store_lock,
)
from privrec.tracking.uri import StoreURI

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # privrec prints its own one line
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # MLflow logs schema migrations at INFO
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

__all__ = ["MAX_PARAM_VALUE", "MlflowStore"]

MAX_PARAM_VALUE = 6000  # MLflow truncates longer values; privrec truncates them itself, visibly the same
MAX_TAG_VALUE = 8000


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def _dataset_input(dataset: InputDataset) -> Any:
    """A record's dataset as MLflow's ``DatasetInput`` (the entity ``mlflow.log_input`` logs)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    return DatasetInput(Dataset(name=dataset.name, digest=dataset.digest, source_type=dataset.source_type,
                                source=dataset.source, schema=dataset.schema, profile=dataset.profile),
                        tags=[InputTag(k, v) for k, v in dataset.tags.items()])


def _log_inputs(client: Any, run_id: str, datasets: list[Any]) -> None:
    """``client.log_inputs``, tried a second time after a store error: jobs of a sweep logging the same new dataset
    at once race in the store's get-or-create of its dataset row (on PostgreSQL the loser gets a unique violation
    on ``dataset_pk``; the store rolls its transaction back, and the retry finds the row)."""
    import time

    from mlflow.exceptions import MlflowException

    try:
        client.log_inputs(run_id, datasets=datasets)
    except MlflowException:
        time.sleep(0.5)
        client.log_inputs(run_id, datasets=datasets)


class MlflowStore:
    """One experiment of one MLflow tracking store, through MLflow's public client."""

    accelerated = False

    def __init__(self, loc: StoreURI, experiment: str) -> None:
        self.loc = loc
        self.uri = loc.uri
        self.experiment = experiment
        self._client: Any = None
        self._experiment_id: str | None = None

    @classmethod
    def from_client(cls, loc: StoreURI, experiment: str, client: Any, experiment_id: str) -> MlflowStore:
        """A store over an already opened client and experiment (e.g. the report's reader)."""
        store = cls(loc, experiment)
        store._client, store._experiment_id = client, experiment_id
        return store

    # ------------------------------------------------------------------ opening
    def prepare(self) -> None:
        """Open the store (creating its schema) and the experiment, once, under a file lock; ConfigError
        when MLflow cannot use the store."""
        try:
            from mlflow.tracking import MlflowClient

            with store_lock(self.loc):
                client = MlflowClient(self.uri)
                exp = client.get_experiment_by_name(self.experiment)
                exp_id = client.create_experiment(self.experiment) if exp is None else exp.experiment_id
                stage = "active" if exp is None else exp.lifecycle_stage
        except Exception as exc:  # noqa: BLE001 - unreachable server, unwritable or corrupt database, ...
            raise ConfigError(f"tracking.tracking_uri must be a store MLflow can write; got {self.uri!r} "
                              f"({type(exc).__name__}: {_first_line(exc)}).") from None
        if stage != "active":
            raise ConfigError(f"tracking.experiment must name an active experiment; '{self.experiment}' is "
                              f"deleted in {self.uri}. Restore it in the MLflow UI or choose another name.")
        self._client, self._experiment_id = client, exp_id

    @property
    def client(self):
        if self._client is None:
            self.prepare()
        return self._client

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self.prepare()
        assert self._experiment_id is not None
        return self._experiment_id

    # ------------------------------------------------------------------ writing
    def write(self, record: RunRecord, *, parent_run_id: str | None = None) -> str:
        from mlflow.entities import Metric, Param, RunTag

        client = self.client
        tags = {**record.tags, LIVENESS_TAG: liveness()}
        if parent_run_id:
            tags[PARENT_TAG] = parent_run_id
        run = client.create_run(self.experiment_id, start_time=record.start_time, run_name=record.run_name,
                                tags={k: str(v)[:MAX_TAG_VALUE] for k, v in tags.items()})
        run_id = run.info.run_id
        try:
            params = [Param(k, str(v)[:MAX_PARAM_VALUE]) for k, v in record.params.items()]
            for i in range(0, len(params), 100):
                client.log_batch(run_id, params=params[i:i + 100])
            metrics = [Metric(k, float(v), record.end_time, 0) for k, v in record.metrics.items()]
            for i in range(0, len(metrics), 1000):
                client.log_batch(run_id, metrics=metrics[i:i + 1000])
            if record.datasets:
                _log_inputs(client, run_id, [_dataset_input(d) for d in record.datasets])
            for path, text in sorted(record.artifacts.items()):
                client.log_text(run_id, text, path)
        except BaseException:
            # Recorded complete or not at all: the partial run is closed and deleted (best effort - the store may be
            # what failed; then the next command's repair marks it FAILED). The caller keeps the whole record.
            with contextlib.suppress(Exception):
                client.log_batch(run_id, tags=[RunTag("error", "recording failed before the run was complete")])
                client.set_terminated(run_id, "FAILED")
                client.delete_run(run_id)
            raise
        client.set_terminated(run_id, record.status, end_time=record.end_time)
        return run_id

    def start_parent(self, *, run_name: str, tags: Mapping[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_name, start_time=now_ms(),
                                     tags={**{k: str(v)[:MAX_TAG_VALUE] for k, v in tags.items()},
                                           LIVENESS_TAG: liveness()})
        return run.info.run_id

    def reopen_parent(self, run_id: str) -> None:
        self.client.update_run(run_id, status="RUNNING")
        self.client.set_tag(run_id, LIVENESS_TAG, liveness())
        self.client.set_tag(run_id, INTERRUPTED_TAG, "false")

    def finish_parent(self, run_id: str, status: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        self.client.set_terminated(run_id, status)

    # ------------------------------------------------------------------ reading
    def _search(self, filter_string: str, *, order_by: list[str] | None = None, max_results: int = 50000) -> list:
        out, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=filter_string, order_by=order_by,
                                           max_results=min(max_results, 1000), page_token=token)
            out.extend(page)
            token = page.token
            if not token or len(out) >= max_results:
                return out[:max_results]

    def children(self, parent_run_id: str) -> list[tuple[str, str | None]]:
        runs = self._search(f"tags.`{PARENT_TAG}` = '{parent_run_id}'")
        return [(r.info.status, r.data.tags.get(CONFIG_SHA_TAG)) for r in runs]

    def find_sweep(self, sweep_key: str) -> tuple[str, str] | None:
        runs = self._search(f"tags.`{SWEEP_KEY_TAG}` = '{sweep_key}'", order_by=["attributes.start_time DESC"],
                            max_results=1)
        return (runs[0].info.run_id, runs[0].info.status) if runs else None

    def running(self) -> list[tuple[str, str | None]]:
        runs = self._search("attributes.status = 'RUNNING'")
        return [(r.info.run_id, r.data.tags.get(LIVENESS_TAG)) for r in runs]

    def mark_interrupted(self, run_ids: list[str], reason: str) -> None:
        from mlflow.entities import RunTag

        for run_id in run_ids:
            self.client.log_batch(run_id, tags=[RunTag(INTERRUPTED_TAG, "true"), RunTag("error", reason)])
            self.client.set_terminated(run_id, "FAILED")
