"""Hydra callback: one parent run per sweep, the store prepared once before jobs fan out, resume.

``on_multirun_start`` (in the sweep's main process, before any job) opens the store - creating its schema and
the experiment once, under a lock -, repairs runs a killed process left RUNNING, and creates the sweep's
parent run (RUNNING, tagged with this process's liveness) or, with ``resume=true``, reopens the latest sweep
with the same overrides. Jobs find the parent through the environment (inherited by the launcher's worker
processes, which start after this hook). The parent ends FINISHED only when every job the sweeper launched
has a FINISHED run under it; otherwise FAILED, with ``privrec.interrupted=true`` when the sweep was stopped.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from privrec.tracking.store import INTERRUPTED_TAG, SWEEP_KEY_TAG, RunStore, open_store, repair

__all__ = ["JOBS_ENV", "PARENT_ENV", "SKIP_ENV", "MlflowSweepCallback", "close_parent_run", "redact_overrides",
           "sweep_key"]

PARENT_ENV = "PRIVREC_PARENT_RUN_ID"
SKIP_ENV = "PRIVREC_RESUME_SKIP"  # config digests (16 hex) of jobs already FINISHED under a resumed parent
JOBS_ENV = "PRIVREC_SWEEP_JOBS"  # how many jobs the sweeper launches (set by privrec's sweeper)
_STATE: dict[str, Any] = {}  # this process's open sweep: store, parent run id, resumed


def redact_overrides(overrides: list[str]) -> list[str]:
    """Overrides with the values of secret keys (``privacy.key=...``) replaced by ``<redacted>``."""
    from privrec.experiment import is_secret

    out = []
    for item in overrides:
        key, sep, _value = item.partition("=")
        out.append(f"{key}=<redacted>" if sep and is_secret(key.lstrip("+~")) else item)
    return out


def sweep_key(overrides: list[str], experiment: str) -> str:
    """What identifies "the same sweep" for ``resume``: the experiment and the overrides except ``resume``."""
    kept = sorted(o for o in overrides if not o.lstrip("+~").startswith("resume="))
    return hashlib.sha256("\n".join([experiment, *kept]).encode()).hexdigest()[:32]


class MlflowSweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        tracking = config.get("tracking") or {}
        if not tracking.get("enabled", True):
            return
        experiment = tracking.get("experiment", "privrec")
        store = open_store(tracking.get("tracking_uri"), experiment)
        repaired = repair(store)
        if repaired:
            print(f"privrec: marked {repaired} run(s) left RUNNING by a killed process as FAILED "
                  f"(tag {INTERRUPTED_TAG}).")
        overrides = [str(o) for o in config.hydra.overrides.task]
        key = sweep_key(overrides, experiment)
        parent, skip = None, []
        if bool(config.get("resume", False)):
            found = store.find_sweep(key)
            if found is None:
                print("privrec: resume=true found no earlier sweep with these overrides; starting a new one.")
            else:
                parent = found[0]
                done = [sha for status, sha in store.children(parent) if status == "FINISHED" and sha]
                skip = sorted({sha[:16] for sha in done})
                store.reopen_parent(parent)
                print(f"privrec: resuming sweep {parent}: {len(skip)} finished job(s) will be skipped.")
        if parent is None:
            sweep_dir = str(config.hydra.sweep.dir)
            tags = {"privrec.sweep": "true", "privrec.sweep_dir": sweep_dir, SWEEP_KEY_TAG: key,
                    "privrec.sweep_overrides": " ".join(redact_overrides(overrides))[:5000]}
            parent = store.start_parent(run_name=f"sweep {os.path.basename(sweep_dir)}", tags=tags)
        os.environ[PARENT_ENV] = parent
        os.environ[SKIP_ENV] = ",".join(skip)
        _STATE.update(store=store, parent=parent)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        close_parent_run("FINISHED")


def close_parent_run(status: str, *, interrupted: bool = False) -> str | None:
    """Terminate this process's sweep parent run (if it opened one): FINISHED only when ``status`` is and
    every launched job has a FINISHED child run; tags say how many jobs finished. Returns the run id."""
    store: RunStore | None = _STATE.pop("store", None)
    parent: str | None = _STATE.pop("parent", None)
    os.environ.pop(PARENT_ENV, None)
    os.environ.pop(SKIP_ENV, None)
    if store is None or parent is None:
        return None
    statuses = [s for s, _sha in store.children(parent)]
    finished = sum(s == "FINISHED" for s in statuses)
    expected = int(os.environ.get(JOBS_ENV) or 0) or None
    complete = finished == len(statuses) and (expected is None or finished >= expected)
    final = "FINISHED" if status == "FINISHED" and complete and not interrupted else "FAILED"
    tags = {"privrec.children": str(len(statuses)), "privrec.children_failed": str(len(statuses) - finished),
            "privrec.jobs_finished": str(finished), INTERRUPTED_TAG: str(interrupted).lower()}
    if expected is not None:
        tags["privrec.jobs_total"] = str(expected)
    store.finish_parent(parent, final, tags)
    return parent
