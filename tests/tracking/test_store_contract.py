"""One contract for both stores: MLflow's client (the reference) and the direct SQLite accelerator.

Every test runs against both; what MLflow's client reads back must be the same whichever store wrote it.
"""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys

import pytest

pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient

from privrec.errors import ConfigError
from privrec.tracking.mlflow_store import MlflowStore
from privrec.tracking.record import InputDataset, RunRecord
from privrec.tracking.sqlite_store import TESTED_REVISIONS, SqliteStore
from privrec.tracking.store import (
    INTERRUPTED_TAG,
    LIVENESS_TAG,
    is_gone,
    liveness,
    open_store,
    repair,
    write_record,
)
from privrec.tracking.uri import parse_tracking_uri

PARAMS = {"model._target_": "privrec.models.ALS", "privacy.rate": "0.25", "seed": "0", "long": "x" * 7000,
          "evaluation.segment_by": "['gender', 'age_band']"}
METRICS = {"eval/ndcg_at_10": 0.2721665826455884, "eval/gender/F/recall_at_20": 0.25, "privacy/epsilon": math.inf,
           "attack/low": -math.inf, "eval/opted_out/mrr": math.nan, "data/users": 943.0, "zero": 0.0}
TAGS = {"privrec.version": "0.1.0", "data.sha256": "ab" * 32, "privrec.config_sha256": "cd" * 32}
ARTIFACTS = {"config/resolved.yaml": "seed: 0\nmodel: {factors: 64}\n", "privacy_report.json": "{\"a\": 1}",
             ".hydra/overrides.yaml": "- seed=0\n"}
DATASET = InputDataset(name="ml-100k", digest=("ab" * 32)[:36], source_type="local",
                       source='{"uri": "ml-100k/u.data, ml-100k/u.user"}',
                       schema='{"mlflow_colspec": [{"type": "string", "name": "user_id", "required": true}]}',
                       profile='{"sha256": "' + "ab" * 32 + '"}',
                       tags={"mlflow.data.context": "training", "privrec.data.preprocessed_sha256": "ef" * 32})
RECORD = RunRecord(run_name="ConsentDrop ALS seed=0", status="FINISHED", start_time=1_700_000_000_000,
                   end_time=1_700_000_005_000, params=PARAMS, metrics=METRICS, tags=TAGS, artifacts=ARTIFACTS,
                   datasets=(DATASET,))



@pytest.fixture
def store_uri(empty_mlflow_store, tmp_path):
    db = tmp_path / "mlflow.db"
    empty_mlflow_store(db)
    uri = f"sqlite:///{db}"
    MlflowClient(uri).create_experiment("privrec", artifact_location=str(tmp_path / "mlruns" / "privrec"))
    return uri


def _revision(uri: str) -> str:
    with sqlite3.connect(uri.removeprefix("sqlite:///")) as con:
        return con.execute("SELECT version_num FROM alembic_version").fetchone()[0]


@pytest.fixture(params=["mlflow", "sqlite"])
def store(request, store_uri, monkeypatch):
    if request.param == "mlflow":
        monkeypatch.setenv("PRIVREC_ACCELERATE", "0")
        s = open_store(store_uri, "privrec")
        assert isinstance(s, MlflowStore)
    else:
        monkeypatch.delenv("PRIVREC_ACCELERATE", raising=False)
        if _revision(store_uri) not in TESTED_REVISIONS:
            pytest.skip(f"MLflow's schema revision {_revision(store_uri)} is not one the accelerator was tested "
                        f"against ({sorted(TESTED_REVISIONS)}): privrec uses MLflow's client for it")
        s = open_store(store_uri, "privrec")
        assert isinstance(s, SqliteStore)
    return s


def _read(uri, run_id):
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    files = {}

    def walk(path=None):
        for info in client.list_artifacts(run_id, path):
            if info.is_dir:
                walk(info.path)
            else:
                with open(client.download_artifacts(run_id, info.path), encoding="utf-8") as fh:
                    files[info.path] = fh.read()

    walk()
    return run, files


