"""``reproduce(run_id)``: re-execute a recorded run from its resolved config and compare every metric."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from privrec.errors import ConfigError

__all__ = ["Reproduction", "is_deterministic", "reproduce"]

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


def reproduce(run_id: str, *, tracking_uri: str | None = None, data_dir: str | None = None) -> Reproduction:
    """Re-run ``run_id`` (no new MLflow run is created) and compare its metrics with the recorded ones.

    The dataset is located through ``data_dir``, else ``PRIVREC_DATA_DIR``, else the recorded ``data_dir``; its
    SHA-256 must equal the recorded ``data.sha256`` tag. Timing metrics (``time/*``) are not compared.
    """
    from privrec import experiment
    from privrec.tracking.recorded import load_recorded_run

    recorded = load_recorded_run(run_id, tracking_uri=tracking_uri)
    if recorded.status != "FINISHED":
        raise ConfigError(f"reproduce needs a FINISHED run; run {run_id!r} is {recorded.status}.")
    config = dict(recorded.config)
    if "<redacted>" in repr(config):
        raise ConfigError("reproduce cannot re-run a config with a redacted secret (e.g. privacy.key); "
                          "re-run it by hand with the secret.")
    config["data_dir"] = data_dir or os.environ.get("PRIVREC_DATA_DIR") or config.get("data_dir", "data")
    result = experiment.run(config)  # a RunRecord; nothing is written anywhere
    expected_sha = recorded.tags.get("data.sha256")
    if expected_sha and expected_sha != result.tags["data.sha256"]:
        raise ConfigError(f"reproduce found different data: dataset sha256 must be {expected_sha[:12]}…; "
                          f"got {result.tags['data.sha256'][:12]}… under {config['data_dir']!r}.")
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
