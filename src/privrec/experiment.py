"""``run(cfg) -> RunResult``: the pure pipeline (no Hydra import).

load -> preprocess -> split -> privacy treatment (train part only) -> fit -> evaluate against the true
held-out behaviour of every user (consented and opted-out alike) -> record.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from privrec.config import accepts, build, flatten
from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, PrivRecError
from privrec.privacy.base import PrivacyReport
from privrec.random import streams
from privrec.tracking.base import MemoryTracker, Tracker

__all__ = ["RunResult", "default_run_name", "load_data", "run", "segments_for"]

STAGES = ("load", "split", "privacy", "fit", "evaluate", "attack", "record")
_LIBRARIES = ("implicit", "numpy", "scipy", "pandas", "mlflow", "hydra-core", "threadpoolctl")


@dataclass(frozen=True)
class RunResult:
    """What one run measured. ``metrics`` uses MLflow keys (``eval/ndcg_at_10``, ``privacy/...``)."""

    metrics: dict[str, float]
    report: PrivacyReport
    segment_table: Any  # pandas.DataFrame: rows overall + segments, columns metrics
    data_sha256: str
    tracking: str
    timings: dict[str, float] = field(default_factory=dict)


_DATA_CACHE: dict[tuple[str, str, str], tuple[Dataset, dict[str, float]]] = {}


def load_data(dataset_cfg: Mapping, preprocess_cfg: Mapping | None, data_dir: str | os.PathLike) -> tuple[Dataset, dict]:
    """Load and preprocess a dataset; cached per process (datasets are immutable), so sweeps load once."""
    key = (repr(dict(dataset_cfg)), repr(dict(preprocess_cfg or {})), str(Path(data_dir).resolve()))
    if key not in _DATA_CACHE:
        loader = build(dataset_cfg, name="dataset")
        data = loader.load(data_dir)
        stats: dict[str, float] = {}
        if preprocess_cfg:
            data, stats = build(preprocess_cfg, name="preprocess").apply(data)
        _DATA_CACHE.clear()  # keep one dataset in memory at a time
        _DATA_CACHE[key] = (data, stats)
    return _DATA_CACHE[key]


def segments_for(train: Dataset, withheld: np.ndarray | None, attributes: list[str]) -> dict[str, np.ndarray]:
    """Consent segments over user indices, plus one segment per value of each attribute."""
    from privrec.evaluation import attribute_segments

    had_data = train.user_counts > 0
    out = {}
    if withheld is not None:
        out["consented"] = had_data & ~withheld
        out["opted_out"] = withheld.copy()
    out.update(attribute_segments(train, attributes))
    return out


def run(
    cfg: Mapping[str, Any],
    *,
    tracker: Tracker | None = None,
    hydra_dir: str | os.PathLike | None = None,
    on_stage: Callable[[str], None] | None = None,
    attack_worker: Any = None,
) -> RunResult:
    """Run one experiment from a resolved config mapping (see ``conf/config.yaml`` for the keys).

    ``attack_worker`` (a :class:`privrec.attacks.worker.AttackWorker`): compute the attacks in that second
    process while this one evaluates - same metrics, less wall time when a core is free."""
    tracker = tracker or MemoryTracker()
    stage = on_stage or (lambda _name: None)
    cfg = dict(cfg)
    # Build every component first: configuration errors surface before any work or any run is created.
    rngs = streams(cfg.get("seed", 0))
    splitter = build(cfg["split"], name="split")
    transform = build(cfg["privacy"], name="privacy")
    model = build_model(cfg)
    attacks = build(cfg.get("attack") or {}, name="attack")  # {name: attack}; empty with attack=none
    eval_cfg = dict(cfg.get("evaluation") or {})
    cutoffs = tuple(int(k) for k in eval_cfg.get("cutoffs", (10, 20)))
    if not cutoffs or min(cutoffs) < 1:
        raise ConfigError(f"evaluation.cutoffs must be positive integers; got {list(cutoffs)}.")
    tracker.start(run_name=cfg.get("run_name") or default_run_name(cfg))
    timings: dict[str, float] = {}
    try:
        t = time.perf_counter()
        stage("load")
        data, pre_stats = load_data(cfg["dataset"], cfg.get("preprocess"), cfg.get("data_dir", "data"))
        data_sha = data.checksum()
        timings["load"] = time.perf_counter() - t

        t = time.perf_counter()
        stage("split")
        split = splitter.split(data, rng=rngs.split)
        timings["split"] = time.perf_counter() - t

        t = time.perf_counter()
        stage("privacy")
        treated = transform.apply(split.train, rng=rngs.privacy)
        timings["privacy"] = time.perf_counter() - t

        t = time.perf_counter()
        stage("fit")
        model.fit(treated.data, rng=rngs.model)
        timings["fit"] = time.perf_counter() - t

        in_worker = attack_worker is not None and bool(attacks)
        if in_worker:
            attack_worker.submit(attacks, split, treated, model, rngs.attack)

        t = time.perf_counter()
        stage("evaluate")
        from privrec.evaluation import evaluate

        segments = segments_for(split.train, treated.withheld, list(eval_cfg.get("segment_by") or []))
        true_popularity = (split.train.to_csr(binary=True).sum(axis=0).A1 / max(1, split.train.n_users))
        evaluation = evaluate(model, treated.data, split.test, cutoffs=cutoffs, segments=segments,
                              item_popularity=true_popularity, batch_size=int(eval_cfg.get("batch_size", 2048)))
        timings["evaluate"] = time.perf_counter() - t

        t = time.perf_counter()
        stage("attack")
        if in_worker:  # its own compute time (it ran alongside evaluation)
            attack_metrics, attack_missing, timings["attack"] = attack_worker.result()
        else:
            attack_metrics, attack_missing = run_attacks(attacks, split, treated, model, rngs.attack)
            timings["attack"] = time.perf_counter() - t

        stage("record")
        metrics = dict(evaluation.to_metrics(prefix="eval"))
        metrics.update(attack_metrics)
        metrics.update({f"privacy/{k}": float(v) for k, v in treated.report.metrics.items()})
        metrics.update({f"data/{k}": float(v) for k, v in data.summary().items()})
        metrics["data/test_users"] = float((split.test.user_counts > 0).sum())
        metrics["data/train_interactions"] = float(split.train.n_interactions)
        metrics["data/released_interactions"] = float(treated.data.n_interactions)
        metrics["model/fallback_users"] = float(getattr(model, "n_fallback_users_", 0))
        metrics.update({f"time/{k}_s": v for k, v in timings.items()})
        table = evaluation.table()
        tracker.set_tags({f"attack.missing.{k}": v for k, v in attack_missing.items()})
        _record(tracker, cfg, metrics, treated.report, table, pre_stats, data_sha, data.name, hydra_dir)
        tracker.finish("FINISHED")
    except BaseException as exc:
        tracker.finish("FAILED", error=safe_error(exc))
        raise
    finally:
        if attack_worker is not None:
            attack_worker.close()
    return RunResult(metrics=metrics, report=treated.report, segment_table=table, data_sha256=data_sha,
                     tracking=tracker.describe(), timings=timings)


def run_attacks(attacks: Mapping[str, Any], split: Any, treated: Any, model: Any,
                rng: np.random.Generator) -> tuple[dict[str, float], dict[str, str]]:
    """Run each configured attack on its own child stream; metrics as ``attack/<name>``.

    Metrics an attack could not compute (e.g. no user factors for a popularity model) are returned as
    ``{metric: reason}`` and recorded as ``attack.missing.<metric>`` tags, so a sweep keeps going.
    """
    if not attacks:
        return {}, {}
    from privrec.attacks import AttackTarget

    target = AttackTarget(original=split.train, released=treated.data, test=split.test, model=model,
                          withheld=treated.withheld if treated.withheld is not None and treated.withheld.any()
                          else None)
    metrics: dict[str, float] = {}
    missing: dict[str, str] = {}
    for (name, attack), child in zip(attacks.items(), rng.spawn(len(attacks))):
        result = attack.run(target, rng=child)
        metrics.update({f"attack/{k}": float(v) for k, v in result.metrics.items()})
        missing.update({k: str(v) for k, v in result.missing.items()})
    return metrics, missing


def build_model(cfg: Mapping[str, Any]) -> Any:
    """The ``model`` node, given the ``fallback`` model when it takes one."""
    extra = {}
    if accepts(cfg["model"], "fallback"):
        extra["fallback"] = build(cfg.get("fallback") or {"_target_": "privrec.models.Popularity"}, name="fallback")
    return build(cfg["model"], name="model", **extra)


def default_run_name(cfg: Mapping[str, Any]) -> str:
    """``<treatment> <model> seed=<seed>`` from the config's classes, e.g. ``ConsentDrop ALS seed=0``."""
    def name(section: str) -> str:
        target = (cfg.get(section) or {}).get("_target_", "") if isinstance(cfg.get(section), Mapping) else ""
        return str(target).rsplit(".", 1)[-1] or section
    return f"{name('privacy')} {name('model')} seed={cfg.get('seed', 0)}"


