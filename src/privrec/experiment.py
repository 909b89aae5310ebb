"""``run(cfg) -> RunRecord``: the pure pipeline (no Hydra import, no tracker, no store).

load -> preprocess -> split -> privacy treatment (train part only) -> [tuning on the treated training data
only, ``tuning=grid``: :mod:`privrec.tuning`] -> fit -> evaluate against the true held-out behaviour of every
user (consented and opted-out alike; ``evaluation.exclude`` says whether the released profile's items are
candidates) -> attacks. :func:`run` returns a frozen
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
import logging
import os
import platform
import subprocess
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from privrec import memory, progress
from privrec.config import accepts, build, flatten
from privrec.data.dataset import Dataset, Schema
from privrec.data.digest import LoadResult, Source
from privrec.errors import ConfigError, PrivRecError
from privrec.random import STREAM_NAMES, streams
from privrec.tracking.record import InputDataset, RunRecord, now_ms
from privrec.tuning import GridSearch, TuningResult
from privrec.tuning import from_config as tuning_from_config

__all__ = ["STAGES", "LoadedData", "Plan", "code_version", "config_sha256", "default_run_name", "failed_record",
           "fit_to_attributes", "input_dataset", "is_secret", "load_data", "load_inputs", "model_input", "plan", "run",
           "segments_for", "share_of_test_in_release", "tuning_rng"]

_LOG = logging.getLogger("privrec")
STAGES = ("load", "split", "privacy", "fit", "evaluate", "attack", "record")
_LIBRARIES = ("implicit", "numpy", "scipy", "pandas", "mlflow", "hydra-core", "threadpoolctl")
#: Keys that say where and how a run is recorded or shown, not what it computes: left out of the config digest.
HARNESS_KEYS = ("tracking", "progress", "parallel_attacks", "resume", "data_dir", "run_name")


@dataclass(frozen=True, eq=False)
class LoadedData:
    """A loaded, preprocessed dataset with the digests a run records.

    ``sha256`` (tag ``data.sha256``): the raw inputs as read from disk (:mod:`privrec.data.digest`);
    ``preprocessed_sha256`` (tag ``data.preprocessed_sha256``): :meth:`Dataset.checksum` of ``data``, after
    preprocessing (:meth:`privrec.data.Preprocess.digest`: with ``weight=bm25|tfidf``, whose weights are computed
    later on the training data, the digest of that checksum and the weighting's parameters); ``sources``: each
    input's label and SHA-256 (tag ``data.sources_sha256``)."""

    data: Dataset
    stats: Mapping[str, float]
    sha256: str
    preprocessed_sha256: str
    sources: tuple[Source, ...]


_DATA_CACHE: dict[tuple, LoadedData] = {}


def load_inputs(dataset_cfg: Mapping, preprocess_cfg: Mapping | None, data_dir: str | os.PathLike) -> LoadedData:
    """Load and preprocess a dataset, hashing its raw inputs once as they are read.

    Cached per process (datasets are immutable), so sweeps load once. The key holds the dataset and preprocess
    configs, the resolved ``data_dir`` and each input file's inode, size and modification/change times: a file
    edited in place is read (and hashed) again. A loader without ``read`` is hashed by what it returned."""
    loader = build(dataset_cfg, name="dataset")
    files = loader.input_files(data_dir) if hasattr(loader, "input_files") else ()
    key = (repr(dict(dataset_cfg)), repr(dict(preprocess_cfg or {})), str(Path(data_dir).resolve()),
           tuple(_file_state(Path(f)) for f in files))
    if key not in _DATA_CACHE:
        if hasattr(loader, "read"):
            result = loader.read(data_dir)
        else:
            raw = loader.load(data_dir)
            result = LoadResult(data=raw, sources=(Source("dataset", raw.checksum()),))
        data, stats = result.data, {}
        digest = data.checksum
        if preprocess_cfg:
            pre = build(preprocess_cfg, name="preprocess")
            data, stats = pre.apply(data)
            digest = functools.partial(pre.digest, data) if hasattr(pre, "digest") else data.checksum
        _DATA_CACHE.clear()  # keep one dataset in memory at a time
        _DATA_CACHE[key] = LoadedData(data=data, stats=stats, sha256=result.sha256,
                                      preprocessed_sha256=digest(), sources=result.sources)
    return _DATA_CACHE[key]


def _file_state(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return (str(path),)
    return (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def load_data(
    dataset_cfg: Mapping, preprocess_cfg: Mapping | None, data_dir: str | os.PathLike
) -> tuple[Dataset, dict]:
    """The dataset and preprocessing stats of :func:`load_inputs` (same cache)."""
    loaded = load_inputs(dataset_cfg, preprocess_cfg, data_dir)
    return loaded.data, dict(loaded.stats)


def model_input(cfg: Mapping[str, Any], train: Dataset) -> Dataset:
    """The training data with the weights the model sees: ``preprocess.weight=bm25|tfidf`` are computed here,
    on the (treated) training data, not on everything (:meth:`privrec.data.Preprocess.model_input`)."""
    pre_cfg = cfg.get("preprocess")
    if not pre_cfg:
        return train
    pre = build(pre_cfg, name="preprocess")
    return pre.model_input(train) if hasattr(pre, "model_input") else train


def segments_for(train: Dataset, withheld: np.ndarray | None, attributes: list[str], *,
                 evaluated: np.ndarray | None = None, min_users: int | None = None) -> dict[str, np.ndarray]:
    """The segments a run publishes: consent groups over user indices and one segment per attribute value,
    none with fewer than ``min_users`` ``evaluated`` users (:func:`privrec.evaluation.published_segments`:
    small values merged into ``<attr>=other``, small consent groups dropped, one DataWarning with counts).

    ``evaluated``: the users with test data (default: all); ``min_users``: ``evaluation.min_segment_users``
    (default :data:`privrec.evaluation.MIN_SEGMENT_USERS`, 20)."""
    from privrec.evaluation import MIN_SEGMENT_USERS, published_segments

    # counts, not Dataset.user_counts: filling that cached property races with the attack process pickling train
    had_data = np.bincount(train.user_idx, minlength=train.n_users) > 0
    consent = {}
    if withheld is not None:
        consent["consented"] = had_data & ~withheld
        consent["opted_out"] = withheld.copy()
    return published_segments(train, attributes, groups=consent, counted=evaluated,
                              min_users=MIN_SEGMENT_USERS if min_users is None else min_users)


@dataclass(frozen=True)
class Plan:
    """A validated config with every component built (nothing computed yet).

    ``tuner``: the ``tuning`` node (``None`` for ``tuning=none``); ``exclude_seen``: ``evaluation.exclude``
    (``released``: true)."""

    cfg: Mapping[str, Any]
    splitter: Any
    transform: Any
    model: Any
    attacks: Mapping[str, Any]
    cutoffs: tuple[int, ...]
    segment_by: tuple[str, ...]
    batch_size: int
    tuner: GridSearch | None = None
    exclude_seen: bool = True
    #: tag -> reason for what the data's user attributes cannot give (``eval.missing.segment_by.<attr>``,
    #: ``attack.missing.<metric>``); filled by :func:`fit_to_attributes`.
    missing: Mapping[str, str] = field(default_factory=dict)


#: ``evaluation.exclude`` -> whether evaluation removes the items of a user's released profile from the candidates.
EXCLUDE_CHOICES = {"released": True, "none": False}


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
    from privrec.evaluation import check_max_users, check_min_segment_users

    if "min_segment_users" in eval_cfg:
        check_min_segment_users(eval_cfg["min_segment_users"])
    check_max_users(eval_cfg.get("max_users"))
    exclude = eval_cfg.get("exclude", "released")
    if not isinstance(exclude, str) or exclude not in EXCLUDE_CHOICES:
        raise ConfigError(f"evaluation.exclude must be one of {list(EXCLUDE_CHOICES)}; got {exclude!r}.")
    splitter, transform = build(cfg["split"], name="split"), build(cfg["privacy"], name="privacy")
    model, attacks = build_model(cfg), build(cfg.get("attack") or {}, name="attack")
    tuner = tuning_from_config(cfg.get("tuning"), cutoffs=cutoffs)
    if tuner is not None:
        tuner.candidates(model)  # a grid the model cannot take fails here, before any work
    p = Plan(cfg=cfg, splitter=splitter, transform=transform, model=model, attacks=attacks, cutoffs=cutoffs,
             segment_by=tuple(eval_cfg.get("segment_by") or ()), batch_size=int(eval_cfg.get("batch_size", 2048)),
             tuner=tuner, exclude_seen=EXCLUDE_CHOICES[exclude])
    if cfg.get("dataset") is not None:  # a bad dataset node (dataset.path unset) fails here too
        loader = build(cfg["dataset"], name="dataset")
        known = loader.known_attributes() if hasattr(loader, "known_attributes") else None
        if known is not None:  # the attributes are known without reading: decide now, before any work
            p = fit_to_attributes(p, *known)
    return p


def fit_to_attributes(p: Plan, columns: Collection[str], schema: Schema) -> Plan:
    """``p`` for data whose user attributes are ``columns`` (with ``schema``): what needs an attribute the data
    does not have is skipped and recorded, never an error after the work.

    - an attribute of ``evaluation.segment_by`` that is not a column: no segments, tag
      ``eval.missing.segment_by.<attr>``;
    - an attack whose ``missing_metrics(columns, schema)`` names metrics (attribute inference of an absent
      attribute, re-identification with demographics on data without quasi-identifiers): not run, its
      metrics tagged ``attack.missing.<metric>``;
    - a treatment or model that cannot work without them (k-anonymity of quasi-identifiers, opt-out by
      attribute, explicit demographic attributes): :class:`~privrec.errors.ConfigError`, one line.

    One INFO log line says what was skipped (attribute names only). Idempotent: a run calls it at plan time
    when the loader knows its attributes without reading (``known_attributes()``), else after loading,
    before the split."""
    have = {str(c) for c in columns}
    for key, needed in _attribute_needs(p, schema):
        absent = sorted(a for a in needed if a not in have)
        if absent or not needed:
            raise ConfigError(
                f"{key} needs user attributes the data does not have; got "
                f"{f'{len(absent)} missing: {absent}' if needed else 'none named (the dataset schema has none)'}, "
                f"columns are {sorted(have)}. Load an attribute table (dataset.user_attributes_path) or choose "
                "another treatment."
            )
    missing = dict(p.missing)
    segment_by = tuple(a for a in p.segment_by if a in have)
    dropped = [a for a in p.segment_by if a not in have]
    missing.update({f"eval.missing.segment_by.{a}": f"the data has no user attribute {a!r}." for a in dropped})
    attacks: dict[str, Any] = {}
    skipped = []
    for name, attack in p.attacks.items():
        lacking = attack.missing_metrics(list(have), schema) if hasattr(attack, "missing_metrics") else {}
        if lacking:
            skipped.append(name)
            missing.update({f"attack.missing.{k}": str(v) for k, v in lacking.items()})
        else:
            attacks[name] = attack
    if dropped or skipped:
        parts = ([f"evaluation.segment_by skips {dropped}"] if dropped else []) + (
            [f"attacks {skipped} are recorded as missing"] if skipped else [])
        _LOG.info("the data has %d user-attribute columns: %s (tags eval.missing.*, attack.missing.*).",
                  len(have), "; ".join(parts))
    return replace(p, segment_by=segment_by, attacks=attacks, missing=missing)


def _attribute_needs(p: Plan, schema: Schema) -> list[tuple[str, tuple[str, ...]]]:
    """(config key, attributes it needs) for the treatment and model of ``p`` that cannot run without user
    attributes; an empty tuple when it needs some but none are named (neither in its config nor the schema)."""
    from privrec.models import DemographicPopularity
    from privrec.privacy import Chain, ConsentDrop, KAnonymity

    needs: list[tuple[str, tuple[str, ...]]] = []
    transform = p.transform
    steps = ({f"privacy.steps.{k}": v for k, v in transform.steps.items()} if isinstance(transform, Chain)
             else {"privacy": transform})
    for key, step in steps.items():
        if isinstance(step, KAnonymity):
            qis = tuple(step.quasi_identifiers if step.quasi_identifiers is not None else schema.quasi_identifiers)
            needs.append((f"{key}.quasi_identifiers", qis))
            if step.sensitive is not None:
                needs.append((f"{key}.sensitive", (step.sensitive,)))
        elif isinstance(step, ConsentDrop) and step.mechanism == "attribute" and step.attribute:
            needs.append((f"{key}.attribute", (step.attribute,)))
    for key, model in (("model", p.model), ("fallback", getattr(p.model, "fallback", None))):
        if isinstance(model, DemographicPopularity) and model.attributes is not None:
            needs.append((f"{key}.attributes", tuple(model.attributes)))
    return needs


def tuning_rng(seed: int) -> np.random.Generator:
    """The run's tuning stream: the child of ``seed`` that appending ``"tuning"`` to
    :data:`privrec.random.STREAM_NAMES` would give, so every other stream is unchanged by tuning."""
    child = np.random.SeedSequence(int(seed), spawn_key=(len(STREAM_NAMES),))
    return np.random.Generator(np.random.PCG64(child))


def share_of_test_in_release(released: Dataset, test: Dataset) -> float:
    """The share of (distinct) test interactions that the released training profiles already contain: the
    test items that ``evaluation.exclude=released`` removes from the candidates, so they count as misses.
    NaN without test interactions."""
    test_csr = test.to_csr(binary=True)
    if test_csr.nnz == 0:
        return float("nan")
    return released.to_csr(binary=True).multiply(test_csr).nnz / test_csr.nnz


def run(
    cfg: Mapping[str, Any] | Plan,
    *,
    hydra_files: Mapping[str, str] | None = None,
    on_stage: Callable[[str], None] | None = None,
    attack_executor: Any = None,
    swept: Sequence[tuple[str, str]] = (),
    available_memory: int | None = None,
) -> RunRecord:
    """Run one experiment from a resolved config mapping (see ``conf/config.yaml`` for the keys) or a
    :class:`Plan`, and return its record.

    ``hydra_files``: artifact name -> text of the job's Hydra files (``.hydra/config.yaml``...), recorded
    as they were when the job started. ``attack_executor`` (:class:`privrec.speed.AttackExecutor`): compute
    the attacks in that process while this one evaluates - same metrics, less wall time on a free core.
    ``swept``: a sweep job's ``(key, value)`` of the overrides that vary across the sweep (they lead its name,
    :func:`default_run_name`). ``available_memory``: bytes the run may use (default: what the machine has,
    :func:`privrec.memory.available_bytes`); the memory estimate is checked against it right after loading,
    before any other work (:mod:`privrec.memory`)."""
    p = plan(cfg)
    cfg = p.cfg
    start = now_ms()
    stage = on_stage or (lambda _name: None)
    progress.configure(cfg.get("progress", True) is not False)  # bars and lines inside stages (privrec.progress)
    rngs = streams(cfg.get("seed", 0))
    timings: dict[str, float] = {}

    t = time.perf_counter()
    stage("load")
    loaded = load_inputs(cfg["dataset"], cfg.get("preprocess"), cfg.get("data_dir", "data"))
    data, pre_stats = loaded.data, loaded.stats
    timings["load"] = time.perf_counter() - t

    p = fit_to_attributes(p, list(data.user_attributes.columns), data.schema)  # before any work on the data
    memory.check(memory.estimate(p, data, parallel_attacks=attack_executor is not None),  # logged; raises if short
                 available=available_memory)

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
    fit_data = model_input(cfg, treated.data)  # BM25/TF-IDF weights: computed on the treated training data only
    tuned: TuningResult | None = None
    if p.tuner is not None:  # choose on the treated training data only; the test split is never passed
        tuned = p.tuner.tune(p.model, treated.data, rng=tuning_rng(rngs.seed), exclude_seen=p.exclude_seen,
                             batch_size=p.batch_size, prepare=lambda d: model_input(cfg, d))
        timings["tune"] = time.perf_counter() - t
        t = time.perf_counter()
    model = (p.model if tuned is None else tuned.model).fit(fit_data, rng=rngs.model)
    timings["fit"] = time.perf_counter() - t

    in_executor = attack_executor is not None and bool(p.attacks)
    if in_executor:
        attack_executor.submit(progress.carry(p.attacks), split, treated, model, rngs.attack)

    t = time.perf_counter()
    stage("evaluate")
    from privrec.evaluation import evaluate, sample_users

    # users with test data, or evaluation.max_users of them at random (rngs.eval); bincount inside, not the
    # cached Dataset.user_counts: filling it would race with the attack process pickling split
    eval_users = sample_users(split.test, max_users=(cfg.get("evaluation") or {}).get("max_users"), rng=rngs.eval)
    evaluated = np.zeros(split.test.n_users, dtype=bool)
    evaluated[eval_users] = True
    segments = segments_for(split.train, treated.withheld, list(p.segment_by), evaluated=evaluated,
                            min_users=(cfg.get("evaluation") or {}).get("min_segment_users"))
    true_popularity = (split.train.to_csr(binary=True).sum(axis=0).A1 / max(1, split.train.n_users))
    evaluation = evaluate(model, treated.data, split.test, cutoffs=p.cutoffs, segments=segments,
                          item_popularity=true_popularity, batch_size=p.batch_size, exclude_seen=p.exclude_seen,
                          users=eval_users)
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
    metrics["data/test_in_release_share"] = share_of_test_in_release(treated.data, split.test)
    if tuned is not None:
        metrics.update(tuned.to_metrics())
    metrics["model/fallback_users"] = float(getattr(model, "n_fallback_users_", 0))
    metrics.update({f"time/{k}_s": v for k, v in timings.items()})
    tags = {**_base_tags(cfg), "data.sha256": loaded.sha256, "data.preprocessed_sha256": loaded.preprocessed_sha256,
            "data.sources_sha256": json.dumps({s.label: s.sha256 for s in loaded.sources}, separators=(",", ":")),
            "data.name": data.name,
            "privacy.transform": treated.report.transform,
            **{f"attack.missing.{k}": v for k, v in attack_missing.items()}, **p.missing}
    artifacts = {**_config_artifacts(cfg, hydra_files),
                 "privacy_report.json": json.dumps(treated.report.to_dict(), indent=2, sort_keys=True),
                 "segment_metrics.csv": evaluation.table().to_csv(float_format="%.6g"),
                 "preprocess_stats.json": json.dumps(dict(pre_stats), indent=2)}
    if model_report is not None:
        artifacts["model_privacy_report.json"] = json.dumps(model_report.to_dict(), indent=2, sort_keys=True)
        tags["privacy.model"] = model_report.transform
        units = sorted(model_report.groups.get("unit", {}))  # a DP model names its privacy unit (user, interaction)
        if units:
            tags["privacy.model.unit"] = ",".join(units)
    params, harness = _params_and_harness_tags(cfg)
    if tuned is not None:  # what was fitted; model.* stays what was configured
        params.update(tuned.to_params())
        artifacts["tuning.json"] = tuned.to_json()
    return RunRecord(run_name=_run_name(cfg, swept), status="FINISHED", start_time=start, end_time=now_ms(),
                     params=redact(params), metrics=metrics, tags={**tags, **harness}, artifacts=artifacts,
                     datasets=(input_dataset(loaded),))


def failed_record(cfg: Mapping[str, Any], error: BaseException, *, start_time: int,
                  hydra_files: Mapping[str, str] | None = None, swept: Sequence[tuple[str, str]] = ()) -> RunRecord:
    """The record of a run that raised ``error``: its config, provenance and a one-line error safe to log."""
    cfg = dict(cfg.cfg if isinstance(cfg, Plan) else cfg)
    params, harness = _params_and_harness_tags(cfg)
    return RunRecord(run_name=_run_name(cfg, swept), status="FAILED", start_time=start_time, end_time=now_ms(),
                     params=redact(params), tags={**_base_tags(cfg), **harness, "error": safe_error(error)},
                     artifacts=_config_artifacts(cfg, hydra_files))


def config_sha256(cfg: Mapping[str, Any]) -> str:
    """Digest of what a run computes: the resolved config without :data:`HARNESS_KEYS`, secrets redacted."""
    kept = {k: v for k, v in dict(cfg).items() if k not in HARNESS_KEYS}
    text = json.dumps(redact_tree(kept), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _run_name(cfg: Mapping[str, Any], swept: Sequence[tuple[str, str]] = ()) -> str:
    return str(cfg.get("run_name") or default_run_name(cfg, swept=swept))


def _base_tags(cfg: Mapping[str, Any]) -> dict[str, str]:
    return {**provenance(), "privrec.config_sha256": config_sha256(cfg)}


def _params_and_harness_tags(cfg: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """The flattened config split in two: what the run computes (params) and :data:`HARNESS_KEYS` (where and how
    it is recorded or shown: ``data_dir``, ``tracking.tracking_uri``, ``progress``...), which are machine-local
    and so tags, under the same names (secrets redacted in both)."""
    params = flatten({k: v for k, v in dict(cfg).items() if k not in HARNESS_KEYS})
    harness = flatten({k: v for k, v in dict(cfg).items() if k in HARNESS_KEYS})
    return params, redact(harness)


def input_dataset(loaded: LoadedData) -> InputDataset:
    """The dataset a run read, as an MLflow dataset input: ``name`` the dataset's, ``digest`` the first 36 hex
    digits of ``data.sha256`` (the raw inputs' full SHA-256; 36 characters is MLflow's limit, and MLflow's own
    digest would hash only the first 10,000 elements), ``source`` the inputs as labelled relative to
    ``data_dir`` (never an absolute path), ``schema`` the columns (MLflow's colspec: ids, weight, timestamp,
    user attributes), ``profile`` the full ``sha256`` and each input's. The input's tags say how this run used
    it: ``mlflow.data.context=training`` and the preprocessed data's digest (preprocessing belongs to the run)."""
    data = loaded.data
    columns = [{"type": _colspec_type(data.users.ids.dtype), "name": "user_id", "required": True},
               {"type": _colspec_type(data.items.ids.dtype), "name": "item_id", "required": True},
               {"type": "float", "name": "weight", "required": True}]
    if data.timestamp is not None:
        columns.append({"type": "long", "name": "timestamp", "required": True})
    columns += [{"type": _colspec_type(dtype), "name": f"user.{name}", "required": False}
                for name, dtype in data.user_attributes.dtypes.items()]
    profile = {"sha256": loaded.sha256, "sources": {s.label: s.sha256 for s in loaded.sources}}
    return InputDataset(
        name=str(data.name)[:500], digest=loaded.sha256[:36], source_type="local",
        source=json.dumps({"uri": ", ".join(s.label for s in loaded.sources)}),
        schema=json.dumps({"mlflow_colspec": columns}), profile=json.dumps(profile, sort_keys=True),
        tags={"mlflow.data.context": "training", "privrec.data.preprocessed_sha256": loaded.preprocessed_sha256})


def _colspec_type(dtype: Any) -> str:
    """MLflow's colspec type name of a numpy/pandas dtype."""
    kind = getattr(dtype, "kind", "O")
    return {"b": "boolean", "i": "long", "u": "long", "f": "double", "M": "datetime"}.get(kind, "string")


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
                          else None, report=treated.report)
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


def default_run_name(cfg: Mapping[str, Any], *, swept: Sequence[tuple[str, str]] = ()) -> str:
    """A run's name from its config: ``<treatment> <model> seed=<seed>`` from the config's classes, e.g.
    ``ConsentDrop ALS seed=0``; a sweep job's name starts with the values that vary across its sweep instead of
    the treatment: ``swept`` = ``[("rate", "0.3"), ("mechanism", "random")]`` gives
    ``rate=0.3 mechanism=random ALS seed=1`` (labels as given; ``model`` and ``seed`` are always shown once)."""
    def name(section: str) -> str:
        target = (cfg.get(section) or {}).get("_target_", "") if isinstance(cfg.get(section), Mapping) else ""
        return str(target).rsplit(".", 1)[-1] or section
    shown = [f"{k}={v}" for k, v in swept if k not in ("model", "seed")]
    head = " ".join(shown) if shown else name("privacy")
    return f"{head} {name('model')} seed={cfg.get('seed', 0)}"


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


#: MLflow's standard tags of a run launched by privrec (the UI's "Source" and "User" columns).
SOURCE_NAME = "privrec"
SOURCE_TYPES = ("LOCAL", "JOB")  # MLflow's SourceType names: a single run / a sweep's job
#: Written into the wheel by ``hatch_build.py`` when the package is built from a git checkout.
BUILD_INFO_FILE = "_build_info.json"


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (some containers)
        return "unknown"


@functools.cache
def _provenance() -> dict[str, str]:
    import privrec

    tags = {"privrec.version": privrec.__version__, "python": platform.python_version(), "mlflow.user": _user(),
            "mlflow.source.name": SOURCE_NAME, "mlflow.source.type": SOURCE_TYPES[0]}
    for lib in _LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            tags[f"lib.{lib}"] = metadata.version(lib)
    try:
        from threadpoolctl import threadpool_info

        tags["blas"] = "; ".join(sorted({  # sorted: threadpoolctl lists libraries in the order they were loaded
            f"{i.get('internal_api')} {i.get('version')} threads={i.get('num_threads')}"
            for i in threadpool_info() if i.get("user_api") == "blas"
        })) or "none loaded"
    except Exception:  # noqa: BLE001  # pragma: no cover - informational only: a failing BLAS probe must not fail a run
        tags["blas"] = "unknown"
    tags.update(code_version(Path(__file__).resolve().parent))
    return tags


def code_version(package_dir: Path) -> dict[str, str]:
    """``git.commit``, ``git.dirty``, ``mlflow.source.git.commit`` and ``privrec.code_source``: from the live
    git state when ``package_dir`` is ``src/privrec`` of a git checkout (an editable install; ``checkout``),
    else from the build info ``hatch_build.py`` wrote into the wheel (``build``), else ``unknown``."""
    state = git_state(package_dir)
    source = "checkout"
    if not state:
        source = "build"
        try:
            info = json.loads((package_dir / BUILD_INFO_FILE).read_text(encoding="utf-8"))
            state = {"git.commit": str(info["git_commit"]), "git.dirty": str(bool(info.get("git_dirty"))).lower()}
        except (OSError, ValueError, KeyError, TypeError):
            return {"privrec.code_source": "unknown"}
    return {**state, "mlflow.source.git.commit": state["git.commit"], "privrec.code_source": source}


def git_state(path: Path) -> dict[str, str]:
    """``git.commit`` and ``git.dirty`` when ``path`` is ``src/privrec`` of a git checkout, else nothing (an
    installed copy inside some other repository, e.g. a virtualenv in a project folder, is not that checkout)."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=path, capture_output=True, text=True,
                             timeout=5, check=False)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() / "src" / "privrec" != path.resolve():
            return {}
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5,
                                check=False)
        if commit.returncode != 0:
            return {}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path,
                               capture_output=True, text=True, timeout=5, check=False)
        return {"git.commit": commit.stdout.strip(), "git.dirty": str(bool(dirty.stdout.strip())).lower()}
    except (OSError, subprocess.SubprocessError):
        return {}
