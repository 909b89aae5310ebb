"""The pure pipeline on real ML-100K: run(cfg) returns a frozen record and writes nothing anywhere."""

import numpy as np
import pytest

from privrec import experiment
from privrec.errors import ConfigError, DataValidationError
from privrec.tracking import RunRecord


def _cfg(data_dir, **over):
    cfg = {
        "seed": 0,
        "data_dir": str(data_dir),
        "dataset": {"_target_": "privrec.data.loaders.MovieLens100K"},
        "preprocess": {"_target_": "privrec.data.preprocess.Preprocess", "min_rating": None, "weight": "binary",
                       "user_core": 0, "item_core": 0, "duplicates": "max"},
        "split": {"_target_": "privrec.data.split.RandomHoldout", "fraction": 0.2},
        "privacy": {"_target_": "privrec.privacy.ConsentDrop", "rate": 0.25, "mechanism": "random"},
        "model": {"_target_": "privrec.models.ALS", "factors": 32, "iterations": 5, "regularization": 0.05},
        "fallback": {"_target_": "privrec.models.Popularity"},
        "evaluation": {"cutoffs": [10, 20], "segment_by": ["gender"]},
    }
    cfg.update(over)
    return cfg


@pytest.mark.slow
def test_run_records_everything_and_is_deterministic(shared_data_dir):
    r1 = experiment.run(_cfg(shared_data_dir), hydra_files={"overrides.yaml": "- seed=0\n"})
    r2 = experiment.run(_cfg(shared_data_dir))
    assert isinstance(r1, RunRecord)
    assert r1.metrics.keys() == r2.metrics.keys()
    for k, v in r1.metrics.items():
        if not k.startswith("time/"):
            assert v == r2.metrics[k] or (np.isnan(v) and np.isnan(r2.metrics[k])), k
    m = r1.metrics
    assert r1.status == "FINISHED" and r1.end_time >= r1.start_time
    assert m["privacy/users_withheld"] == round(0.25 * 943)
    # opted-out users are still evaluated on their real held-out behaviour, served by the fallback
    assert m["eval/opted_out/n_users"] == m["privacy/users_withheld"]
    assert m["eval/consented/n_users"] + m["eval/opted_out/n_users"] == m["eval/n_users"] == 943
    assert m["model/fallback_users"] == m["privacy/users_withheld"]
    assert 0 < m["eval/opted_out/ndcg_at_10"] < m["eval/consented/ndcg_at_10"] < 1
    assert "eval/gender/F/recall_at_20" in m
    assert r1.params["model.factors"] == "32" and r1.params["privacy.rate"] == "0.25"
    assert len(r1.tags["data.sha256"]) == 64
    assert r1.tags["privrec.config_sha256"] == r2.tags["privrec.config_sha256"] == experiment.config_sha256(
        _cfg(shared_data_dir))
    assert {"config/resolved.yaml", "privacy_report.json", "segment_metrics.csv"} <= set(r1.artifacts)
    assert r1.artifacts[".hydra/overrides.yaml"] == "- seed=0\n"  # captured when the run started
    # nothing logged names an individual user
    blob = " ".join(r1.artifacts.values()) + " ".join(r1.params.values())
    assert "gender=F" in blob and "user_id" not in blob


@pytest.mark.slow
def test_seed_changes_results(shared_data_dir):
    a = experiment.run(_cfg(shared_data_dir, seed=0))
    b = experiment.run(_cfg(shared_data_dir, seed=1))
    assert a.metrics["eval/ndcg_at_10"] != b.metrics["eval/ndcg_at_10"]


def test_bad_config_fails_before_any_work(tmp_path):
    cfg = _cfg(tmp_path, privacy={"_target_": "privrec.privacy.ConsentDrop", "rate": 1.5})
    with pytest.raises(ConfigError, match=r"consent_drop.rate must be in \[0, 1\); got 1.5"):
        experiment.plan(cfg)
    with pytest.raises(ConfigError, match=r"evaluation\.cutoffs must be"):
        experiment.plan(_cfg(tmp_path, evaluation={"cutoffs": "abc"}))


def test_config_digest_ignores_where_a_run_is_recorded(tmp_path):
    a = experiment.config_sha256(_cfg(tmp_path))
    assert a == experiment.config_sha256(_cfg(tmp_path / "elsewhere", tracking={"experiment": "x"}, progress=False))
    assert a != experiment.config_sha256(_cfg(tmp_path, seed=1))


def test_unknown_parameter_is_named(tmp_path):
    cfg = _cfg(tmp_path, model={"_target_": "privrec.models.ALS", "factor": 3})
    with pytest.raises(ConfigError, match="model has no parameter 'factor'"):
        experiment.run(cfg)


def test_failed_record_carries_config_and_one_line_error(tmp_path):
    cfg = _cfg(tmp_path / "nowhere", dataset={"_target_": "privrec.data.loaders.Delimited", "path": "missing.tsv"})
    with pytest.raises(DataValidationError) as err:
        experiment.run(cfg)
    record = experiment.failed_record(cfg, err.value, start_time=1, hydra_files={"config.yaml": "seed: 0\n"})
    assert record.status == "FAILED" and "\n" not in record.tags["error"]
    assert record.params["privacy.rate"] == "0.25" and ".hydra/config.yaml" in record.artifacts
    assert record.tags["privrec.config_sha256"] == experiment.config_sha256(cfg) and not record.metrics