def _inputs(run):
    """A run's dataset inputs as MLflow's client reads them back (sorted, comparable)."""
    return sorted((i.dataset.name, i.dataset.digest, i.dataset.source_type, i.dataset.source, i.dataset.schema,
                   i.dataset.profile, {t.key: t.value for t in i.tags}) for i in run.inputs.dataset_inputs)


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_a_record_reads_back_complete(store):
    client = MlflowClient(store.uri)
    parent = store.start_parent(run_name="sweep x", tags={"privrec.sweep": "true"})
    run_id = store.write(RECORD, parent_run_id=parent)
    run, files = _read(store.uri, run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == RECORD.run_name
    assert run.info.start_time == RECORD.start_time and run.info.end_time >= RECORD.start_time
    assert run.data.params == {**PARAMS, "long": "x" * 6000}
    assert run.data.metrics.keys() == METRICS.keys()
    assert all(_same(run.data.metrics[k], v) or (math.isinf(v) and abs(run.data.metrics[k]) > 1e308)
               for k, v in METRICS.items())
    assert {k: v for k, v in run.data.tags.items() if k in TAGS} == TAGS
    assert run.data.tags["mlflow.parentRunId"] == parent
    assert files == ARTIFACTS
    assert _inputs(run) == [(DATASET.name, DATASET.digest, "local", DATASET.source, DATASET.schema, DATASET.profile,
                             dict(DATASET.tags))]
    found = client.search_runs([run.info.experiment_id], filter_string=(
        f"metrics.`eval/ndcg_at_10` > 0.27 and params.`privacy.rate` = '0.25' and "
        f"tags.mlflow.parentRunId = '{parent}' and attributes.status = 'FINISHED'"))
    assert [r.info.run_id for r in found] == [run_id]


def test_both_stores_write_the_same_run(store_uri, monkeypatch):
    if _revision(store_uri) not in TESTED_REVISIONS:
        pytest.skip("the accelerator is not used for this MLflow schema revision")
    monkeypatch.setenv("PRIVREC_ACCELERATE", "0")
    reference = open_store(store_uri, "privrec").write(RECORD)
    monkeypatch.setenv("PRIVREC_ACCELERATE", "1")
    direct = open_store(store_uri, "privrec").write(RECORD)
    (a, fa), (b, fb) = _read(store_uri, reference), _read(store_uri, direct)
    assert a.data.params == b.data.params and fa == fb
    assert a.data.metrics.keys() == b.data.metrics.keys()
    assert all(_same(a.data.metrics[k], b.data.metrics[k]) for k in a.data.metrics)
    liveless = {k: v for k, v in a.data.tags.items() if k != LIVENESS_TAG}  # the client path tags its writer
    assert liveless == b.data.tags
    assert _inputs(a) == _inputs(b) and len(_inputs(a)) == 1
    for field in ("status", "run_name", "lifecycle_stage", "user_id", "experiment_id", "start_time", "end_time"):
        assert getattr(a.info, field) == getattr(b.info, field), field
    client = MlflowClient(store_uri)
    for key in METRICS:
        assert [(m.step, m.timestamp) for m in client.get_metric_history(direct, key)] == \
               [(m.step, m.timestamp) for m in client.get_metric_history(reference, key)]


def test_parent_lifecycle_children_and_resume(store):
    client = MlflowClient(store.uri)
    parent = store.start_parent(run_name="sweep", tags={"privrec.sweep": "true", "privrec.sweep_key": "k1"})
    assert client.get_run(parent).info.status == "RUNNING"
    assert client.get_run(parent).data.tags[LIVENESS_TAG] == liveness()
    store.write(RECORD, parent_run_id=parent)
    store.write(RunRecord(run_name="failed", status="FAILED", start_time=1, end_time=2,
                          tags={"privrec.config_sha256": "ee"}), parent_run_id=parent)
    assert sorted(store.children(parent)) == [("FAILED", "ee"), ("FINISHED", "cd" * 32)]
    assert store.find_sweep("k1") == (parent, "RUNNING") and store.find_sweep("nope") is None
    store.finish_parent(parent, "FAILED", {INTERRUPTED_TAG: "true", "privrec.jobs_finished": "1"})
    run = client.get_run(parent)
    assert run.info.status == "FAILED" and run.data.tags["privrec.jobs_finished"] == "1"
    store.reopen_parent(parent)
    run = client.get_run(parent)
    assert run.info.status == "RUNNING" and run.data.tags[INTERRUPTED_TAG] == "false"
    store.finish_parent(parent, "FINISHED", {})
    assert client.get_run(parent).info.status == "FINISHED"


def test_repair_marks_only_runs_whose_process_is_gone(store):
    client = MlflowClient(store.uri)
    exp = client.get_experiment_by_name("privrec").experiment_id
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead = liveness().rsplit(" ", 2)[0] + f" {int(done.stdout)} 12345.00"
    other_host = f"elsewhere.example {int(done.stdout)} 12345.00"
    ids = {}
    for name, alive in (("dead", dead), ("alive", liveness()), ("remote", other_host)):
        ids[name] = client.create_run(exp, tags={LIVENESS_TAG: alive}).info.run_id
    assert is_gone(dead) and not is_gone(liveness()) and not is_gone(other_host)
    assert repair(store) == 1
    assert client.get_run(ids["dead"]).info.status == "FAILED"
    assert client.get_run(ids["dead"]).data.tags[INTERRUPTED_TAG] == "true"
    assert client.get_run(ids["alive"]).info.status == "RUNNING"
    assert client.get_run(ids["remote"]).info.status == "RUNNING"
    assert repair(store) == 0


def test_a_failing_store_keeps_the_record(store, tmp_path, monkeypatch):
    def broken(record, *, parent_run_id=None):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store, "write", broken)
    written = write_record(store, RECORD, parent_run_id="p" * 32, save_to=tmp_path / "run")
    assert written.run_id is None and "database is locked" in written.error
    saved = RunRecord.from_json(written.saved.read_text())
    assert saved.params == RECORD.params and saved.artifacts == RECORD.artifacts
    assert all(_same(saved.metrics[k], v) for k, v in RECORD.metrics.items())
    assert saved.tags["privrec.parent_run_id"] == "p" * 32


