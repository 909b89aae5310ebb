"""Record a buffered run through MLflow's own API (when :mod:`privrec.tracking.sqlite_store` cannot).

As a process (``python -m privrec.tracking._writer URI EXPERIMENT``, started by
:class:`~privrec.tracking.buffered.BufferedMlflowTracker`): imports MLflow and creates the store's schema and
the experiment at once (the slow part, overlapping the pipeline), then reads one JSON document
``{"spec": {...}, "record": {...}}`` from stdin, writes the run and prints ``{"run_id": ...}`` or
``{"error": ...}``. Empty input: exits without creating a run.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def write_record(document: dict) -> str:
    """Create the run, write the record, terminate it with the record's status; return the run id."""
    from privrec.tracking.mlflow_tracker import MlflowTracker

    spec, record = document["spec"], document["record"]
    tracker = MlflowTracker(tracking_uri=spec["tracking_uri"], experiment=spec["experiment"],
                            parent_run_id=spec.get("parent_run_id"), run_name=spec.get("run_name"),
                            start_time=spec.get("start_time"))
    tracker._wait()  # opens the store (schema once) and creates the run
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
        raise
    tracker.finish(record.get("status", "FINISHED"), error=error)
    return tracker.run_id


def main(argv: list[str]) -> int:
    from privrec.tracking.mlflow_tracker import ensure_store

    if len(argv) == 2:  # warm up while the pipeline computes: import MLflow, create schema and experiment
        try:
            ensure_store(*argv)
        except Exception:  # noqa: S110 - the real call below reports it
            pass
    raw = sys.stdin.read()
    if not raw.strip():
        return 0
    try:
        run_id = write_record(json.loads(raw))
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps({"run_id": run_id}))
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything is committed (MLflow's client writes synchronously); skipping the interpreter's teardown with
    # MLflow/SQLAlchemy loaded saves the waiting `privrec run` ~1-2 s.
    os._exit(code)
