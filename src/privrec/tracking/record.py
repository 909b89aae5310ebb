"""The run record: everything one run produced, captured while it ran, ready to be written into a store.

:func:`privrec.experiment.run` returns a :class:`RunRecord`; one function
(:func:`privrec.tracking.store.write_record`) writes it into a store. Nothing is re-read from disk afterwards
to find out what a run was: the ``.hydra`` files, the resolved config and every other artifact are in
``artifacts`` as text. A record that could not be written is saved as JSON (:meth:`RunRecord.save`) and
written later by ``privrec sync``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["InputDataset", "RECORD_FILE", "RunRecord", "now_ms"]

RECORD_FILE = "record.json"
_STATUSES = ("FINISHED", "FAILED")
_FORMAT = "privrec.run_record/1"


def now_ms() -> int:
    return int(time.time() * 1000)


def _frozen(mapping: Mapping[str, Any] | None, kind: type) -> Mapping[str, Any]:
    return MappingProxyType({str(k): kind(v) for k, v in (mapping or {}).items()})


@dataclass(frozen=True)
class InputDataset:
    """A dataset a run read, as MLflow records a dataset input (what ``mlflow.log_input`` writes).

    ``name``, ``digest`` (at most 36 characters, MLflow's limit), ``source_type`` (``local``, ``http``...),
    ``source`` (JSON, e.g. ``{"uri": ...}``), ``schema`` (JSON, MLflow's ``{"mlflow_colspec": [...]}``) and
    ``profile`` (JSON) describe the dataset; ``tags`` are the input's own tags (``mlflow.data.context``...),
    which belong to this run's use of it. Nothing here may hold a record value (names, digests, counts only).
    """

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None = None
    profile: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 500:
            raise ValueError(f"InputDataset.name must be 1-500 characters; got {len(self.name)}.")
        if not self.digest or len(self.digest) > 36:
            raise ValueError(f"InputDataset.digest must be 1-36 characters (MLflow's limit); got {len(self.digest)}.")
        object.__setattr__(self, "tags", _frozen(self.tags, str))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "digest": self.digest, "source_type": self.source_type, "source": self.source,
                "schema": self.schema, "profile": self.profile, "tags": dict(self.tags)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> InputDataset:
        return cls(name=doc["name"], digest=doc["digest"], source_type=doc["source_type"], source=doc["source"],
                   schema=doc.get("schema"), profile=doc.get("profile"), tags=doc.get("tags") or {})


@dataclass(frozen=True)
class RunRecord:
    """One finished (or failed) run: params, metrics, tags, artifact contents (path -> text) and the datasets
    it read (:class:`InputDataset`, logged as MLflow dataset inputs).

    ``status`` is ``FINISHED`` or ``FAILED``; times are milliseconds since the epoch, as MLflow keeps them.
    Mappings are read-only views; use :meth:`with_tags` for a copy with more tags.
    """

    run_name: str
    status: str
    start_time: int
    end_time: int
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    artifacts: Mapping[str, str] = field(default_factory=dict)
    datasets: tuple[InputDataset, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in _STATUSES:
            raise ValueError(f"RunRecord.status must be one of {list(_STATUSES)}; got {self.status!r}.")
        object.__setattr__(self, "params", _frozen(self.params, str))
        object.__setattr__(self, "metrics", _frozen(self.metrics, float))
        object.__setattr__(self, "tags", _frozen(self.tags, str))
        object.__setattr__(self, "artifacts", _frozen(self.artifacts, str))
        object.__setattr__(self, "datasets", tuple(self.datasets))
        if not all(isinstance(d, InputDataset) for d in self.datasets):
            raise TypeError("RunRecord.datasets must be InputDataset instances.")

    def with_tags(self, tags: Mapping[str, str]) -> RunRecord:
        return replace(self, tags={**self.tags, **tags})

    # ------------------------------------------------------------------ saving (for privrec sync)
    def to_json(self) -> str:
        """JSON with nan/inf spelled as strings (JSON has neither)."""
        metrics = {k: (v if math.isfinite(v) else repr(v)) for k, v in self.metrics.items()}
        return json.dumps({"format": _FORMAT, "run_name": self.run_name, "status": self.status,
                           "start_time": self.start_time, "end_time": self.end_time, "params": dict(self.params),
                           "metrics": metrics, "tags": dict(self.tags), "artifacts": dict(self.artifacts),
                           "datasets": [d.to_dict() for d in self.datasets]},
                          indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError(f"a saved run record must have format {_FORMAT!r}; got {doc.get('format')!r}"
                             if isinstance(doc, dict) else "a saved run record must be a JSON object")
        return cls(run_name=doc["run_name"], status=doc["status"], start_time=int(doc["start_time"]),
                   end_time=int(doc["end_time"]), params=doc["params"],
                   metrics={k: float(v) for k, v in doc["metrics"].items()}, tags=doc["tags"],
                   artifacts=doc["artifacts"],
                   datasets=tuple(InputDataset.from_dict(d) for d in doc.get("datasets") or ()))

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``folder/record.json`` atomically (a temporary file renamed into place); return its path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / RECORD_FILE
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".record-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.to_json())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target