def test_nothing_half_written_by_the_accelerator(store_uri, tmp_path):
    if _revision(store_uri) not in TESTED_REVISIONS:
        pytest.skip("the accelerator is not used for this MLflow schema revision")
    store = open_store(store_uri, "privrec")
    bad = RunRecord(run_name="x", status="FINISHED", start_time=1, end_time=2, metrics={"bad key!": 1.0},
                    artifacts={"a.txt": "x"})
    with pytest.raises(ValueError, match="names must be"):
        store.write(bad)
    with sqlite3.connect(store_uri.removeprefix("sqlite:///")) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    assert not any((tmp_path / "mlruns" / "privrec").glob("*/artifacts/a.txt"))


def test_accelerator_only_for_tested_revisions(store_uri, monkeypatch):
    monkeypatch.delenv("PRIVREC_ACCELERATE", raising=False)
    with sqlite3.connect(store_uri.removeprefix("sqlite:///")) as con:
        con.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    loc = parse_tracking_uri(store_uri)
    assert SqliteStore.open(loc, "privrec") is None
    with sqlite3.connect(store_uri.removeprefix("sqlite:///")) as con:
        con.execute("UPDATE alembic_version SET version_num = ?", (min(TESTED_REVISIONS),))
    assert isinstance(open_store(store_uri, "privrec"), SqliteStore)
    monkeypatch.setenv("PRIVREC_ACCELERATE", "0")
    assert isinstance(open_store(store_uri, "privrec"), MlflowStore)


