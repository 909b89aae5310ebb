"""Hydra callback: one MLflow parent run per sweep, store schema created once before jobs fan out."""

from __future__ import annotations

import os
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from privrec.tracking.mlflow_tracker import ensure_store, resolve_tracking_uri

__all__ = ["PARENT_ENV", "MlflowSweepCallback", "close_parent_run"]

PARENT_ENV = "PRIVREC_PARENT_RUN_ID"
_URI_ENV = "PRIVREC_PARENT_TRACKING_URI"


class MlflowSweepCallback(Callback):
    """Creates the sweep's parent run in ``on_multirun_start``; children find it through the environment
    (inherited by joblib/loky workers, which start after this hook)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        tracking = config.get("tracking") or {}
        if not tracking.get("enabled", True):
            return
        from mlflow.tracking import MlflowClient

        uri = resolve_tracking_uri(tracking.get("tracking_uri"))
        experiment_id = ensure_store(uri, tracking.get("experiment", "privrec"))
        client = MlflowClient(uri)
        overrides = list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))
        sweep_dir = str(config.hydra.sweep.dir)
        run = client.create_run(
            experiment_id,
            run_name=f"sweep {os.path.basename(sweep_dir)}",
            tags={"privrec.sweep": "true", "privrec.sweep_dir": sweep_dir,
                  "privrec.sweep_overrides": " ".join(overrides)[:5000]},
        )
        os.environ[PARENT_ENV] = run.info.run_id
        os.environ[_URI_ENV] = uri

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        close_parent_run("FINISHED")


def close_parent_run(status: str) -> str | None:
    """Terminate the sweep's parent run (if this process opened one); return its id."""
    run_id = os.environ.pop(PARENT_ENV, None)
    uri = os.environ.pop(_URI_ENV, None)
    if not run_id or not uri:
        return None
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    children = client.search_runs(
        [client.get_run(run_id).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
        max_results=50000,
    )
    failed = sum(r.info.status != "FINISHED" for r in children)
    client.set_tag(run_id, "privrec.children", str(len(children)))
    client.set_tag(run_id, "privrec.children_failed", str(failed))
    client.set_terminated(run_id, "FAILED" if failed and status == "FINISHED" else status)
    return run_id
