"""Sweeps that talk, on real sweeps of the real CLI (ML-100K, privrec's launcher, a SQLite store in a temporary
folder): one line per finished job with its swept values and nDCG@10, FAILED with the reason for a failed job, a
progress line with ETA, a summary table, each distinct warning once with a count - and readable runs in MLflow
(child names with the swept values, the parent named after the preset, standard tags, the dataset input)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading

import pytest

pytest.importorskip("mlflow")

from mlflow.tracking import MlflowClient

PRIVREC = [sys.executable, "-m", "privrec.cli"]
SMALL = ["attack=none", "model.iterations=2", "model.factors=8"]
JOB_LINE = re.compile(r"^\[job (\d+)\] (.*): nDCG@10=(\d\.\d{4})$")


def _privrec(args, cwd, data_dir, *, stderr=subprocess.PIPE, **env):
    full_env = dict(os.environ, PRIVREC_DATA_DIR=str(data_dir), MLFLOW_TRACKING_URI=f"sqlite:///{cwd}/mlflow.db",
                    PRIVREC_JOBS="2", **env)
    for name in ("HYDRA_FULL_ERROR", "PRIVREC_DEBUG"):
        full_env.pop(name, None)
    return subprocess.run(PRIVREC + list(args), cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=stderr,
                          text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def preset_sweep(tmp_path_factory, shared_data_dir):
    """experiment=consent_tradeoff cut to 4 jobs (mechanism x seed), with a warning in every job."""
    cwd = tmp_path_factory.mktemp("sweep")
    args = ["run", "-m", "experiment=consent_tradeoff", "privacy.rate=0.3", "privacy.mechanism=random,activity",
            "model=als", "seed=0,1", *SMALL, "evaluation.min_segment_users=300"]
    proc = _privrec(args, cwd, shared_data_dir, PRIVREC_SWEEP_PROGRESS_INTERVAL="0")
    return cwd, proc


def _runs(cwd, experiment):
    client = MlflowClient(f"sqlite:///{cwd}/mlflow.db")
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id], max_results=100)


@pytest.mark.slow
def test_each_job_says_its_swept_values_and_headline_metric(preset_sweep):
    cwd, proc = preset_sweep
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    jobs = {int(m.group(1)): (m.group(2), float(m.group(3))) for m in map(JOB_LINE.match, lines) if m}
    # job order as Hydra expands it: the preset's params (rate, mechanism, model, seed), mechanism before seed
    assert {i: v for i, (v, _) in jobs.items()} == {0: "mechanism=random seed=0", 1: "mechanism=random seed=1",
                                                    2: "mechanism=activity seed=0", 3: "mechanism=activity seed=1"}
    assert not any("ALS ConsentDrop" in line for line in lines)  # the workers' own lines are gone
    _client, runs = _runs(cwd, "consent_tradeoff")
    children = {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    assert sorted(children) == ["mechanism=activity ALS seed=0", "mechanism=activity ALS seed=1",
                                "mechanism=random ALS seed=0", "mechanism=random ALS seed=1"]
    for values, metric in jobs.values():  # the line's metric is the run's
        mechanism, seed = (v.split("=")[1] for v in values.split())
        run = children[f"mechanism={mechanism} ALS seed={seed}"]
        assert round(run.data.metrics["eval/ndcg_at_10"], 4) == metric


@pytest.mark.slow
def test_progress_with_eta_and_a_summary_table(preset_sweep):
    cwd, proc = preset_sweep
    out = proc.stdout
    progress = [line for line in out.splitlines() if line.startswith("privrec: sweep ") and "jobs done" in line]
    assert progress and all(re.search(r"privrec: sweep [0-3]/4 jobs done, \S+ elapsed", p) for p in progress)
    assert any("ETA" in p for p in progress if not p.startswith("privrec: sweep 0/")), progress
    summary = out[out.index("privrec: sweep done"):].splitlines()
    assert re.match(r"privrec: sweep done in \S+: 4 finished, 0 failed$", summary[0]), summary
    rows = [line.split() for line in summary[2:4]]
    # one row per setting (seeds averaged), best first
    assert [r[0] for r in rows] == ["best", "worst"] and [r[2] for r in rows] == ["2", "2"]
    jobs = {m.group(2): float(m.group(3)) for m in map(JOB_LINE.match, out.splitlines()) if m}
    means = {mech: (jobs[f"mechanism={mech} seed=0"] + jobs[f"mechanism={mech} seed=1"]) / 2
             for mech in ("random", "activity")}
    best = max(means, key=lambda k: means[k])
    assert rows[0][3] == f"mechanism={best}" and abs(float(rows[0][1]) - means[best]) < 1e-4
    _client, runs = _runs(cwd, "consent_tradeoff")
    (parent,) = [r for r in runs if r.data.tags.get("privrec.sweep") == "true"]
    assert any(line.startswith(f"  runs: parent run {parent.info.run_id} in experiment 'consent_tradeoff' at sqlite:")
               for line in summary), summary
    assert summary[-1].startswith("  job folders: multirun/consent_tradeoff/")


@pytest.mark.slow
def test_each_distinct_warning_once_with_a_count(preset_sweep):
    _cwd, proc = preset_sweep
    warned = [line for line in proc.stderr.splitlines() if "DataWarning" in line]
    assert len(warned) == 1 and warned[0].startswith("privrec: warning in 4 of 4 jobs: DataWarning: "), proc.stderr
    assert "site-packages" not in proc.stderr and ".py:" not in proc.stderr


@pytest.mark.slow
def test_the_parent_is_named_after_the_preset_and_runs_carry_standard_tags(preset_sweep, shared_data_dir):
    cwd, _proc = preset_sweep
    _client, runs = _runs(cwd, "consent_tradeoff")
    (parent,) = [r for r in runs if r.data.tags.get("privrec.sweep") == "true"]
    assert re.fullmatch(r"consent_tradeoff rate=0\.3 mechanism=random,activity model=als seed=0,1 attack=none "
                        r"iterations=2 factors=8 min_segment_users=300 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
                        parent.info.run_name), parent.info.run_name
    assert parent.data.tags["mlflow.source.name"] == "privrec" and parent.data.tags["mlflow.user"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 4
    for run in children:
        tags, params = run.data.tags, run.data.params
        assert tags["mlflow.source.type"] == "JOB" and tags["mlflow.source.name"] == "privrec"
        assert tags["mlflow.user"] == run.info.user_id != "unknown"
        assert tags["mlflow.source.git.commit"] == tags["git.commit"]  # tests run from the checkout
        assert tags["data_dir"] == str(shared_data_dir) and "data_dir" not in params
        assert not [k for k in params if k.startswith("tracking.") or k in ("progress", "resume", "run_name")]
        (dataset,) = run.inputs.dataset_inputs
        assert dataset.dataset.name == "ml-100k" and dataset.dataset.digest == tags["data.sha256"][:36]
        assert tags["data.sha256"] in dataset.dataset.profile
        assert {t.key: t.value for t in dataset.tags}["mlflow.data.context"] == "training"


@pytest.mark.slow
def test_a_failed_job_says_failed_with_its_reason(tmp_path, shared_data_dir):
    proc = _privrec(["run", "-m", *SMALL, "privacy.rate=0.5,1.5", "tracking.enabled=false"], tmp_path,
                    shared_data_dir)
    assert proc.returncode == 2, proc.stderr
    reason = "consent_drop.rate must be in [0, 1); got 1.5."
    assert f"[job 1] rate=1.5: FAILED: {reason}" in proc.stdout.splitlines()
    assert any(JOB_LINE.match(line) and line.startswith("[job 0] rate=0.5: ") for line in proc.stdout.splitlines())
    assert "1 finished, 1 failed" in proc.stdout and f"FAILED [job 1] rate=1.5: {reason}" in proc.stdout
    assert proc.stderr.strip() == f"privrec: error: [job 1] {reason}"  # the job's own one-line error, once


@pytest.mark.slow
def test_on_a_terminal_the_progress_line_is_updated_in_place(tmp_path, shared_data_dir):
    main, secondary = os.openpty()
    chunks: list[bytes] = []

    def drain():
        while True:
            try:
                data = os.read(main, 4096)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = _privrec(["run", "-m", *SMALL, "seed=0,1", "tracking.enabled=false"], tmp_path, shared_data_dir,
                        stderr=secondary)
    finally:
        os.close(secondary)
    reader.join(10)
    os.close(main)
    err = b"".join(chunks).decode()
    assert proc.returncode == 0, err
    assert "\r\x1b[Kprivrec: sweep 0/2 jobs done" in err and "ETA" in err
    assert err.endswith("\r\x1b[K")  # cleared before the summary
    assert "privrec: sweep done in" in proc.stdout
