"""The real CLI on real ML-100K with a real MLflow SQLite store in a temporary folder."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

PRIVREC = [sys.executable, "-m", "privrec.cli"]


def _privrec(args, cwd, data_dir, **env):
    full_env = dict(os.environ, PRIVREC_DATA_DIR=str(data_dir), MLFLOW_TRACKING_URI=f"sqlite:///{cwd}/mlflow.db",
                    **env)
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(PRIVREC + list(args), cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600,
                          check=False)


def _client(cwd):
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{cwd}/mlflow.db")


def _runs(cwd):
    client = _client(cwd)
    exp = client.get_experiment_by_name("privrec")
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


@pytest.mark.slow
def test_default_run_is_fully_recorded(tmp_path, shared_data_dir):
    proc = _privrec(["run"], tmp_path, shared_data_dir)
    assert proc.returncode == 0, proc.stderr
    assert "nDCG@10" in proc.stdout and "opted_out" in proc.stdout and "MLflow: run" in proc.stdout
    (run,) = _runs(tmp_path)
    assert run.info.status == "FINISHED"
    p, m, t = run.data.params, run.data.metrics, run.data.tags
    assert p["privacy.rate"] == "0.25" and p["model._target_"] == "privrec.models.ALS" and p["seed"] == "0"
    assert p["split.fraction"] == "0.2"
    for key in ("eval/ndcg_at_10", "eval/recall_at_20", "eval/consented/ndcg_at_10", "eval/opted_out/ndcg_at_10",
                "eval/gender/F/recall_at_20", "eval/auc", "eval/gini_exposure_at_10", "privacy/users_withheld"):
        assert key in m, key
    assert m["privacy/users_withheld"] == 236
    assert len(t["data.sha256"]) == 64
    for tag in ("privrec.version", "lib.implicit", "lib.mlflow", "lib.hydra-core", "lib.numpy", "blas"):
        assert tag in t, tag
    artifacts = {f.path for f in _client(tmp_path).list_artifacts(run.info.run_id)}
    assert {"config", "privacy_report.json", "segment_metrics.csv", ".hydra"} <= artifacts
    hydra_files = {f.path for f in _client(tmp_path).list_artifacts(run.info.run_id, ".hydra")}
    assert ".hydra/config.yaml" in hydra_files and ".hydra/overrides.yaml" in hydra_files
    # privacy: no user id anywhere in params, tags or the report
    report = (Path(_client(tmp_path).download_artifacts(run.info.run_id, "privacy_report.json",
                                                         str(tmp_path)))).read_text()
    assert "users_withheld" in report and "user_id" not in report

    # The first run was written by the accelerator (direct sqlite3) once MLflow had created the store; a second
    # one on the plain path (MLflow's client) must be recorded exactly like it.
    proc = _privrec(["run", "progress=false"], tmp_path, shared_data_dir, PRIVREC_ACCELERATE="0")
    assert proc.returncode == 0, proc.stderr
    first, second = sorted(_runs(tmp_path), key=lambda r: r.info.start_time)
    assert second.info.status == "FINISHED" and second.info.run_name == first.info.run_name == "ConsentDrop ALS seed=0"
    assert {k: v for k, v in second.data.params.items() if k != "progress"} == \
        {k: v for k, v in first.data.params.items() if k != "progress"}
    timing = ("time/", "attack/")  # wall times differ run to run; attack metrics are compared below
    assert {k: v for k, v in second.data.metrics.items() if not k.startswith(timing)} == \
        {k: v for k, v in first.data.metrics.items() if not k.startswith(timing)}
    assert {k for k in second.data.metrics if k.startswith("attack/")} == \
        {k for k in first.data.metrics if k.startswith("attack/")}
    assert all(second.data.metrics[k] == first.data.metrics[k] for k in first.data.metrics
               if k.startswith("attack/") and not k.endswith("_s"))
    assert set(second.data.tags) - {"privrec.liveness"} == set(first.data.tags)  # the client path tags its writer
    assert second.data.tags["privrec.config_sha256"] == first.data.tags["privrec.config_sha256"]  # progress: harness
    client = _client(tmp_path)
    listing = {r.info.run_id: {f.path for f in client.list_artifacts(r.info.run_id)} for r in (first, second)}
    assert listing[first.info.run_id] == listing[second.info.run_id]


@pytest.mark.slow
def test_multirun_has_parent_and_finished_children(tmp_path, shared_data_dir):
    proc = _privrec(["run", "-m", "privacy.rate=0,0.5", "seed=0,1", "model.iterations=3"], tmp_path,
                    shared_data_dir)
    assert proc.returncode == 0, proc.stderr
    runs = _runs(tmp_path)
    parents = [r for r in runs if r.data.tags.get("privrec.sweep") == "true"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(parents) == 1 and len(children) == 4
    assert all(r.info.status == "FINISHED" for r in runs)
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert sorted(float(r.data.params["privacy.rate"]) for r in children) == [0.0, 0.0, 0.5, 0.5]
    assert all("eval/ndcg_at_10" in r.data.metrics for r in children)
    # the report over this real sweep: figure and tables written and logged to the parent run
    proc = _privrec(["report", "--x", "privacy.rate", "--out", "rep"], tmp_path, shared_data_dir)
    assert proc.returncode == 0, proc.stderr
    for name in ("frontier.png", "frontier.svg", "table.md", "table.tex"):
        assert (tmp_path / "rep" / name).stat().st_size > 0
    assert "| ALS | 0.5 | 2 |" in (tmp_path / "rep" / "table.md").read_text()
    logged = {f.path for f in _client(tmp_path).list_artifacts(parents[0].info.run_id, "report")}
    assert "report/frontier.png" in logged
    proc = _privrec(["report", "--y", "eval/nope"], tmp_path, shared_data_dir)
    assert proc.returncode == 2 and "eval/ndcg_at_10" in proc.stderr  # names what exists


@pytest.mark.slow
def test_parallel_sweep_of_32_jobs_into_a_fresh_store(tmp_path, shared_data_dir):
    proc = _privrec(["run", "-m", "privacy.rate=0,0.1,0.2,0.3,0.4,0.5,0.6,0.7", "seed=0,1,2,3", "attack=none",
                     "model.iterations=2", "model.factors=8"], tmp_path, shared_data_dir, PRIVREC_JOBS="2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = _runs(tmp_path)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(children) == 32 and all(r.info.status == "FINISHED" for r in runs)
    keys = set(children[0].data.metrics)
    assert {"eval/ndcg_at_10", "eval/opted_out/recall_at_20", "privacy/users_withheld"} <= keys
    assert all(set(r.data.metrics) == keys for r in children)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "model=nope"], "model must be one of"),
        (["run", "privacy.rate=1.5"], "consent_drop.rate must be in [0, 1); got 1.5."),
        (["run", "model.factors=0"], "factors must be >= 1; got 0."),
        (["run", "split.fraction=1.5"], "fraction"),
        (["frobnicate"], "command must be one of"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, shared_data_dir, args, expected):
    proc = _privrec(args, tmp_path, shared_data_dir)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert all(r.info.status != "RUNNING" for r in _runs(tmp_path))


def test_debug_shows_traceback(tmp_path, shared_data_dir):
    proc = _privrec(["run", "privacy.rate=1.5", "--debug"], tmp_path, shared_data_dir)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.parametrize("args", [["run", "attack=none", "foo=1"], ["data", "info", "+seed=3"],
                                  ["run", "-m", "attack=none", "privacy.rate=[1,"]])
def test_debug_shows_the_traceback_of_hydra_errors_too(tmp_path, shared_data_dir, args):
    proc = _privrec(args, tmp_path, shared_data_dir)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = _privrec([*args, "--debug"], tmp_path, shared_data_dir)
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "hydra.errors." in proc.stderr


def test_a_sweep_job_error_is_printed_once(tmp_path, shared_data_dir):
    proc = _privrec(["run", "-m", "attack=none", "privacy.rate=1.5", "tracking.enabled=false"], tmp_path,
                    shared_data_dir, PRIVREC_JOBS="1")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "privrec: error: [job 0] consent_drop.rate must be in [0, 1); got 1.5."
    proc = _privrec(["run", "-m", "attack=none", "privacy.rate=1.5", "tracking.enabled=false", "--debug"], tmp_path,
                    shared_data_dir, PRIVREC_JOBS="1")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "ConfigError: consent_drop.rate" in proc.stderr


@pytest.mark.slow
def test_reproduce_a_recorded_run(tmp_path, shared_data_dir):
    proc = _privrec(["run", "model.iterations=3", "seed=4"], tmp_path, shared_data_dir)
    assert proc.returncode == 0, proc.stderr
    (run,) = _runs(tmp_path)
    proc = _privrec(["reproduce", run.info.run_id], tmp_path, shared_data_dir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"privrec: reproduced run {run.info.run_id}:") and "identical" in proc.stdout
    # tamper with a recorded metric: reproduce must show a readable diff and fail
    _client(tmp_path).log_metric(run.info.run_id, "eval/ndcg_at_10", 0.123)
    proc = _privrec(["reproduce", run.info.run_id], tmp_path, shared_data_dir)
    assert proc.returncode == 1 and "eval/ndcg_at_10" in proc.stderr and "recorded 0.123" in proc.stderr
    proc = _privrec(["reproduce", "0123456789abcdef"], tmp_path, shared_data_dir)
    assert proc.returncode == 2 and "reproduce run id must name a run" in proc.stderr


def test_data_info_and_fetch_use_the_configured_data_dir(tmp_path, shared_data_dir):
    proc = _privrec(["data", "info"], tmp_path, shared_data_dir)
    assert proc.returncode == 0, proc.stderr
    assert "943" in proc.stdout and "sha256" in proc.stdout
    proc = _privrec(["data", "fetch", "ml-100k", "--data-dir", str(shared_data_dir)], tmp_path, shared_data_dir)
    assert proc.returncode == 0 and "ready" in proc.stdout  # present and verified: nothing downloaded
    proc = _privrec(["data", "fetch", "ml-7m"], tmp_path, shared_data_dir)
    assert proc.returncode == 2 and "data fetch NAME must be one of" in proc.stderr


def test_help_lists_the_commands(tmp_path, shared_data_dir):
    proc = _privrec(["--help"], tmp_path, shared_data_dir)
    assert proc.returncode == 0
    for command in ("run", "release", "report", "reproduce", "data fetch", "ui"):
        assert command in proc.stdout


def test_a_key_on_the_command_line_is_refused_before_anything_is_written(tmp_path, shared_data_dir):
    proc = _privrec(["run", "privacy=pseudonymization", "privacy.key=s3cr3t-value"], tmp_path, shared_data_dir)
    assert proc.returncode == 2
    assert "privrec: error: privacy.key must not be given" in proc.stderr and "key_file" in proc.stderr
    assert "s3cr3t" not in proc.stdout + proc.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not any("s3cr3t" in p.read_text(errors="ignore") for p in written)
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()


@pytest.mark.slow
def test_release_replaces_ids_unless_keep_ids(tmp_path, shared_data_dir):
    fresh = _privrec(["release", "privacy=consent_drop", "out=fresh"], tmp_path, shared_data_dir)
    kept = _privrec(["release", "privacy=consent_drop", "out=kept", "keep_ids=true"], tmp_path, shared_data_dir)
    assert fresh.returncode == 0 and kept.returncode == 0, fresh.stderr + kept.stderr
    import pandas as pd

    users_fresh = pd.read_csv(tmp_path / "fresh" / "users.tsv", sep="\t", dtype=str)
    users_kept = pd.read_csv(tmp_path / "kept" / "users.tsv", sep="\t", dtype=str)
    assert users_fresh["user_id"].str.startswith("u").all() and not users_kept["user_id"].str.startswith("u").any()
    assert "PrivacyLeakWarning" in kept.stderr and "PrivacyLeakWarning" not in fresh.stderr
    bad = _privrec(["release", "privacy=consent_drop", "out=bad", "keep_ids=maybe"], tmp_path, shared_data_dir)
    assert bad.returncode == 2 and not (tmp_path / "bad").exists()


def test_data_info_prints_both_digests(tmp_path, shared_data_dir):
    proc = _privrec(["data", "info"], tmp_path, shared_data_dir)
    assert proc.returncode == 0, proc.stderr
    raw = [line for line in proc.stdout.splitlines() if line.startswith("sha256 (raw files)")]
    pre = [line for line in proc.stdout.splitlines() if line.startswith("sha256 (preprocessed)")]
    assert len(raw) == 1 and len(pre) == 1 and raw[0].split()[-1] != pre[0].split()[-1]
