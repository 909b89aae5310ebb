"""The pure pipeline on real ML-100K with an in-memory tracker."""

import numpy as np
import pytest

from privrec import experiment
from privrec.errors import ConfigError
from privrec.tracking import MemoryTracker


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
    t1, t2 = MemoryTracker(), MemoryTracker()
    r1 = experiment.run(_cfg(shared_data_dir), tracker=t1)
    r2 = experiment.run(_cfg(shared_data_dir), tracker=t2)
    assert r1.metrics.keys() == r2.metrics.keys()
    for k, v in r1.metrics.items():
        if not k.startswith("time/"):
            assert v == r2.metrics[k] or (np.isnan(v) and np.isnan(r2.metrics[k])), k
    m = r1.metrics
    assert t1.status == "FINISHED"
    assert m["privacy/users_withheld"] == round(0.25 * 943)
    # opted-out users are still evaluated on their real held-out behaviour, served by the fallback
    assert m["eval/opted_out/n_users"] == m["privacy/users_withheld"]
    assert m["eval/consented/n_users"] + m["eval/opted_out/n_users"] == m["eval/n_users"] == 943
    assert m["model/fallback_users"] == m["privacy/users_withheld"]
    assert 0 < m["eval/opted_out/ndcg_at_10"] < m["eval/consented/ndcg_at_10"] < 1
    assert "eval/gender/F/recall_at_20" in m
    assert t1.params["model.factors"] == "32" and t1.params["privacy.rate"] == "0.25"
    assert len(t1.tags["data.sha256"]) == 64
    assert {"config/resolved.yaml", "privacy_report.json", "segment_metrics.csv"} <= set(t1.artifacts)
    # nothing logged names an individual user
    blob = " ".join(t1.artifacts.values()) + " ".join(t1.params.values())
    assert "gender=F" in blob and "user_id" not in blob


@pytest.mark.slow
def test_seed_changes_results(shared_data_dir):
    a = experiment.run(_cfg(shared_data_dir, seed=0))
    b = experiment.run(_cfg(shared_data_dir, seed=1))
    assert a.metrics["eval/ndcg_at_10"] != b.metrics["eval/ndcg_at_10"]


def test_bad_config_fails_before_any_run(tmp_path):
    tracker = MemoryTracker()
    cfg = _cfg(tmp_path, privacy={"_target_": "privrec.privacy.ConsentDrop", "rate": 1.5})
    with pytest.raises(ConfigError, match=r"consent_drop.rate must be in \[0, 1\); got 1.5"):
        experiment.run(cfg, tracker=tracker)
    assert not tracker.started


def test_unknown_parameter_is_named(tmp_path):
    cfg = _cfg(tmp_path, model={"_target_": "privrec.models.ALS", "factor": 3})
    with pytest.raises(ConfigError, match="model has no parameter 'factor'"):
        experiment.run(cfg)


def test_failure_after_start_marks_run_failed(tmp_path):
    tracker = MemoryTracker()
    with pytest.raises(Exception):
        experiment.run(_cfg(tmp_path / "nowhere", dataset={"_target_": "privrec.data.loaders.Delimited",
                                                          "path": "missing.tsv"}), tracker=tracker)
    assert tracker.status == "FAILED" and "error" in tracker.tags
