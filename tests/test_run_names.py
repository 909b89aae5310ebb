"""Readable run names: a sweep job is named by the values that vary across its sweep, a parent by its preset or
overrides; names are deterministic given the config. Plus the params/tags split and the dataset input a run
records (unit level; tests/test_sweep_output.py checks the same on real sweeps)."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pandas as pd
import pytest

from privrec.data.dataset import Dataset, Vocabulary
from privrec.data.digest import Source, manifest_sha256
from privrec.experiment import (
    HARNESS_KEYS,
    LoadedData,
    _params_and_harness_tags,
    config_sha256,
    default_run_name,
    failed_record,
    input_dataset,
)
from privrec.tracking.hydra_callback import (
    parent_run_name,
    short_labels,
    swept_keys,
    swept_values,
    varying_keys,
)

CFG = {"privacy": {"_target_": "privrec.privacy.ConsentDrop", "rate": 0.3, "mechanism": "random"},
       "model": {"_target_": "privrec.models.ALS", "factors": 8}, "seed": 1, "data_dir": "/home/me/data",
       "progress": True, "parallel_attacks": "auto", "resume": False, "run_name": None,
       "tracking": {"enabled": True, "experiment": "privrec", "tracking_uri": "sqlite:////home/me/mlflow.db"}}


def test_a_single_run_keeps_its_readable_name():
    assert default_run_name(CFG) == "ConsentDrop ALS seed=1"
    assert default_run_name({**CFG, "seed": 0}) == "ConsentDrop ALS seed=0"


def test_a_sweep_job_is_named_by_its_swept_values_then_model_and_seed():
    swept = [("rate", "0.3"), ("mechanism", "random"), ("seed", "1"), ("model", "als")]
    assert default_run_name(CFG, swept=swept) == "rate=0.3 mechanism=random ALS seed=1"
    # only the seed varies: the treatment names the run, as for a single run
    assert default_run_name(CFG, swept=[("seed", "1")]) == "ConsentDrop ALS seed=1"
    assert default_run_name(CFG, swept=swept) == default_run_name(dict(CFG), swept=list(swept))  # deterministic


def test_short_labels_are_the_last_component_unless_ambiguous():
    assert short_labels(["privacy.rate", "privacy.mechanism", "seed", "model"]) == {
        "privacy.rate": "rate", "privacy.mechanism": "mechanism", "seed": "seed", "model": "model"}
    assert short_labels(["privacy.steps.drop.rate", "privacy.steps.kanon.k", "split.rate"]) == {
        "privacy.steps.drop.rate": "privacy.steps.drop.rate", "privacy.steps.kanon.k": "k", "split.rate": "split.rate"}


def test_varying_keys_of_expanded_jobs():
    jobs = [["privacy.rate=0.1", "model=als", "seed=0"], ["privacy.rate=0.5", "model=als", "seed=0"],
            ["privacy.rate=0.1", "model=als", "seed=1"], ["privacy.rate=0.5", "model=als", "seed=1"]]
    assert varying_keys(jobs) == ["privacy.rate", "seed"]
    assert varying_keys([["seed=0"]]) == []


def test_swept_keys_of_sweep_overrides_before_expansion():
    overrides = ["privacy.rate=0.1,0.5", "model=als", "seed=range(3)", "privacy.k=choice(5)", "attack=none",
                 "+privacy.rates={F: 0.4, M: 0.1}", "evaluation.cutoffs=[5,10]", "broken=[1,"]
    assert swept_keys(overrides) == ["privacy.rate", "seed"]


def test_swept_values_of_one_job_redact_secrets():
    job = ["privacy.rate=0.3", "privacy.mechanism=random", "privacy.key=s3cret", "seed=1"]
    assert swept_values(job, ["privacy.mechanism", "privacy.rate", "privacy.key"]) == [
        ("mechanism", "random"), ("rate", "0.3"), ("key", "<redacted>")]
    assert swept_values(job, []) == []


def test_parent_is_named_after_the_preset_or_the_overrides():
    when = datetime.datetime(2026, 12, 1, 3, 40, 12)
    assert parent_run_name(["experiment=consent_tradeoff"], preset="consent_tradeoff", when=when) == \
        "consent_tradeoff 2026-12-01 03:40:12"
    overrides = ["privacy.rate=0,0.5", "model=als,bpr", "tracking.tracking_uri=sqlite:////x/mlflow.db",
                 "data_dir=/data", "hydra.launcher.n_jobs=2", "resume=true", "progress=false"]
    assert parent_run_name(overrides, when=when) == "rate=0,0.5 model=als,bpr 2026-12-01 03:40:12"
    assert parent_run_name(["experiment=kanon_tradeoff", "attack=none"], preset="kanon_tradeoff", when=when) == \
        "kanon_tradeoff attack=none 2026-12-01 03:40:12"
    assert parent_run_name([], when=when) == "sweep 2026-12-01 03:40:12"


def test_machine_local_values_are_tags_not_params():
    params, tags = _params_and_harness_tags(CFG)
    assert not {k for k in params if k.split(".")[0] in HARNESS_KEYS}
    assert tags == {"data_dir": "/home/me/data", "progress": "True", "parallel_attacks": "auto", "resume": "False",
                    "run_name": "null", "tracking.enabled": "True", "tracking.experiment": "privrec",
                    "tracking.tracking_uri": "sqlite:////home/me/mlflow.db"}
    assert params["privacy.rate"] == "0.3" and params["seed"] == "1"
    record = failed_record(CFG, ValueError("x"), start_time=1)
    assert "data_dir" in record.tags and "data_dir" not in record.params
    assert record.tags["mlflow.source.name"] == "privrec" and record.tags["mlflow.source.type"] == "LOCAL"
    # the config digest still ignores harness keys
    assert config_sha256(CFG) == config_sha256({**CFG, "data_dir": "/elsewhere", "progress": False})


def test_the_dataset_input_carries_the_full_checksum_and_no_record_values():
    data = Dataset(users=Vocabulary(np.array(["u1", "u2"])), items=Vocabulary(np.array([10, 20, 30])),
                   user_idx=np.array([0, 1, 1], dtype=np.int32), item_idx=np.array([0, 1, 2], dtype=np.int32),
                   weight=np.ones(3, dtype=np.float32), timestamp=np.array([5, 6, 7], dtype=np.int64),
                   user_attributes=pd.DataFrame({"gender": ["F", "M"], "age": [30, 40]}), name="tiny")
    sources = (Source("tiny/log.tsv", "aa" * 32), Source("tiny/users.tsv", "bb" * 32))
    loaded = LoadedData(data=data, stats={}, sha256=manifest_sha256(sources), preprocessed_sha256=data.checksum(),
                        sources=sources)
    d = input_dataset(loaded)
    assert d.name == "tiny" and d.digest == loaded.sha256[:36] and d.source_type == "local"
    assert json.loads(d.source) == {"uri": "tiny/log.tsv, tiny/users.tsv"}
    assert json.loads(d.profile) == {"sha256": loaded.sha256, "sources": {"tiny/log.tsv": "aa" * 32,
                                                                          "tiny/users.tsv": "bb" * 32}}
    assert [(c["name"], c["type"]) for c in json.loads(d.schema)["mlflow_colspec"]] == [
        ("user_id", "string"), ("item_id", "long"), ("weight", "float"), ("timestamp", "long"),
        ("user.gender", "string"), ("user.age", "long")]
    assert dict(d.tags) == {"mlflow.data.context": "training",
                            "privrec.data.preprocessed_sha256": data.checksum()}
    assert "u1" not in repr(d) and "u2" not in repr(d)  # ids never leave the dataset


@pytest.mark.parametrize("key", ["privacy.key", "tracking.token"])
def test_secrets_are_redacted_in_params_and_harness_tags(key):
    section, name = key.split(".")
    cfg = {**CFG, section: {**dict(CFG.get(section) or {}), name: "s3cret"}}
    record = failed_record(cfg, ValueError("x"), start_time=1)
    assert "s3cret" not in json.dumps(dict(record.params)) + json.dumps(dict(record.tags))
    assert "<redacted>" in json.dumps(dict(record.params)) + json.dumps(dict(record.tags))
