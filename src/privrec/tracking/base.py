"""The tracker interface the pipeline talks to (no MLflow here), and a null/in-memory implementation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["MemoryTracker", "Tracker"]


@runtime_checkable
class Tracker(Protocol):
    """One run's record. ``finish`` must be called exactly once, with ``FINISHED`` or ``FAILED``."""

    def start(self, *, run_name: str | None = None) -> None: ...

    def log_params(self, params: Mapping[str, str]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float]) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...

    def log_artifact(self, path: str | Path, *, artifact_path: str | None = None) -> None: ...

    def log_text(self, text: str, *, artifact_file: str) -> None: ...

    def finish(self, status: str, *, error: str | None = None) -> None: ...

    def describe(self) -> str:
        """Where the run is, for the user (run id and store)."""
        ...


@dataclass
class MemoryTracker:
    """Keeps everything in memory: for tests and for ``tracking.enabled=false``."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    status: str | None = None
    started: bool = False

    def start(self, *, run_name: str | None = None) -> None:
        self.started = True
        self.status = "RUNNING"

    def log_params(self, params: Mapping[str, str]) -> None:
        self.params.update({k: str(v) for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        self.metrics.update({k: float(v) for k, v in metrics.items()})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.tags.update({k: str(v) for k, v in tags.items()})

    def log_artifact(self, path: str | Path, *, artifact_path: str | None = None) -> None:
        path = Path(path)
        key = f"{artifact_path}/{path.name}" if artifact_path else path.name
        self.artifacts[key] = str(path)

    def log_text(self, text: str, *, artifact_file: str) -> None:
        self.artifacts[artifact_file] = text

    def finish(self, status: str, *, error: str | None = None) -> None:
        self.status = status
        if error:
            self.tags["error"] = error

    def describe(self) -> str:
        return "not tracked (tracking.enabled=false)"