def safe_error(exc: BaseException) -> str:
    """An error description safe to log: privrec's own messages carry no record values; others may, so
    only their type is recorded."""
    if isinstance(exc, PrivRecError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__} (details in the console output; not logged, they may contain data)"


def _record(tracker: Tracker, cfg: Mapping, metrics: Mapping[str, float], report: PrivacyReport, table: Any,
            pre_stats: Mapping[str, float], data_sha: str, data_name: str, hydra_dir: Any) -> None:
    tracker.log_params(redact(flatten(cfg)))
    tracker.log_metrics(metrics)
    tracker.set_tags(provenance() | {"data.sha256": data_sha, "data.name": data_name,
                                     "privacy.transform": report.transform})
    import yaml  # PyYAML ships with hydra-core/omegaconf

    tracker.log_text(yaml.safe_dump(redact_tree(dict(cfg)), sort_keys=False), artifact_file="config/resolved.yaml")
    tracker.log_text(json.dumps(report.to_dict(), indent=2, sort_keys=True), artifact_file="privacy_report.json")
    tracker.log_text(table.to_csv(float_format="%.6g"), artifact_file="segment_metrics.csv")
    tracker.log_text(json.dumps(dict(pre_stats), indent=2), artifact_file="preprocess_stats.json")
    if hydra_dir is not None and Path(hydra_dir).is_dir():
        tracker.log_artifact(hydra_dir, artifact_path=".hydra")


