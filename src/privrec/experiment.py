"""``run(cfg) -> RunRecord``: the pure pipeline (no Hydra import, no tracker, no store).

load -> preprocess -> split -> privacy treatment (train part only) -> fit -> evaluate against the true
held-out behaviour of every user (consented and opted-out alike) -> attacks. :func:`run` returns a frozen
:class:`~privrec.tracking.record.RunRecord` (params, metrics, tags and the content of every artifact, the
``.hydra`` files included, captured while the run happens); writing it into a store is the caller's business
(:func:`privrec.tracking.write_record`). :func:`plan` builds and validates every component first, so a bad
config fails before any work; :func:`failed_record` is the record of a run that raised.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from privrec.config import accepts, build, flatten
from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, PrivRecError
from privrec.random import streams
from privrec.tracking.record import RunRecord, now_ms

__all__ = ["STAGES", "Plan", "config_sha256", "default_run_name", "failed_record", "is_secret", "load_data",
           "plan", "run", "segments_for"]

STAGES = ("load", "split", "privacy", "fit", "evaluate", "attack", "record")
_LIBRARIES = ("implicit", "numpy", "scipy", "pandas", "mlflow", "hydra-core", "threadpoolctl")
#: Keys that say where and how a run is recorded or shown, not what it computes: left out of the config digest.
HARNESS_KEYS = ("tracking", "progress", "parallel_attacks", "resume", "data_dir", "run_name")


_DATA_CACHE: dict[tuple[str, str, str], tuple[Dataset, dict[str, float]]] = {}


def load_data(
    dataset_cfg: Mapping, preprocess_cfg: Mapping | None, data_dir: str | os.PathLike
) -> tuple[Dataset, dict]:
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


@dataclass(frozen=True)
class Plan:
    """A validated config with every component built (nothing computed yet)."""

    cfg: Mapping[str, Any]
    splitter: Any
    transform: Any
    model: Any
    attacks: Mapping[str, Any]
    cutoffs: tuple[int, ...]
    segment_by: tuple[str, ...]
    batch_size: int


def plan(cfg: Mapping[str, Any] | Plan) -> Plan:
    """Build and check every component of ``cfg`` (a plan is returned as is); ConfigError before any work."""
    if isinstance(cfg, Plan):
        return cfg
    cfg = dict(cfg)
    eval_cfg = dict(cfg.get("evaluation") or {})
    try:
        cutoffs = tuple(int(k) for k in eval_cfg.get("cutoffs", (10, 20)))
    except (TypeError, ValueError):
        raise ConfigError(f"evaluation.cutoffs must be a list of positive integers; got "
                          f"{eval_cfg.get('cutoffs')!r}.") from None
    if not cutoffs or min(cutoffs) < 1:
        raise ConfigError(f"evaluation.cutoffs must be positive integers; got {list(cutoffs)}.")
    return Plan(cfg=cfg, splitter=build(cfg["split"], name="split"), transform=build(cfg["privacy"], name="privacy"),
                model=build_model(cfg), attacks=build(cfg.get("attack") or {}, name="attack"), cutoffs=cutoffs,
                segment_by=tuple(eval_cfg.get("segment_by") or ()), batch_size=int(eval_cfg.get("batch_size", 2048)))


def run(
    cfg: Mapping[str, Any] | Plan,
    *,
    hydra_files: Mapping[str, str] | None = None,
    on_stage: Callable[[str], None] | None = None,
    attack_executor: Any = None,
) -> RunRecord:
    """Run one experiment from a resolved config mapping (see ``conf/config.yaml`` for the keys) or a
    :class:`Plan`, and return its record.

    ``hydra_files``: artifact name -> text of the job's Hydra files (``.hydra/config.yaml``...), recorded
    as they were when the job started. ``attack_executor`` (:class:`privrec.speed.AttackExecutor`): compute
    the attacks in that process while this one evaluates - same metrics, less wall time on a free core."""
    p = plan(cfg)
    cfg = p.cfg
    start = now_ms()
    stage = on_stage or (lambda _name: None)
    rngs = streams(cfg.get("seed", 0))
    timings: dict[str, float] = {}

    t = time.perf_counter()
    stage("load")
    data, pre_stats = load_data(cfg["dataset"], cfg.get("preprocess"), cfg.get("data_dir", "data"))
    data_sha = data.checksum()
    timings["load"] = time.perf_counter() - t

    t = time.perf_counter()
    stage("split")
    split = p.splitter.split(data, rng=rngs.split)
    timings["split"] = time.perf_counter() - t

    t = time.perf_counter()
    stage("privacy")
    treated = p.transform.apply(split.train, rng=rngs.privacy)
    timings["privacy"] = time.perf_counter() - t

    t = time.perf_counter()
    stage("fit")
    model = p.model.fit(treated.data, rng=rngs.model)
    timings["fit"] = time.perf_counter() - t

    in_executor = attack_executor is not None and bool(p.attacks)
    if in_executor:
        attack_executor.submit(p.attacks, split, treated, model, rngs.attack)

    t = time.perf_counter()
    stage("evaluate")
    from privrec.evaluation import evaluate

    segments = segments_for(split.train, treated.withheld, list(p.segment_by))
    true_popularity = (split.train.to_csr(binary=True).sum(axis=0).A1 / max(1, split.train.n_users))
    evaluation = evaluate(model, treated.data, split.test, cutoffs=p.cutoffs, segments=segments,
                          item_popularity=true_popularity, batch_size=p.batch_size)
    timings["evaluate"] = time.perf_counter() - t

    t = time.perf_counter()
    stage("attack")
    if in_executor:  # its own compute time (it ran alongside evaluation)
        attack_metrics, attack_missing, timings["attack"] = attack_executor.result()
    else:
        attack_metrics, attack_missing = run_attacks(p.attacks, split, treated, model, rngs.attack)
        timings["attack"] = time.perf_counter() - t

    stage("record")
    metrics = dict(evaluation.to_metrics(prefix="eval"))
    metrics.update(attack_metrics)
    metrics.update({f"privacy/{k}": float(v) for k, v in treated.report.metrics.items()})
    model_report = _model_privacy_report(model)
    if model_report is not None:
        metrics.update({f"privacy/model/{k}": float(v) for k, v in model_report.metrics.items()})
    metrics.update({f"data/{k}": float(v) for k, v in data.summary().items()})
    metrics["data/test_users"] = float((split.test.user_counts > 0).sum())
    metrics["data/train_interactions"] = float(split.train.n_interactions)
    metrics["data/released_interactions"] = float(treated.data.n_interactions)
    metrics["model/fallback_users"] = float(getattr(model, "n_fallback_users_", 0))
    metrics.update({f"time/{k}_s": v for k, v in timings.items()})
    tags = {**_base_tags(cfg), "data.sha256": data_sha, "data.name": data.name,
            "privacy.transform": treated.report.transform,
            **{f"attack.missing.{k}": v for k, v in attack_missing.items()}}
    artifacts = {**_config_artifacts(cfg, hydra_files),
                 "privacy_report.json": json.dumps(treated.report.to_dict(), indent=2, sort_keys=True),
                 "segment_metrics.csv": evaluation.table().to_csv(float_format="%.6g"),
                 "preprocess_stats.json": json.dumps(dict(pre_stats), indent=2)}
    if model_report is not None:
        artifacts["model_privacy_report.json"] = json.dumps(model_report.to_dict(), indent=2, sort_keys=True)
    return RunRecord(run_name=_run_name(cfg), status="FINISHED", start_time=start, end_time=now_ms(),
                     params=redact(flatten(cfg)), metrics=metrics, tags=tags, artifacts=artifacts)


def failed_record(cfg: Mapping[str, Any], error: BaseException, *, start_time: int,
                  hydra_files: Mapping[str, str] | None = None) -> RunRecord:
    """The record of a run that raised ``error``: its config, provenance and a one-line error safe to log."""
    cfg = dict(cfg.cfg if isinstance(cfg, Plan) else cfg)
    return RunRecord(run_name=_run_name(cfg), status="FAILED", start_time=start_time, end_time=now_ms(),
                     params=redact(flatten(cfg)), tags={**_base_tags(cfg), "error": safe_error(error)},
                     artifacts=_config_artifacts(cfg, hydra_files))


def config_sha256(cfg: Mapping[str, Any]) -> str:
    """Digest of what a run computes: the resolved config without :data:`HARNESS_KEYS`, secrets redacted."""
    kept = {k: v for k, v in dict(cfg).items() if k not in HARNESS_KEYS}
    text = json.dumps(redact_tree(kept), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _run_name(cfg: Mapping[str, Any]) -> str:
    return str(cfg.get("run_name") or default_run_name(cfg))


def _base_tags(cfg: Mapping[str, Any]) -> dict[str, str]:
    return {**provenance(), "privrec.config_sha256": config_sha256(cfg)}


def _config_artifacts(cfg: Mapping[str, Any], hydra_files: Mapping[str, str] | None) -> dict[str, str]:
    import yaml  # PyYAML ships with hydra-core/omegaconf

    out = {"config/resolved.yaml": yaml.safe_dump(redact_tree(dict(cfg)), sort_keys=False)}
    out.update({f".hydra/{name}": text for name, text in (hydra_files or {}).items()})
    return out


def _model_privacy_report(model: Any) -> Any:
    """The model's own privacy report, when it is itself a privacy mechanism (else None)."""
    report = getattr(model, "privacy_report", None)
    return report() if callable(report) else None


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
    for attack, child in zip(attacks.values(), rng.spawn(len(attacks)), strict=True):
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
    if isinstance(exc, KeyboardInterrupt):
        return "KeyboardInterrupt: interrupted by the user (Ctrl-C)"
    return f"{type(exc).__name__} (details in the console output; not logged, they may contain data)"


