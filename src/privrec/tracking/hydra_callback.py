"""Hydra callback: one MLflow parent run per sweep, store schema created once before jobs fan out."""

from __future__ import annotations

import os
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from privrec.tracking.mlflow_tracker import ensure_store, resolve_tracking_uri
from privrec.tracking.sqlite_store import open_store

__all__ = ["PARENT_ENV", "MlflowSweepCallback", "close_parent_run"]

PARENT_ENV = "PRIVREC_PARENT_RUN_ID"
_URI_ENV = "PRIVREC_PARENT_TRACKING_URI"
_EXPERIMENT_ENV = "PRIVREC_PARENT_EXPERIMENT"


class MlflowSweepCallback(Callback):
    """Creates the sweep's parent run in ``on_multirun_start``; children find it through the environment
    (inherited by joblib/loky workers, which start after this hook).

    The parent run is written directly into an existing SQLite store (no MLflow import in the sweep's main
    process); for a new store MLflow creates the schema and the experiment here, once, before any job starts,
    so the jobs can all write directly."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        tracking = config.get("tracking") or {}
        if not tracking.get("enabled", True):
            return
        uri = resolve_tracking_uri(tracking.get("tracking_uri"))
        experiment = tracking.get("experiment", "privrec")
        overrides = list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))
        sweep_dir = str(config.hydra.sweep.dir)
        name = f"sweep {os.path.basename(sweep_dir)}"
        tags = {"privrec.sweep": "true", "privrec.sweep_dir": sweep_dir,
                "privrec.sweep_overrides": " ".join(overrides)[:5000]}
        store, _why = open_store(uri, experiment)
        if store is None:
            ensure_store(uri, experiment)  # MLflow creates the schema and the experiment once
            store, _why = open_store(uri, experiment)
        if store is not None:
            run_id = store.record_run(run_name=name, tags=tags, status="RUNNING")
        else:  # a store privrec cannot write directly (a server, another database): MLflow's API
            from mlflow.tracking import MlflowClient

            client = MlflowClient(uri)
            run_id = client.create_run(client.get_experiment_by_name(experiment).experiment_id,
                                       run_name=name, tags=tags).info.run_id
        os.environ[PARENT_ENV] = run_id
        os.environ[_URI_ENV] = uri
        os.environ[_EXPERIMENT_ENV] = experiment

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        close_parent_run("FINISHED")


def close_parent_run(status: str) -> str | None:
    """Terminate the sweep's parent run (if this process opened one) with the number of its children and
    of those that failed; FAILED when any child did. Returns its id."""
    run_id = os.environ.pop(PARENT_ENV, None)
    uri = os.environ.pop(_URI_ENV, None)
    experiment = os.environ.pop(_EXPERIMENT_ENV, "privrec")
    if not run_id or not uri:
        return None
    store, _why = open_store(uri, experiment)
    if store is not None:
        statuses = store.children(run_id)
    else:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        statuses = [r.info.status for r in client.search_runs(
            [client.get_run(run_id).info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
            max_results=50000)]
    failed = sum(s != "FINISHED" for s in statuses)
    final = "FAILED" if failed and status == "FINISHED" else status
    tags = {"privrec.children": str(len(statuses)), "privrec.children_failed": str(failed)}
    if store is not None:
        store.set_tags(run_id, tags)
        store.terminate(run_id, final)
    else:
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
        client.set_terminated(run_id, final)
    return run_id
