"""The direct SQLite writer must produce runs that MLflow reads exactly like runs MLflow wrote itself."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient

from privrec.tracking._writer import write_record
from privrec.tracking.buffered import BufferedMlflowTracker
from privrec.tracking.sqlite_store import SqliteRunStore, open_store, sqlite_path

PARAMS = {"model._target_": "privrec.models.ALS", "privacy.rate": "0.25", "seed": "0", "long": "x" * 7000,
          "evaluation.segment_by": "['gender', 'age_band']"}
METRICS = {"eval/ndcg_at_10": 0.2721665826455884, "eval/gender/F/recall_at_20": 0.25, "privacy/epsilon": math.inf,
           "attack/low": -math.inf, "eval/opted_out/mrr": math.nan, "data/users": 943.0, "zero": 0.0}
TAGS = {"privrec.version": "0.1.0", "data.sha256": "ab" * 32, "error": "ConfigError: x must be y; got z."}
TEXTS = {"config/resolved.yaml": "seed: 0\nmodel: {factors: 64}\n", "privacy_report.json": "{\"a\": 1}"}


@pytest.fixture()
def store_uri(empty_mlflow_store, tmp_path):
    db = tmp_path / "mlflow.db"
    empty_mlflow_store(db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(uri)
    client.create_experiment("privrec", artifact_location=str(tmp_path / "mlruns" / "privrec"))
    client.create_experiment("as_uri", artifact_location=(tmp_path / "mlruns" / "as_uri").as_uri())
    return uri


@pytest.fixture()
def hydra_dir(tmp_path):
    d = tmp_path / "job" / ".hydra"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text("seed: 0\n")
    (d / "overrides.yaml").write_text("- seed=0\n")
    (tmp_path / "job" / "extra.txt").write_text("one file\n")
    return d


def _document(uri, experiment, hydra_dir, parent):
    return {"spec": {"tracking_uri": uri, "experiment": experiment, "run_name": "ConsentDrop ALS seed=0",
                     "parent_run_id": parent, "start_time": 1_700_000_000_000},
            "record": {"params": PARAMS, "metrics": METRICS, "tags": TAGS, "texts": TEXTS,
                       "paths": [(str(hydra_dir), ".hydra"), (str(hydra_dir.parent / "extra.txt"), "files")],
                       "status": "FAILED"}}


def _artifacts(client, run_id, path=None):
    out = {}
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            out.update(_artifacts(client, run_id, info.path))
        else:
            out[info.path] = info.file_size
    return out


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("experiment", ["privrec", "as_uri"])
def test_direct_run_reads_back_like_an_mlflow_run(store_uri, hydra_dir, experiment):
    client = MlflowClient(store_uri)
    parent = client.create_run(client.get_experiment_by_name(experiment).experiment_id).info.run_id
    document = _document(store_uri, experiment, hydra_dir, parent)
    via_mlflow = write_record(document)
    spec, record = document["spec"], document["record"]
    store, why = open_store(store_uri, experiment)
    assert why is None
    direct = store.record_run(run_name=spec["run_name"], params=record["params"], metrics=record["metrics"],
                              tags=record["tags"], texts=record["texts"], paths=record["paths"],
                              status=record["status"], start_time=spec["start_time"], parent_run_id=parent)
    a, b = client.get_run(via_mlflow), client.get_run(direct)
    assert a.data.params == b.data.params and len(b.data.params["long"]) == 6000
    assert a.data.metrics.keys() == b.data.metrics.keys() == METRICS.keys()
    assert all(_same(a.data.metrics[k], b.data.metrics[k]) for k in METRICS)
    assert b.data.metrics["privacy/epsilon"] == 1.7976931348623157e308 and math.isnan(b.data.metrics["eval/opted_out/mrr"])
    assert a.data.tags == b.data.tags
    assert b.data.tags["mlflow.parentRunId"] == parent and b.data.tags["error"] == TAGS["error"]
    for field in ("status", "run_name", "lifecycle_stage", "user_id", "experiment_id", "start_time"):
        assert getattr(a.info, field) == getattr(b.info, field), field
    assert b.info.status == "FAILED" and b.info.user_id == "unknown" and b.info.end_time >= b.info.start_time
    assert b.info.artifact_uri == a.info.artifact_uri.replace(via_mlflow, direct)
    files = _artifacts(client, direct)
    assert files == _artifacts(client, via_mlflow)
    assert set(files) == {"config/resolved.yaml", "privacy_report.json", ".hydra/config.yaml",
                          ".hydra/overrides.yaml", "files/extra.txt"}
    local = Path(client.download_artifacts(direct, "config/resolved.yaml"))
    assert local.read_text() == TEXTS["config/resolved.yaml"]
    for key in METRICS:
        history = client.get_metric_history(direct, key)
        assert len(history) == 1 and history[0].step == 0
    query = (f"metrics.`eval/ndcg_at_10` > 0.27 and params.`privacy.rate` = '0.25' and "
             f"tags.mlflow.parentRunId = '{parent}' and attributes.status = 'FAILED'")
    found = client.search_runs([a.info.experiment_id], filter_string=query)
    assert {r.info.run_id for r in found} == {via_mlflow, direct}
    ordered = client.search_runs([a.info.experiment_id], order_by=["metrics.`eval/ndcg_at_10` DESC"])
    assert {r.info.run_id for r in ordered[:2]} == {via_mlflow, direct}


def test_parent_run_stays_running_until_terminated(store_uri):
    store = SqliteRunStore.open(store_uri, "privrec")
    client = MlflowClient(store_uri)
    parent = store.record_run(run_name="sweep x", tags={"privrec.sweep": "true"}, status="RUNNING")
    assert client.get_run(parent).info.status == "RUNNING" and client.get_run(parent).info.end_time is None
    for status in ("FINISHED", "FAILED", "FINISHED"):
        store.record_run(run_name="child", metrics={"m": 1.0}, status=status, parent_run_id=parent)
    assert sorted(store.children(parent)) == ["FAILED", "FINISHED", "FINISHED"]
    store.set_tags(parent, {"privrec.children": "3"})
    store.set_tags(parent, {"privrec.children": "4"})  # replaced, not duplicated
    store.terminate(parent, "FAILED")
    run = client.get_run(parent)
    assert run.info.status == "FAILED" and run.info.end_time is not None
    assert run.data.tags["privrec.children"] == "4" and run.data.tags["privrec.sweep"] == "true"


def test_nothing_is_half_written(store_uri, tmp_path):
    store = SqliteRunStore.open(store_uri, "privrec")
    db = sqlite_path(store_uri)
    before = sqlite3.connect(db).execute("SELECT count(*) FROM runs").fetchone()[0]
    with pytest.raises(FileNotFoundError):
        store.record_run(run_name="r", metrics={"m": 1.0}, paths=[(str(tmp_path / "missing.txt"), None)])
    with pytest.raises(ValueError, match="names must be"):
        store.record_run(run_name="r", metrics={"bad=name": 1.0})
    with pytest.raises(ValueError, match="inside the run"):
        store.record_run(run_name="r", texts={"../escape.txt": "x"})
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == before
    assert con.execute("SELECT count(*) FROM metrics").fetchone()[0] == 0
    assert list((tmp_path / "mlruns" / "privrec").glob("*")) == []  # the run folder was removed
    assert not (tmp_path / "mlruns" / "escape.txt").exists()


def test_stores_that_do_not_qualify_fall_back(store_uri, tmp_path, monkeypatch):
    assert open_store(f"sqlite:///{tmp_path / 'nope.db'}", "privrec")[1].endswith("(MLflow creates its schema)")
    for uri in ("sqlite://", "sqlite:///:memory:", "http://127.0.0.1:5000", "postgresql://h/db",
                f"sqlite:///{tmp_path}/mlflow.db?mode=ro"):
        store, why = open_store(uri, "privrec")
        assert store is None and why
    assert "does not exist yet" in open_store(store_uri, "missing")[1]
    client = MlflowClient(store_uri)
    client.create_experiment("remote", artifact_location="s3://bucket/path")
    assert "outside the local file system" in open_store(store_uri, "remote")[1]
    client.delete_experiment(client.get_experiment_by_name("as_uri").experiment_id)
    assert "deleted" in open_store(store_uri, "as_uri")[1]
    monkeypatch.setenv("PRIVREC_MLFLOW_API", "1")
    assert "PRIVREC_MLFLOW_API" in open_store(store_uri, "privrec")[1]
    monkeypatch.delenv("PRIVREC_MLFLOW_API")
    # a schema that needs a column this writer does not know
    odd = tmp_path / "odd.db"
    con = sqlite3.connect(odd)
    con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
    con.execute("CREATE TABLE experiments (experiment_id INTEGER, name TEXT, artifact_location TEXT, "
                "lifecycle_stage TEXT)")
    for table in ("tags", "params"):
        con.execute(f"CREATE TABLE {table} (key TEXT, value TEXT, run_uuid TEXT)")
    con.execute("CREATE TABLE metrics (key TEXT, value FLOAT, timestamp INT, run_uuid TEXT, step INT, is_nan INT)")
    con.execute("CREATE TABLE latest_metrics (key TEXT, value FLOAT, timestamp INT, step INT, is_nan INT, "
                "run_uuid TEXT)")
    con.execute("CREATE TABLE runs (run_uuid TEXT, name TEXT, source_type TEXT, source_name TEXT, "
                "entry_point_name TEXT, user_id TEXT, status TEXT, start_time INT, end_time INT, source_version "
                "TEXT, lifecycle_stage TEXT, artifact_uri TEXT, experiment_id INT, deleted_time INT, "
                "workspace_owner TEXT NOT NULL)")
    con.commit()
    assert "requires unknown columns ['workspace_owner']" in open_store(f"sqlite:///{odd}", "privrec")[1]


def test_tracker_writes_directly_or_through_mlflow(store_uri, hydra_dir):
    client = MlflowClient(store_uri)
    for experiment, direct in (("privrec", True), ("created_by_mlflow", False)):
        tracker = BufferedMlflowTracker(tracking_uri=store_uri, experiment=experiment, fallback="inprocess")
        tracker.start(run_name="r")
        tracker.log_params({"a": "1"})
        tracker.log_metrics({"m": 0.5})
        tracker.set_tags({"t": "x"})
        tracker.log_text("hello", artifact_file="notes/n.txt")
        tracker.log_artifact(hydra_dir, artifact_path=".hydra")
        tracker.finish("FINISHED")
        assert tracker.direct is direct
        run = client.get_run(tracker.run_id)
        assert run.info.status == "FINISHED" and run.info.run_name == "r"
        assert run.data.params == {"a": "1"} and run.data.metrics == {"m": 0.5} and run.data.tags["t"] == "x"
        assert set(_artifacts(client, tracker.run_id)) == {"notes/n.txt", ".hydra/config.yaml",
                                                           ".hydra/overrides.yaml"}
    # the second tracker made MLflow create the experiment; from now on its runs are written directly
    assert open_store(store_uri, "created_by_mlflow")[0] is not None


_WORKER = """
import sys
from privrec.tracking.sqlite_store import SqliteRunStore
store = SqliteRunStore.open(sys.argv[1], "privrec")
for i in range(15):
    store.record_run(run_name=f"w{sys.argv[2]}-{i}", params={"i": str(i)}, metrics={"m": float(i)})
"""


def test_concurrent_writers(store_uri):
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, store_uri, str(w)]) for w in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    client = MlflowClient(store_uri)
    runs = client.search_runs([client.get_experiment_by_name("privrec").experiment_id], max_results=1000)
    assert len(runs) == 45 and {r.info.status for r in runs} == {"FINISHED"}
    assert sum(r.data.metrics["m"] for r in runs) == 3 * sum(range(15))