_SECRET_KEYS = ("key", "secret", "password", "token")


def _secret(name: str) -> bool:
    return name.rsplit(".", 1)[-1].lower() in _SECRET_KEYS


def redact(params: Mapping[str, str]) -> dict[str, str]:
    """Flattened params with secrets (``privacy.key``, ...) replaced by ``<redacted>`` when set."""
    return {k: ("<redacted>" if _secret(k) and v != "null" else v) for k, v in params.items()}


def redact_tree(node: Any) -> Any:
    """The same redaction on a nested config."""
    if isinstance(node, Mapping):
        return {k: ("<redacted>" if _secret(str(k)) and v is not None else redact_tree(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [redact_tree(v) for v in node]
    return node


def provenance() -> dict[str, str]:
    """Code version, library versions, BLAS info and (from a checkout) the git commit and dirty flag.

    Computed once per process (~30 ms of subprocess and metadata lookups): the code a process runs is the
    code it imported, so every run of a sweep worker records the same provenance."""
    return dict(_provenance())


@functools.cache
def _provenance() -> dict[str, str]:
    import privrec

    tags = {"privrec.version": privrec.__version__, "python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            tags[f"lib.{lib}"] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    try:
        from threadpoolctl import threadpool_info

        tags["blas"] = "; ".join(
            f"{i.get('internal_api')} {i.get('version')} threads={i.get('num_threads')}"
            for i in threadpool_info() if i.get("user_api") == "blas"
        ) or "none loaded"
    except Exception:  # pragma: no cover - informational only
        tags["blas"] = "unknown"
    tags.update(git_state(Path(__file__).resolve().parent))
    return tags


def git_state(path: Path) -> dict[str, str]:
    """``git.commit`` and ``git.dirty`` when ``path`` is inside a git checkout, else nothing."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                               capture_output=True, text=True, timeout=5)
        return {"git.commit": commit.stdout.strip(), "git.dirty": str(bool(dirty.stdout.strip())).lower()}
    except (OSError, subprocess.SubprocessError):
        return {}
