"""Reading one recorded run back (for ``privrec reproduce``)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privrec.errors import ConfigError
from privrec.tracking.uri import parse_tracking_uri

__all__ = ["RecordedRun", "load_recorded_run"]


@dataclass(frozen=True)
class RecordedRun:
    run_id: str
    status: str
    config: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]


def load_recorded_run(run_id: str, *, tracking_uri: str | None = None) -> RecordedRun:
    """The resolved config, metrics and tags of a run; one-line ConfigError when it cannot be found."""
    import yaml
    from mlflow.exceptions import MlflowException

    loc = parse_tracking_uri(tracking_uri)
    uri = loc.uri
    if loc.sqlite_path is not None and not loc.sqlite_path.is_file():
        raise ConfigError(f"reproduce needs an existing tracking store; {uri!r} does not exist. "
                          f"Pass --tracking-uri or set MLFLOW_TRACKING_URI.")
    from privrec.tracking.query import open_client

    client = open_client(uri)  # MLflow's client, after repairing runs a killed process left RUNNING
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"reproduce run id must name a run in {uri}; got {run_id!r}. "
                          f"List runs with: privrec ui") from None
    except Exception as exc:  # noqa: BLE001 - unreachable store, bad URI scheme, ...: one line, not a traceback
        raise ConfigError(f"reproduce could not reach the tracking store {uri!r}: {type(exc).__name__}.") from None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id, "config/resolved.yaml", tmp)
        except Exception:  # noqa: BLE001 - MLflow raises several types for a missing artifact
            raise ConfigError(f"reproduce needs the run's config/resolved.yaml artifact; run {run_id!r} has none "
                              f"(not a privrec run, or a sweep's parent run).") from None
        try:
            config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"reproduce needs a readable config/resolved.yaml (YAML); run {run_id!r} has one "
                              f"that is not ({type(exc).__name__}).") from None
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ConfigError(f"reproduce needs a config/resolved.yaml that is a mapping of keys to values; run "
                          f"{run_id!r} has a {type(config).__name__}.")
    return RecordedRun(run_id=run_id, status=run.info.status, config=config, metrics=dict(run.data.metrics),
                       tags=dict(run.data.tags))