def test_new_store_created_once_by_concurrent_processes(tmp_path):
    """Four processes open one new store at the same moment: the schema is created once (file lock)."""
    code = ("import sys; from privrec.tracking.store import open_store; "
            "s = open_store(sys.argv[1], 'privrec'); print(type(s).__name__)")
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", code, uri], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err[-500:] for _out, err in outs]
    client = MlflowClient(uri)
    assert client.get_experiment_by_name("privrec").lifecycle_stage == "active"
    assert len(client.search_experiments()) == 2  # Default and privrec, each created once


@pytest.mark.parametrize(("uri", "path"), [("sqlite:///mlflow.db", "mlflow.db"),
                                           ("sqlite:////tmp/my%20runs.db", "/tmp/my runs.db"),
                                           ("sqlite:///a/b.db", "a/b.db")])
def test_uri_parser_decodes_like_mlflow(uri, path):
    assert str(parse_tracking_uri(uri).sqlite_path) == path


@pytest.mark.parametrize("uri", ["ftp://x", "mlflow.db", "sqlite://relative.db"])
def test_uri_parser_refuses_what_mlflow_cannot_use(uri):
    with pytest.raises(ConfigError, match=r"tracking\.tracking_uri .*must"):
        parse_tracking_uri(uri)


def test_store_checks_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="existing folder"):
        open_store(f"sqlite:///{tmp_path / 'no' / 'such.db'}", "privrec")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"garbage" * 300)
    with pytest.raises(ConfigError, match="MLflow SQLite store"):
        open_store(f"sqlite:///{junk}", "privrec")
    with pytest.raises(ConfigError, match="non-empty name"):
        open_store(f"sqlite:///{tmp_path / 'ok.db'}", "")
    with pytest.raises(ConfigError, match="reachable MLflow server"):
        open_store("http://127.0.0.1:9", "privrec")
    assert not (tmp_path / "ok.db").exists()


def test_record_round_trips_through_json():
    again = RunRecord.from_json(RECORD.to_json())
    assert again.params == RECORD.params and again.tags == RECORD.tags and again.artifacts == RECORD.artifacts
    assert again.datasets == RECORD.datasets and dict(again.datasets[0].tags) == dict(DATASET.tags)
    assert all(_same(again.metrics[k], v) for k, v in RECORD.metrics.items())
    with pytest.raises(ValueError, match="status must be"):
        RunRecord(run_name="x", status="RUNNING", start_time=0, end_time=0)
    with pytest.raises(TypeError):
        RECORD.metrics["x"] = 1.0  # read-only


def test_a_dataset_is_one_row_per_name_and_digest(store):
    """Runs reading the same data share one dataset (MLflow's rule: experiment, name and digest), each with its
    own input edge and input tags; a run without datasets logs no input; other data is another dataset."""
    other = InputDataset(name="ml-100k", digest="cd" * 18, source_type="local", source='{"uri": "x"}',
                         tags={"mlflow.data.context": "training"})
    first = store.write(RECORD)
    second = store.write(RunRecord(run_name="again", status="FINISHED", start_time=1, end_time=2,
                                   datasets=(DATASET, DATASET)))
    third = store.write(RunRecord(run_name="other", status="FINISHED", start_time=1, end_time=2, datasets=(other,)))
    bare = store.write(RunRecord(run_name="bare", status="FINISHED", start_time=1, end_time=2))
    client = MlflowClient(store.uri)
    runs = {run_id: client.get_run(run_id) for run_id in (first, second, third, bare)}
    assert _inputs(runs[first]) == _inputs(runs[second]) and len(_inputs(runs[second])) == 1
    assert [i[1] for i in _inputs(runs[third])] == ["cd" * 18] and _inputs(runs[bare]) == []
    with sqlite3.connect(store.uri.removeprefix("sqlite:///")) as con:
        assert con.execute("SELECT count(*) FROM datasets").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM inputs WHERE destination_type = 'RUN'").fetchone()[0] == 3
        assert con.execute("SELECT count(*) FROM input_tags").fetchone()[0] == 5


def test_dataset_digest_follows_mlflows_limit():
    with pytest.raises(ValueError, match="digest must be 1-36 characters"):
        InputDataset(name="ml-100k", digest="ab" * 32, source_type="local", source="{}")
