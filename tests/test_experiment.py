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


@pytest.mark.slow
def test_zip_code_segments_publish_no_zip_code(shared_data_dir):
    import io

    import pandas as pd

    from privrec.errors import DataWarning

    zips = set(pd.read_csv(shared_data_dir / "ml-100k" / "u.user", sep="|", header=None, dtype=str)[4])
    with pytest.warns(DataWarning, match=r"^\d+ segments with fewer than 20 evaluated users") as caught:
        record = experiment.run(_cfg(shared_data_dir, evaluation={"cutoffs": [10], "segment_by": ["zip_code",
                                                                                                  "gender"]}))
    levels = {part for key in record.metrics for part in key.split("/")}
    assert not levels & zips  # no zip code in any metric name
    table = pd.read_csv(io.StringIO(record.artifacts["segment_metrics.csv"]), dtype={"segment": str})
    assert not {s.split("=", 1)[-1] for s in table["segment"]} & zips
    assert not any(z in str(w.message) for w in caught for z in zips)  # the warning counts, never names
    m = record.metrics
    assert m["eval/zip_code/other/n_users"] == m["eval/n_users"] == 943  # no zip code has 20 users
    assert "eval/gender/F/ndcg_at_10" in m and "eval/opted_out/ndcg_at_10" in m  # large segments unchanged


@pytest.mark.slow
def test_data_tags_are_raw_then_preprocessed_digests(shared_data_dir):
    import hashlib
    import json

    record = experiment.run(_cfg(shared_data_dir, evaluation={"cutoffs": [10], "segment_by": []}))
    root = shared_data_dir / "ml-100k"
    files = {f"ml-100k/{n}": hashlib.sha256((root / n).read_bytes()).hexdigest() for n in ("u.data", "u.user")}
    assert json.loads(record.tags["data.sources_sha256"]) == files
    manifest = "".join(f"{digest}  {name}\n" for name, digest in files.items())  # `sha256sum ... | sha256sum`
    assert record.tags["data.sha256"] == hashlib.sha256(manifest.encode()).hexdigest()
    cfg = _cfg(shared_data_dir)
    data, _ = experiment.load_data(cfg["dataset"], cfg["preprocess"], shared_data_dir)
    assert record.tags["data.preprocessed_sha256"] == data.checksum() != record.tags["data.sha256"]


def test_min_segment_users_is_read_from_the_evaluation_block(tmp_path):
    from privrec.data import Synthetic

    cfg = _cfg(tmp_path, dataset={"_target_": "privrec.data.loaders.Synthetic", "n_users": 60, "n_items": 40,
                                  "n_interactions": 900},
               model={"_target_": "privrec.models.Popularity"},
               evaluation={"cutoffs": [5], "segment_by": ["gender"], "min_segment_users": 0})
    everything = experiment.run(cfg).metrics
    n_female = int((Synthetic(n_users=60, n_items=40, n_interactions=900).load().user_attributes["gender"]
                    == "F").sum())
    assert 0 < everything["eval/gender/F/n_users"] <= n_female
    cfg["evaluation"]["min_segment_users"] = 61  # more than there are users: only the overall metrics remain
    with pytest.warns(UserWarning, match="segments with fewer than 61"):
        strict = experiment.run(cfg).metrics
    assert not any(k.startswith(("eval/gender/", "eval/consented/", "eval/opted_out/")) for k in strict)
    assert strict["eval/ndcg_at_5"] == everything["eval/ndcg_at_5"]
    cfg["evaluation"]["min_segment_users"] = -1
    with pytest.raises(ConfigError, match=r"evaluation\.min_segment_users must be a non-negative integer; got -1"):
        experiment.run(cfg)


def _same_metrics(a, b, keys=None):
    keys = [k for k in a.metrics if not k.startswith("time/")] if keys is None else keys
    return [k for k in keys
            if not (a.metrics[k] == b.metrics[k] or (np.isnan(a.metrics[k]) and np.isnan(b.metrics[k])))]


@pytest.mark.slow
def test_the_defaults_of_tuning_and_exclude_change_no_number(shared_data_dir):
    # the config as it was before tuning and evaluation.exclude existed, and with their defaults spelled out
    before = experiment.run(_cfg(shared_data_dir))
    spelled = experiment.run(_cfg(shared_data_dir, tuning={"method": "none"},
                                  evaluation={"cutoffs": [10, 20], "segment_by": ["gender"], "exclude": "released"}))
    assert before.metrics.keys() == spelled.metrics.keys() and not _same_metrics(before, spelled)
    assert set(spelled.params) - set(before.params) == {"tuning.method", "evaluation.exclude"}
    assert not any(k.startswith("tuned.") for k in spelled.params)
    # consent drop releases a subset of the training data: no test interaction is in the release
    assert before.metrics["data/test_in_release_share"] == 0.0


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*test interactions also appear in train")
def test_profile_k_anonymity_releases_test_items_and_exclude_decides_what_they_count(shared_data_dir):
    from privrec.data.split import RandomHoldout
    from privrec.random import streams

    kanon = {"_target_": "privrec.privacy.ProfileKAnonymity", "k": 2}
    released = experiment.run(_cfg(shared_data_dir, privacy=kanon))
    everything = experiment.run(_cfg(shared_data_dir, privacy=kanon,
                                     evaluation={"cutoffs": [10, 20], "segment_by": ["gender"], "exclude": "none"}))
    share = released.metrics["data/test_in_release_share"]
    assert 0.25 < share < 0.45  # ~34 % on ML-100K at k=2: merged profiles hold other members' items
    assert everything.metrics["data/test_in_release_share"] == share  # a fact about the data, not the choice
    assert released.metrics["eval/ndcg_at_10"] != everything.metrics["eval/ndcg_at_10"]
    assert everything.params["evaluation.exclude"] == "none"
    # the share, re-measured by hand on the run's own split and release
    p = experiment.plan(_cfg(shared_data_dir, privacy=kanon))
    data, _ = experiment.load_data(p.cfg["dataset"], p.cfg["preprocess"], shared_data_dir)
    rngs = streams(0)
    split = RandomHoldout(fraction=0.2).split(data, rng=rngs.split)
    release = p.transform.apply(split.train, rng=rngs.privacy).data
    pairs = set(zip(release.user_idx.tolist(), release.item_idx.tolist(), strict=True))
    test = set(zip(split.test.user_idx.tolist(), split.test.item_idx.tolist(), strict=True))
    assert share == pytest.approx(len(test & pairs) / len(test))


def test_a_tuned_run_records_what_it_fitted(tmp_path):
    cfg = _cfg(tmp_path, dataset={"_target_": "privrec.data.loaders.Synthetic", "n_users": 120, "n_items": 60,
                                  "n_interactions": 2000},
               model={"_target_": "privrec.models.ALS", "factors": 8, "iterations": 3, "regularization": 0.05},
               evaluation={"cutoffs": [5, 10], "segment_by": []},
               tuning={"method": "grid", "metric": "recall_at_10", "grid": {"als": {"regularization": [0.05, 10.0]}}})
    record = experiment.run(cfg)
    assert record.params["tuned.regularization"] in {"0.05", "10.0"}
    assert record.params["model.regularization"] == "0.05"  # the configured value is kept
    assert 0 <= record.metrics["tuning/validation_recall_at_10"] <= 1 and record.metrics["tuning/candidates"] == 2
    assert record.metrics["time/tune_s"] > 0 and "tuning.json" in record.artifacts
