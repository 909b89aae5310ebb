"""``reproduce(run_id)``: re-execute a recorded run from its resolved config and compare every metric."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from privrec.config import check_targets
from privrec.errors import ConfigError

__all__ = ["Reproduction", "check_data_digests", "is_deterministic", "reproduce"]

#: Absolute tolerance for configurations that are not bit-for-bit deterministic (multi-threaded SGD models).
NONDETERMINISTIC_ATOL = 0.02


@dataclass(frozen=True)
class Reproduction:
    run_id: str
    deterministic: bool
    tolerance: float
    compared: int
    differences: list[tuple[str, float, float]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences and not self.missing


def is_deterministic(config: Mapping[str, Any]) -> bool:
    """Whether the run's model gives bit-identical results for a seeded fit, as the model itself says.

    The model is built (not fitted) from the config's ``model`` node, with its ``fallback`` node when it
    takes one (:func:`privrec.experiment.build_model`), and its ``deterministic`` property is read: seeded
    ALS, item-kNN and popularity are deterministic for any thread count, BPR and LMF only with one thread
    (their SGD threads race on shared factors), and a model with a non-deterministic fallback is not.
    """
    from privrec.experiment import build_model  # imported when used, like experiment in reproduce()

    if not isinstance(config, Mapping) or not isinstance(config.get("model"), Mapping):
        got = type(config.get("model")).__name__ if isinstance(config, Mapping) else type(config).__name__
        raise ConfigError(f"is_deterministic needs a config with a model node (a mapping with _target_); got {got}.")
    return bool(build_model(config).deterministic)


def check_data_digests(recorded: Mapping[str, str], current: Mapping[str, str], *, where: str) -> None:
    """Raise a one-line :class:`ConfigError` naming the digest that differs between a recorded run's tags and a
    re-run's: ``data.sha256`` (the raw input files, with the changed files named from ``data.sources_sha256``)
    first, then ``data.preprocessed_sha256`` (same files, different loading or preprocessing).

    A run recorded before the raw digest existed has no ``data.preprocessed_sha256`` tag; its ``data.sha256``
    was the preprocessed digest and is compared with that. A run without data tags is not checked."""
    raw, pre = recorded.get("data.sha256"), recorded.get("data.preprocessed_sha256")
    if pre is None:  # recorded before data.sha256 meant the raw files
        raw, pre = None, raw
    if raw and raw != current.get("data.sha256"):
        raise ConfigError(f"reproduce found different data: data.sha256 (the raw input files) must be {raw[:12]}…; "
                          f"got {str(current.get('data.sha256'))[:12]}… under {where!r}"
                          f"{_changed_sources(recorded, current)}.")
    if pre and pre != current.get("data.preprocessed_sha256"):
        raise ConfigError(f"reproduce found different data: data.preprocessed_sha256 (the data after preprocessing) "
                          f"must be {pre[:12]}…; got {str(current.get('data.preprocessed_sha256'))[:12]}… under "
                          f"{where!r}{' with the same raw files: loading or preprocessing changed' if raw else ''}.")


def _changed_sources(recorded: Mapping[str, str], current: Mapping[str, str]) -> str:
    """`` (changed: ml-100k/u.data)`` from the ``data.sources_sha256`` tags (labels, never values); else ""."""
    try:
        old, new = (json.loads(tags.get("data.sources_sha256") or "{}") for tags in (recorded, current))
    except ValueError:
        return ""
    if not (isinstance(old, dict) and isinstance(new, dict) and old and new):
        return ""
    names = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    return f" (changed: {', '.join(names)})" if names else ""


def reproduce(run_id: str, *, tracking_uri: str | None = None, data_dir: str | None = None) -> Reproduction:
    """Re-run ``run_id`` (no new MLflow run is created) and compare its metrics with the recorded ones.

    The stored config builds only privrec's components (:mod:`privrec.config`): a ``_target_`` naming anything
    else (``subprocess.run``, ``os.system``, a module outside privrec) is refused with a ConfigError before
    anything is imported, built or run.

    The dataset is located through ``data_dir``, else ``PRIVREC_DATA_DIR``, else the recorded ``data_dir``; the
    digests of its raw files and of the preprocessed data must equal the recorded ``data.sha256`` and
    ``data.preprocessed_sha256`` tags (:func:`check_data_digests`). Timing metrics (``time/*``) are not compared.
    """
    from privrec import experiment
    from privrec.tracking.recorded import load_recorded_run

    recorded = load_recorded_run(run_id, tracking_uri=tracking_uri)
    if recorded.status != "FINISHED":
        raise ConfigError(f"reproduce needs a FINISHED run; run {run_id!r} is {recorded.status}.")
    config = dict(recorded.config)
    # A stored config may have been written by anyone who can write to the store: every _target_ must be one
    # of privrec's components (or registered) before anything is imported or built (build checks it too).
    check_targets(config)
    if "<redacted>" in repr(config):
        raise ConfigError("reproduce cannot re-run a config with a redacted secret (e.g. privacy.key); "
                          "re-run it by hand with the secret.")
    config["data_dir"] = data_dir or os.environ.get("PRIVREC_DATA_DIR") or config.get("data_dir", "data")
    result = experiment.run(config)  # a RunRecord; nothing is written anywhere
    check_data_digests(recorded.tags, result.tags, where=str(config["data_dir"]))
    deterministic = is_deterministic(config)
    tol = 0.0 if deterministic else NONDETERMINISTIC_ATOL
    diffs, missing, compared = [], [], 0
    for key, old in sorted(recorded.metrics.items()):
        if key.startswith("time/"):
            continue
        if key not in result.metrics:
            missing.append(key)
            continue
        new = result.metrics[key]
        compared += 1
        same = (math.isnan(old) and math.isnan(new)) or abs(new - old) <= tol or (
            old >= 1.7e308 and math.isinf(new))  # MLflow stores inf as the largest float
        if not same:
            diffs.append((key, old, new))
    return Reproduction(run_id=run_id, deterministic=deterministic, tolerance=tol, compared=compared,
                        differences=diffs, missing=missing)
