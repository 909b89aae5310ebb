"""MLflow writer process for :class:`~privrec.tracking.subprocess_tracker.SubprocessMlflowTracker`.

Imports MLflow and its SQL store at once (the slow part), then reads one JSON document
``{"spec": {...}, "record": {...}}`` from stdin, creates the run, writes the record, terminates the run with
the record's status and prints ``{"run_id": ...}``. Empty input: exits without creating anything.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def _warm_up(uri: str) -> None:
    """Import what writing a run needs and open the default store if it already exists, while the
    pipeline computes (about 5 s of CPU on a small machine, otherwise on the pipeline's critical path)."""
    import mlflow.store.artifact.local_artifact_repo  # noqa: F401
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    import mlflow.tracking  # noqa: F401
    from mlflow.entities import Metric, Param, RunTag  # noqa: F401

    from privrec.tracking.mlflow_tracker import ensure_store

    if uri.startswith("sqlite:///") and os.path.isfile(uri.removeprefix("sqlite:///")):
        try:
            ensure_store(uri, "privrec")
        except Exception:  # pragma: no cover - the real call reports it
            pass


def main() -> int:
    from privrec.tracking.mlflow_tracker import MlflowTracker, resolve_tracking_uri

    _warm_up(resolve_tracking_uri(None))
    raw = sys.stdin.read()
    if not raw.strip():
        return 0
    document = json.loads(raw)
    spec, record = document["spec"], document["record"]
    tracker = MlflowTracker(tracking_uri=spec["tracking_uri"], experiment=spec["experiment"],
                            parent_run_id=spec.get("parent_run_id"), run_name=spec.get("run_name"),
                            start_time=spec.get("start_time"))
    try:
        tracker._wait()  # opens the store (schema once) and creates the run
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    tags = dict(record.get("tags", {}))
    error = tags.pop("error", None)
    try:
        if record.get("params"):
            tracker.log_params(record["params"])
        if record.get("metrics"):
            tracker.log_metrics(record["metrics"])
        if tags:
            tracker.set_tags(tags)
        for name, text in record.get("texts", {}).items():
            tracker.log_text(text, artifact_file=name)
        for path, artifact_path in record.get("paths", []):
            tracker.log_artifact(path, artifact_path=artifact_path)
    except Exception as exc:
        tracker.finish("FAILED", error=f"recording failed: {type(exc).__name__}")
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    tracker.finish(record.get("status", "FINISHED"), error=error)
    print(json.dumps({"run_id": tracker.run_id}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
