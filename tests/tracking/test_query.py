"""load_runs / sweep_parent / log_report_artifacts against a real temporary SQLite MLflow store."""

from __future__ import annotations

import pytest

pytest.importorskip("mlflow")

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from privrec.errors import ConfigError
from privrec.tracking import query
from privrec.tracking.query import load_runs, log_report_artifacts, sweep_parent

MODELS = ("ALS", "BPR")
RATES = ("0.0", "0.25", "0.5")
SEEDS = ("0", "1")


def _run(client, exp_id, *, start, parent=None, sweep=False, params=None, metrics=None, status="FINISHED"):
    tags = {"mlflow.parentRunId": parent} if parent else {}
    if sweep:
        tags["privrec.sweep"] = "true"
    run = client.create_run(exp_id, start_time=start, tags=tags)
    rid = run.info.run_id
    client.log_batch(rid, params=[Param(k, v) for k, v in (params or {}).items()],
                     metrics=[Metric(k, v, start, 0) for k, v in (metrics or {}).items()])
    if status != "RUNNING":
        client.set_terminated(rid, status)
    return rid


@pytest.fixture(scope="module")
def store(empty_mlflow_store, tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    empty_mlflow_store(root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("privrec", artifact_location=(root / "artifacts").as_uri())
    client.create_experiment("other", artifact_location=(root / "other").as_uri())
    # an old sweep that never finished a run
    old = _run(client, exp, start=1_000, sweep=True)
    _run(client, exp, start=1_001, parent=old, status="FAILED", params={"seed": "0"})
    _run(client, exp, start=1_002, parent=old, status="RUNNING", params={"seed": "1"})
    # the latest sweep: 2 models x 3 rates x 2 seeds, plus one failed child
    sweep = _run(client, exp, start=2_000, sweep=True)
    children, t = [], 2_001
    for model in MODELS:
        for rate in RATES:
            for seed in SEEDS:
                ndcg = 0.3 - 0.1 * float(rate) + 0.01 * int(seed) + (0.02 if model == "ALS" else 0.0)
                children.append(_run(client, exp, start=t, parent=sweep, params={
                    "model._target_": f"privrec.models.{model}", "privacy._target_": "privrec.privacy.ConsentDrop",
                    "privacy.rate": rate, "seed": seed},
                    metrics={"eval/ndcg_at_10": ndcg, "attack/reid_rate_m8": 0.9 - float(rate)}))
                t += 1
    failed = _run(client, exp, start=t, parent=sweep, status="FAILED", params={"seed": "9"})
    single = _run(client, exp, start=3_000, params={"model._target_": "privrec.models.ALS", "seed": "0"},
                  metrics={"eval/ndcg_at_10": 0.5})
    return {"uri": uri, "root": root, "old": old, "sweep": sweep, "children": children, "failed": failed,
            "single": single, "client": client}


def test_load_runs_of_a_sweep(store):
    runs = load_runs(store["uri"], sweep=store["sweep"])
    assert list(runs["run_id"]) == store["children"]  # finished children only, in start order
    assert runs.columns[0] == "run_id"
    assert {"params.model._target_", "params.privacy.rate", "params.seed", "metrics.eval/ndcg_at_10",
            "metrics.attack/reid_rate_m8"} <= set(runs.columns)
    assert runs["params.privacy.rate"].tolist()[:2] == ["0.0", "0.0"]  # params stay strings, as logged
    assert runs["metrics.eval/ndcg_at_10"].dtype == "float64"
    assert runs.attrs["sweep_run_id"] == store["sweep"] and runs.attrs["experiment"] == "privrec"


def test_latest_sweep_and_sweep_parent(store):
    latest = load_runs(store["uri"], sweep="latest")
    assert latest.attrs["sweep_run_id"] == store["sweep"]
    assert sorted(latest["run_id"]) == sorted(store["children"])
    assert sweep_parent(store["uri"], "privrec", "latest") == store["sweep"]
    assert sweep_parent(store["uri"], "privrec", store["sweep"]) == store["sweep"]
    assert sweep_parent(store["uri"], "privrec", None) is None


def test_no_sweep_means_every_finished_non_parent_run(store):
    runs = load_runs(store["uri"])
    assert set(runs["run_id"]) == {*store["children"], store["single"]}
    assert runs.attrs["sweep_run_id"] is None


def test_pagination(store, monkeypatch):
    monkeypatch.setattr(query, "_PAGE", 5)
    assert list(load_runs(store["uri"], sweep=store["sweep"])["run_id"]) == store["children"]
    assert len(load_runs(store["uri"])) == len(store["children"]) + 1


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_unknown_experiment_lists_the_existing_ones(store):
    with pytest.raises(ConfigError) as err:
        load_runs(store["uri"], experiment="nope", sweep="latest")
    message = _one_line(err)
    assert "'nope'" in message and "'other'" in message and "'privrec'" in message


def test_unknown_run_id_names_the_latest_sweeps(store):
    with pytest.raises(ConfigError) as err:
        load_runs(store["uri"], sweep="0" * 32)
    message = _one_line(err)
    assert "0" * 32 in message and store["sweep"] in message and store["old"] in message
    with pytest.raises(ConfigError, match="must be an MLflow run id"):
        load_runs(store["uri"], sweep="x' OR '1'='1")


def test_child_run_id_points_to_its_sweep(store):
    with pytest.raises(ConfigError) as err:
        load_runs(store["uri"], sweep=store["children"][0])
    assert f"--sweep {store['sweep']}" in _one_line(err)


def test_sweep_without_finished_runs(store):
    with pytest.raises(ConfigError) as err:
        load_runs(store["uri"], sweep=store["old"])
    message = _one_line(err)
    assert store["old"] in message and "2 runs (1 FAILED, 1 RUNNING)" in message


def test_latest_without_any_sweep(store):
    with pytest.raises(ConfigError) as err:
        load_runs(store["uri"], experiment="other", sweep="latest")
    assert "privrec.sweep=true" in _one_line(err)
    with pytest.raises(ConfigError, match="FINISHED run"):
        load_runs(store["uri"], experiment="other")


def test_missing_store_is_not_created(tmp_path):
    db = tmp_path / "nothing-here.db"
    with pytest.raises(ConfigError) as err:
        load_runs(f"sqlite:///{db}")
    assert "must exist" in _one_line(err)
    assert not db.exists()


def test_unreadable_store(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database" * 200)
    with pytest.raises(ConfigError) as err:
        load_runs(f"sqlite:///{bad}")
    assert "must be reachable" in _one_line(err)


def test_log_report_artifacts(store, tmp_path):
    files = []
    for name in ("table.md", "frontier.svg"):
        (tmp_path / name).write_text("x")
        files.append(tmp_path / name)
    logged = log_report_artifacts(store["uri"], store["sweep"], files)
    assert logged == ["report/table.md", "report/frontier.svg"]
    listed = {a.path for a in store["client"].list_artifacts(store["sweep"], "report")}
    assert listed == set(logged)
    with pytest.raises(ConfigError, match="must name a run"):
        log_report_artifacts(store["uri"], "f" * 32, files)
    with pytest.raises(ConfigError, match="missing"):
        log_report_artifacts(store["uri"], store["sweep"], [tmp_path / "absent.png"])


def test_round_trip_into_a_report(store, tmp_path):
    from privrec.reporting import write_report

    runs = load_runs(store["uri"], sweep="latest")
    paths = write_report(runs, x="privacy.rate", y="eval/ndcg_at_10", out_dir=tmp_path)
    frame_md = paths["table.md"].read_text()
    assert "| ALS | 0.0 | 2 |" in frame_md and "baseline" in frame_md
    assert all(p.stat().st_size > 0 for p in paths.values())
