"""Hydra callback: one parent run per sweep, the store prepared once before jobs fan out, resume.

``on_multirun_start`` (in the sweep's main process, before any job) opens the store - creating its schema and
the experiment once, under a lock -, repairs runs a killed process left RUNNING, and creates the sweep's
parent run (RUNNING, tagged with this process's liveness) or, with ``resume=true``, reopens the latest sweep
with the same overrides. Jobs find the parent through the environment (inherited by the launcher's worker
processes, which start after this hook), and so the keys that vary across the sweep (:data:`SWEPT_ENV`), which
lead each child run's name (``rate=0.3 mechanism=random ALS seed=1``, :func:`swept_values`). The parent is
named after the experiment preset and the other overrides (:func:`parent_run_name`). The parent ends FINISHED
only when every job the sweeper launched has a FINISHED run under it; otherwise FAILED, with
``privrec.interrupted=true`` when the sweep was stopped.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from privrec.tracking.store import INTERRUPTED_TAG, SWEEP_KEY_TAG, RunStore, open_store, repair

__all__ = ["JOBS_ENV", "MlflowSweepCallback", "PARENT_ENV", "REPORTED_ENV", "SKIP_ENV", "SWEPT_ENV",
           "close_parent_run", "current_swept_keys", "parent_run_name", "redact_overrides", "short_labels",
           "sweep_key", "swept_keys", "swept_values", "varying_keys"]

PARENT_ENV = "PRIVREC_PARENT_RUN_ID"
SKIP_ENV = "PRIVREC_RESUME_SKIP"  # config digests (16 hex) of jobs already FINISHED under a resumed parent
JOBS_ENV = "PRIVREC_SWEEP_JOBS"  # how many jobs the sweeper launches (set by privrec's sweeper)
SWEPT_ENV = "PRIVREC_SWEPT_KEYS"  # JSON list of the override keys whose value varies across the sweep's jobs
REPORTED_ENV = "PRIVREC_LAUNCHER_REPORTS"  # "1": privrec's launcher prints each job's line, the job does not
_STATE: dict[str, Any] = {}  # this process's open sweep: store, parent run id, resumed


def redact_overrides(overrides: list[str]) -> list[str]:
    """Overrides with the values of secret keys (``privacy.key=...``) replaced by ``<redacted>``."""
    from privrec.experiment import is_secret

    out = []
    for item in overrides:
        key, sep, _value = item.partition("=")
        out.append(f"{key}=<redacted>" if sep and is_secret(key.lstrip("+~")) else item)
    return out


def _key(override: str) -> str:
    return override.lstrip("+~").partition("=")[0].strip()


def short_labels(keys: Iterable[str]) -> dict[str, str]:
    """key -> its label in a run name: the last dotted component (``privacy.rate`` -> ``rate``), unless another
    of ``keys`` ends the same way (``privacy.steps.drop.rate`` and ``privacy.steps.kanon.rate`` stay whole)."""
    keys = list(dict.fromkeys(keys))
    last = {k: k.rsplit(".", 1)[-1] for k in keys}
    counts: dict[str, int] = {}
    for label in last.values():
        counts[label] = counts.get(label, 0) + 1
    return {k: last[k] if counts[last[k]] == 1 else k for k in keys}


def varying_keys(jobs: Iterable[Sequence[str]]) -> list[str]:
    """The override keys whose value differs between ``jobs`` (each a job's overrides), in first-seen order."""
    values: dict[str, set[str]] = {}
    for overrides in jobs:
        for o in overrides:
            values.setdefault(_key(o), set()).add(o.partition("=")[2])
    return [k for k, v in values.items() if len(v) > 1]


def swept_keys(overrides: Iterable[str]) -> list[str]:
    """The keys that sweep overrides (``a=1,2``, ``choice(...)``, ``range(...)``, ``interval(...)``) make vary, from
    a sweep's overrides before expansion (the command line and ``hydra.sweeper.params``); parse errors: none."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = []
    parser = OverridesParser.create()
    for item in overrides:
        try:
            (override,) = parser.parse_overrides([item])
        except Exception:  # noqa: BLE001 - Hydra reports a bad override itself, with its own message
            override = None
        if override is not None and override.is_sweep_override() and not (override.is_discrete_sweep()
                                                 and len(list(override.sweep_string_iterator())) < 2):
            keys.append(override.get_key_element())
    return list(dict.fromkeys(keys))


def swept_values(overrides: Iterable[str], keys: Iterable[str]) -> list[tuple[str, str]]:
    """``(label, value)`` of a job's ``overrides`` for the swept ``keys``, in the order of ``keys`` (labels:
    :func:`short_labels`; secrets redacted)."""
    keys = list(keys)
    labels = short_labels(keys)
    given = {_key(o): o.partition("=")[2] for o in redact_overrides(list(overrides))}
    return [(labels[k], given[k]) for k in keys if k in given]


def current_swept_keys() -> list[str]:
    """The swept keys of the sweep this process belongs to (:data:`SWEPT_ENV`); [] outside a sweep."""
    try:
        keys = json.loads(os.environ.get(SWEPT_ENV) or "[]")
    except ValueError:
        return []
    return [str(k) for k in keys] if isinstance(keys, list) else []


def parent_run_name(overrides: Sequence[str], *, preset: str | None = None,
                    when: datetime.datetime | None = None) -> str:
    """A sweep's parent run name: the experiment preset (if any), then the other overrides with short keys, then
    the start time: ``consent_tradeoff 2026-12-01 03:40:12``, ``rate=0,0.5 model=als,bpr 2026-12-01 03:40:12``.
    Overrides of Hydra's own keys and of harness keys (``tracking.*``, ``data_dir``, ``progress``...) are left out:
    they say where the sweep ran, not what it computed."""
    from privrec.experiment import HARNESS_KEYS

    def shown_key(key: str) -> bool:
        return not (key == "experiment" or key.startswith(("hydra.", "hydra/"))
                    or key.partition(".")[0] in HARNESS_KEYS)

    shown = [o for o in redact_overrides(list(overrides)) if shown_key(_key(o))]
    labels = short_labels(_key(o) for o in shown)
    parts = ([preset] if preset else []) + [f"{labels[_key(o)]}={o.partition('=')[2]}" for o in shown]
    head = " ".join(parts) or "sweep"
    if len(head) > 200:
        head = head[:199] + "…"
    return f"{head} {(when or datetime.datetime.now()).strftime('%Y-%m-%d %H:%M:%S')}"


def sweep_key(overrides: list[str], experiment: str) -> str:
    """What identifies "the same sweep" for ``resume``: the experiment and the overrides except ``resume``."""
    kept = sorted(o for o in overrides if not o.lstrip("+~").startswith("resume="))
    return hashlib.sha256("\n".join([experiment, *kept]).encode()).hexdigest()[:32]


def _sweeper_params(config: DictConfig) -> list[str]:
    params = config.hydra.sweeper.get("params") if "params" in config.hydra.sweeper else None
    return [f"{k}={v}" for k, v in (params or {}).items()] if isinstance(params, Mapping | DictConfig) else []


class MlflowSweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        overrides = [str(o) for o in config.hydra.overrides.task]
        # privrec's sweeper replaces this with the exact keys once it has expanded the jobs
        os.environ[SWEPT_ENV] = json.dumps(swept_keys([*_sweeper_params(config), *overrides]))
        tracking = config.get("tracking") or {}
        if not tracking.get("enabled", True):
            return
        experiment = tracking.get("experiment", "privrec")
        store = open_store(tracking.get("tracking_uri"), experiment)
        repaired = repair(store)
        if repaired:
            print(f"privrec: marked {repaired} run(s) left RUNNING by a killed process as FAILED "
                  f"(tag {INTERRUPTED_TAG}).")
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
            from privrec.experiment import provenance

            standard = {k: v for k, v in provenance().items() if k.startswith("mlflow.")}  # user, source, commit
            tags = {**standard, "privrec.sweep": "true", "privrec.sweep_dir": sweep_dir, SWEEP_KEY_TAG: key,
                    "privrec.sweep_overrides": " ".join(redact_overrides(overrides))[:5000]}
            preset = (config.hydra.runtime.get("choices") or {}).get("experiment")
            parent = store.start_parent(run_name=parent_run_name(overrides, preset=preset), tags=tags)
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
    os.environ.pop(SWEPT_ENV, None)
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
