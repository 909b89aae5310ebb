"""Sweeps on a cluster's engines, with real processes on 127.0.0.1 (README "Running on a cluster"): a PostgreSQL 15
server (started as the ``postgres`` user when the tests run as root: PostgreSQL refuses root), an MLflow tracking
server on it that serves the artifacts itself, a sweep through Hydra's submitit launcher
(``hydra/launcher=submitit_local``) into that server, then ``privrec report``, ``privrec reproduce`` and
``privrec ui`` against it. ``.ci/cluster_smoke.sh`` runs the same steps from the shell in CI.

Skips only when the PostgreSQL binaries are absent (or, outside CI, when the ``cluster`` extra is not installed).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

PRIVREC = [sys.executable, "-m", "privrec.cli"]


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    candidates = [Path(os.environ["PG_BIN"])] if os.environ.get("PG_BIN") else []
    if found:
        candidates.append(Path(found).resolve().parent)
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "createdb", "postgres")):
            return folder
    return None


PG_BIN = _pg_bin()
EXTRA = all(importlib.util.find_spec(m) is not None for m in ("hydra_plugins.hydra_submitit_launcher", "psycopg"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PG_BIN is None, reason="PostgreSQL binaries (initdb, pg_ctl, createdb) not found: set PG_BIN "
                                              "or install postgresql-15"),
    pytest.mark.skipif(not EXTRA and not os.environ.get("CI"),
                       reason='the cluster extra is not installed: pip install -e ".[cluster]"'),
]
AS_ROOT = os.geteuid() == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if AS_ROOT else cmd


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.update(extra)
    return env


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def work():
    """A folder the ``postgres`` user can enter (pytest's own temp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="privrec-cluster-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres(work):
    """A PostgreSQL server on 127.0.0.1 with a database ``mlflow``: its SQLAlchemy URI (psycopg 3)."""
    assert PG_BIN is not None
    data = work / "pg"
    data.mkdir()
    if AS_ROOT:
        shutil.chown(data, user="postgres", group="postgres")
    port = _free_port()
    subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                 "--no-sync"]), check=True, capture_output=True, timeout=300)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=off"
    subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(data / "postgres.log"), "-w",
                                 "-t", "120", "-o", options, "start"]), check=True, capture_output=True, timeout=180)
    try:
        subprocess.run(_as_postgres([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                     "mlflow"]), check=True, capture_output=True, timeout=120)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def server(work, postgres):
    """``mlflow server`` on the PostgreSQL store, serving artifacts from ``work/artifacts``: its URL."""
    port = _free_port()
    artifacts = work / "artifacts"
    artifacts.mkdir()
    log = (work / "mlflow.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", postgres,
                             "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1"], env=_env(), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while not _healthy(url):
            assert proc.poll() is None, (work / "mlflow.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the MLflow server did not answer /health in 240 s"
            time.sleep(0.5)
        yield url
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        log.close()


@pytest.fixture(scope="module")
def sweep(work, server, shared_data_dir):
    """A two-job sweep through ``hydra/launcher=submitit_local`` into the server: (parent run, children)."""
    from mlflow.tracking import MlflowClient

    sweep_dir = work / "sweep"
    done = subprocess.run([*PRIVREC, "run", "-m", "hydra/launcher=submitit_local", "attack=none",
                           "privacy.rate=0,0.5", f"hydra.sweep.dir={sweep_dir}", "hydra.sweeper.max_batch_size=2"],
                          cwd=work, env=_env(MLFLOW_TRACKING_URI=server, PRIVREC_DATA_DIR=str(shared_data_dir)),
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    # A job whose run the server refused keeps it as record.json (for privrec sync) and the sweep goes on; two jobs
    # logging the same new dataset at once used to collide in PostgreSQL (unique violation on dataset_pk).
    saved = sorted(sweep_dir.rglob("record.json"))
    logs = "".join(p.read_text()[-1500:] for p in sorted((sweep_dir / ".submitit").glob("*/*_log.err")))
    assert not saved, f"{len(saved)} job(s) could not write their run: {logs}"
    client = MlflowClient(tracking_uri=server)
    exp = client.get_experiment_by_name("privrec")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("privrec.sweep") == "true"]
    assert len(parents) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return parents[0], children, sweep_dir


def test_submitit_jobs_record_under_one_parent_run_in_the_server(sweep, work):
    parent, children, sweep_dir = sweep
    assert parent.info.status == "FINISHED", [c.info.status for c in children]
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    assert sorted(c.data.params["privacy.rate"] for c in children) == ["0", "0.5"]
    # the jobs ran in submitit's processes (one folder per job, each with its pickled result), not in the sweep's
    submitted = sorted(p for p in (sweep_dir / ".submitit").iterdir() if p.is_dir() and p.name.isdigit())
    assert len(submitted) == 2
    assert all(list(p.glob("*_result.pkl")) for p in submitted)
    # artifacts went through the server (mlflow-artifacts:) into its --artifacts-destination
    for child in children:
        assert child.info.artifact_uri.startswith("mlflow-artifacts:")
    stored = [p for p in (work / "artifacts").rglob("*") if p.is_file()]
    assert stored, "no artifact reached the server's --artifacts-destination"


def test_report_reads_the_sweep_from_the_server(sweep, server, work):
    parent, _children, _ = sweep
    out = work / "report"
    done = subprocess.run([*PRIVREC, "report", "--out", str(out), "--group", "none"], cwd=work,
                          env=_env(MLFLOW_TRACKING_URI=server), capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "report over 2 runs" in done.stdout and parent.info.run_id in done.stdout
    assert (out / "frontier.png").stat().st_size > 1000
    rows = (out / "table.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header + the two rates


def test_reproduce_a_job_from_the_server(sweep, server, work, shared_data_dir):
    _parent, children, _ = sweep
    run_id = children[0].info.run_id
    done = subprocess.run([*PRIVREC, "reproduce", run_id], cwd=work,
                          env=_env(MLFLOW_TRACKING_URI=server, PRIVREC_DATA_DIR=str(shared_data_dir)),
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(rf"reproduced run {run_id}: \d+ metrics identical", done.stdout)


def test_ui_on_the_server_prints_its_runs_view(sweep, server, work):
    from mlflow.tracking import MlflowClient

    exp_id = MlflowClient(tracking_uri=server).get_experiment_by_name("privrec").experiment_id
    done = subprocess.run([*PRIVREC, "ui"], cwd=work, env=_env(MLFLOW_TRACKING_URI=server), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{server}/#/experiments/{exp_id}/runs?workflowType=machine_learning" in done.stdout
    missing = subprocess.run([*PRIVREC, "ui", "--experiment", "nothing_here"], cwd=work,
                             env=_env(MLFLOW_TRACKING_URI=server), capture_output=True, text=True, timeout=120,
                             check=False)
    assert missing.returncode == 0 and f"{server}/#/experiments\n" in missing.stdout


def test_the_slurm_launcher_config_sets_per_job_resources(tmp_path):
    """SLURM itself is not on this machine: check what privrec's submitit_slurm config hands the launcher."""
    done = subprocess.run([*PRIVREC, "run", "hydra/launcher=submitit_slurm", "hydra.launcher.partition=cpu",
                           "hydra.launcher.mem_gb=16", "--cfg", "hydra", "--resolve"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    launcher = yaml.safe_load(done.stdout)["hydra"]["launcher"]
    assert launcher["_target_"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher["partition"], launcher["mem_gb"], launcher["cpus_per_task"]) == ("cpu", 16, 2)
    assert launcher["timeout_min"] == 60 and launcher["array_parallelism"] == 64
    assert launcher["additional_parameters"] == {"export": "ALL"}  # the parent run id reaches the jobs
    bad = subprocess.run([*PRIVREC, "run", "hydra/launcher=submitit_slurm", "hydra.launcher.mem_gb=lots",
                          "--cfg", "hydra"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300,
                         check=False)
    assert bad.returncode == 2 and "hydra.launcher.mem_gb" in bad.stderr