_SECRET_KEYS = ("key", "secret", "password", "token")


def is_secret(name: str) -> bool:
    """Whether a config key holds a secret (its last part is key, secret, password or token)."""
    return name.rsplit(".", 1)[-1].lower() in _SECRET_KEYS


def redact(params: Mapping[str, str]) -> dict[str, str]:
    """Flattened params with secrets (``privacy.key``, ...) replaced by ``<redacted>`` when set."""
    return {k: ("<redacted>" if is_secret(k) and v != "null" else v) for k, v in params.items()}


def redact_tree(node: Any) -> Any:
    """The same redaction on a nested config."""
    if isinstance(node, Mapping):
        return {k: ("<redacted>" if is_secret(str(k)) and v is not None else redact_tree(v)) for k, v in node.items()}
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
        with contextlib.suppress(metadata.PackageNotFoundError):
            tags[f"lib.{lib}"] = metadata.version(lib)
    try:
        from threadpoolctl import threadpool_info

        tags["blas"] = "; ".join(
            f"{i.get('internal_api')} {i.get('version')} threads={i.get('num_threads')}"
            for i in threadpool_info() if i.get("user_api") == "blas"
        ) or "none loaded"
    except Exception:  # noqa: BLE001  # pragma: no cover - informational only: a failing BLAS probe must not fail a run
        tags["blas"] = "unknown"
    tags.update(git_state(Path(__file__).resolve().parent))
    return tags


def git_state(path: Path) -> dict[str, str]:
    """``git.commit`` and ``git.dirty`` when ``path`` is inside a git checkout, else nothing."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5,
                                check=False)
        if commit.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                               capture_output=True, text=True, timeout=5, check=False)
        return {"git.commit": commit.stdout.strip(), "git.dirty": str(bool(dirty.stdout.strip())).lower()}
    except (OSError, subprocess.SubprocessError):
        return {}
