"""Wall time of the same 30-run sweep on a cluster's engines vs privrec's defaults, in one run of this script.

    python experiments/benchmarks/bench_cluster.py [--jobs 30] [--batch N]

The sweep is ``privacy.rate=0,0.25,0.5 seed=range(10)`` (30 runs of the default experiment on ML-100K: ALS and
all attacks), run three ways, each as one ``privrec run -m`` command in a fresh process:

- ``default``: privrec's launcher (one worker process per core) into a new SQLite store (``sqlite:///mlflow.db``);
- ``submitit``: ``hydra/launcher=submitit_local`` (one new process per job, started by submitit) into an MLflow
  tracking server on PostgreSQL that serves the artifacts (``--artifacts-destination``), the README's cluster setup;
- ``default->server``: privrec's launcher into that same server (separates the launcher's cost from the store's).

submitit starts every job of a batch at once, so its sweep runs with ``hydra.sweeper.max_batch_size=--batch``
(default: the usable cores, as many jobs at a time as privrec's launcher runs). PostgreSQL runs as the
``postgres`` user when this script runs as root; both servers live on 127.0.0.1 and are stopped at the end. Every
variant must record ``--jobs`` FINISHED runs under one parent. This machine is shared: read the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRIVREC = [sys.executable, "-m", "privrec.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path:
    found = shutil.which("pg_ctl")
    for folder in ([Path(found).resolve().parent] if found else []) + [Path("/usr/lib/postgresql/15/bin")]:
        if (folder / "initdb").is_file():
            return folder
    raise SystemExit("bench_cluster: PostgreSQL binaries not found (initdb, pg_ctl); install postgresql-15")


def as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out.setdefault("PRIVREC_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
    out["MLFLOW_DISABLE_TELEMETRY"] = "true"
    out.update(extra)
    return out


def start_servers(work: Path) -> tuple[list, str]:
    """PostgreSQL (database ``mlflow``) and an MLflow server on it; (stop actions, server URL)."""
    bin_dir = pg_bin()
    data = work / "pg"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(data, user="postgres", group="postgres")
    port = free_port()
    stops: list = []
    subprocess.run(as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                "--no-sync"]), check=True, capture_output=True)
    subprocess.run(as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-w", "-o",
                                f"-c listen_addresses=127.0.0.1 -p {port} -k {data}", "start"]),
                   check=True, capture_output=True)
    stops.append(lambda: subprocess.run(as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w",
                                                     "stop"]), capture_output=True, check=False))
    subprocess.run(as_postgres([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                "mlflow"]), check=True, capture_output=True)
    mport = free_port()
    log = (work / "mlflow.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                               f"postgresql+psycopg://postgres@127.0.0.1:{port}/mlflow", "--artifacts-destination",
                               str(work / "artifacts"), "--host", "127.0.0.1", "--port", str(mport)],
                              env=env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop_server() -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(server.pid, sig)
                server.wait(timeout=15)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()

    stops.insert(0, stop_server)
    url = f"http://127.0.0.1:{mport}"
    for _ in range(480):
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return stops, url
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.5)
    for stop in stops:
        stop()
    raise SystemExit(f"bench_cluster: the MLflow server did not start; see {work / 'mlflow.log'}")


def finished_children(uri: str, experiment: str) -> int:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = {r.info.run_id for r in runs if r.data.tags.get("privrec.sweep") == "true"}
    assert len(parents) == 1, f"{len(parents)} sweep parents in {experiment}"
    return sum(r.info.status == "FINISHED" and r.data.tags.get("mlflow.parentRunId") in parents for r in runs)


def sweep(work: Path, name: str, uri: str, jobs: int, extra: list[str]) -> float:
    seeds = jobs // 3
    folder = work / name
    folder.mkdir()
    cmd = [*PRIVREC, "run", "-m", "privacy.rate=0,0.25,0.5", f"seed=range({seeds})", f"tracking.experiment={name}",
           f"hydra.sweep.dir={folder / 'sweep'}", *extra]
    tic = time.perf_counter()
    done = subprocess.run(cmd, cwd=folder, env=env(MLFLOW_TRACKING_URI=uri), capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - tic
    if done.returncode != 0:
        raise SystemExit(f"bench_cluster: {name} failed:\n{done.stderr[-3000:]}")
    finished = finished_children(uri, name)
    assert finished == seeds * 3, f"{name}: {finished} of {seeds * 3} runs FINISHED"
    print(f"{name:<16} {seconds:7.1f} s  ({finished} runs FINISHED under one parent; {' '.join(extra) or '-'})",
          flush=True)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30, help="runs per sweep (a multiple of 3)")
    parser.add_argument("--batch", type=int, default=len(os.sched_getaffinity(0)),
                        help="jobs submitit runs at once (default: usable cores)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="privrec-bench-cluster-"))
    work.chmod(0o755)
    stops: list = []
    try:
        stops, url = start_servers(work)
        print(f"{args.jobs} runs per sweep; load average before: {os.getloadavg()[0]:.1f}; {os.cpu_count()} cores",
              flush=True)
        sqlite = f"sqlite:///{work / 'mlflow.db'}"
        default = sweep(work, "default", sqlite, args.jobs, [])
        submitit = sweep(work, "submitit", url, args.jobs,
                         ["hydra/launcher=submitit_local", f"hydra.sweeper.max_batch_size={args.batch}"])
        to_server = sweep(work, "default_server", url, args.jobs, [])
        print(f"ratio submitit_local->server / default->SQLite: {submitit / default:.2f}x; "
              f"default->server / default->SQLite: {to_server / default:.2f}x; "
              f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        for stop in stops:
            stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
