"""The run harness with real processes: the ``privrec`` console script started with ``subprocess.Popen`` in a
temporary folder, on real ML-100K and a real MLflow SQLite store, read back with MLflow's own client.

Each test proves one point of the harness design (numbered as in the redesign's issue):

1. concurrent single runs into a new store: all recorded, provenance never mixed, distinct folders;
2. concurrent sweeps into a new store: two parents, each FINISHED with its own FINISHED children;
3. runs left RUNNING by a dead process are repaired (FAILED, ``privrec.interrupted``); live ones are not;
4. Ctrl-C of a single run: exit 130, one line, exactly one FAILED run;
5. kill -9 of a sweep: no worker or /dev/shm entry outlives it, the report says it is interrupted, and
   ``resume=true`` completes it under the same parent with only the missing jobs;
6. bad stores are refused before any work with one line and exit code 2;
7. a store that fails after the work: the record is saved and ``privrec sync`` writes it, identical, once.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

pytestmark = pytest.mark.slow

PRIVREC = shutil.which("privrec") or str(Path(sys.executable).with_name("privrec"))
DATA_DIR = os.environ.get("PRIVREC_DATA_DIR") or str(Path(__file__).resolve().parents[2] / "shared" / "datasets")
EXPERIMENT = "privrec"
# Variables of the harness that must not leak from the environment pytest runs in into the commands.
_HARNESS_ENV = ("MLFLOW_TRACKING_URI", "HYDRA_FULL_ERROR", "PRIVREC_ACCELERATE", "PRIVREC_JOBS",
                "PRIVREC_PARENT_RUN_ID", "PRIVREC_RESUME_SKIP", "PRIVREC_SWEEP_JOBS")

if not (Path(DATA_DIR) / "ml-100k").is_dir():  # pragma: no cover - the data is on every dev/CI machine
    pytest.skip(f"ML-100K is not in {DATA_DIR} (set PRIVREC_DATA_DIR)", allow_module_level=True)


# ---------------------------------------------------------------------------------------------- helpers
def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _HARNESS_ENV}
    env.update(PRIVREC_DATA_DIR=DATA_DIR, MLFLOW_DISABLE_TELEMETRY="true", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class Command:
    """One ``privrec`` process; stdout and stderr go to files (a full pipe could block it)."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], name: str) -> None:
        self.args = args
        self.out_path = cwd / f".{name}.stdout"
        self.err_path = cwd / f".{name}.stderr"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen([PRIVREC, *args], cwd=cwd, env=env, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)
        _STARTED.append(self.proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout: float = 240) -> int:
        return self.proc.wait(timeout=timeout)

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def lines(self) -> list[str]:
        """Non-empty lines of stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()]

    def explain(self) -> str:
        return (f"privrec {' '.join(self.args)} -> {self.proc.returncode}\n--- stdout\n{self.stdout[-3000:]}\n"
                f"--- stderr\n{self.stderr[-3000:]}")


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_stray_processes():
    """Kill (by pid) every process a test started and left running, and its descendants."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            try:
                family = psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                family = []
            proc.kill()
            proc.wait()
            for child in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()


def _privrec(args: list[str], cwd: Path, *, env: dict[str, str] | None = None, name: str = "cmd",
             timeout: float = 240) -> Command:
    cmd = Command(args, cwd, env or _env(), name)
    cmd.wait(timeout)
    return cmd


def _uri(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


def _client(folder: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(_uri(folder))


def _runs(client, *, experiment: str = EXPERIMENT, filter_string: str = "") -> list:
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return list(client.search_runs([exp.experiment_id], filter_string=filter_string, max_results=1000))


def _children(client, parent_id: str) -> list:
    return _runs(client, filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")


def _artifact(client, run_id: str, path: str, dst: Path) -> str:
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(dst))).read_text(encoding="utf-8")


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _dead_liveness() -> str:
    """A liveness tag of a process of this host that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = psutil.Process(proc.pid).create_time() if proc.poll() is None else time.time()
    proc.wait()
    return f"{socket.gethostname()} {proc.pid} {started:.2f}"


def _live_liveness() -> str:
    return f"{socket.gethostname()} {os.getpid()} {psutil.Process().create_time():.2f}"


def _finished_children(db: Path) -> int:
    """FINISHED child runs in the SQLite file (read-only, without MLflow: cheap enough to poll)."""
    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=5)) as con:
            (n,) = con.execute("SELECT count(*) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                               "WHERE t.key = 'mlflow.parentRunId' AND r.status = 'FINISHED'").fetchone()
            return int(n)
    except sqlite3.Error:  # not created yet, or schema being created
        return 0


def _shm_inodes(pids: list[int] | None = None) -> set[int]:
    """Inodes of the /dev/shm files (semaphores, shared memory) mapped by ``pids`` (default: every process)."""
    if pids is None:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    inodes = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as fh:
                for line in fh:
                    fields = line.split(maxsplit=5)
                    if len(fields) == 6 and fields[5].startswith("/dev/shm/"):
                        inodes.add(int(fields[4]))
        except OSError:  # ended meanwhile, or not ours to read
            pass
    return inodes


def _shm_entries() -> dict[str, int]:
    out = {}
    for entry in os.scandir("/dev/shm"):
        with contextlib.suppress(OSError):
            out[entry.name] = entry.inode()
    return out


def _new_store(folder: Path) -> str:
    """Create the MLflow store and the experiment with MLflow's own client, as ``privrec run`` started in
    ``folder`` would (artifacts in ``folder/mlruns``); return the experiment id."""
    with contextlib.chdir(folder):  # MLflow's client resolves its default artifact root (./mlruns) when built
        client = _client(folder)
        exp = client.get_experiment_by_name(EXPERIMENT)
        return exp.experiment_id if exp else client.create_experiment(EXPERIMENT)


# ---------------------------------------------------------------------------------------------- 1
@pytest.mark.parametrize("accelerate", ["1", "0"], ids=["accelerated", "plain"])
def test_concurrent_single_runs_into_a_new_store_keep_their_own_provenance(tmp_path, accelerate):
    seeds = [0, 1, 2, 3]
    cmds = [Command(["run", f"seed={s}", "attack=none"], tmp_path, _env(PRIVREC_ACCELERATE=accelerate), f"run{s}")
            for s in seeds]
    for cmd in cmds:
        cmd.wait()
    for cmd in cmds:
        assert cmd.proc.returncode == 0, cmd.explain()

    with contextlib.closing(sqlite3.connect(tmp_path / "mlflow.db")) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    client = _client(tmp_path)
    runs = _runs(client)
    assert len(runs) == 4
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(int(r.data.params["seed"]) for r in runs) == seeds

    folders = set()
    for run in runs:
        seed = run.data.params["seed"]
        dst = tmp_path / "artifacts" / run.info.run_id
        overrides = yaml.safe_load(_artifact(client, run.info.run_id, ".hydra/overrides.yaml", dst))
        assert sorted(overrides) == sorted([f"seed={seed}", "attack=none"]), run.info.run_id
        hydra = yaml.safe_load(_artifact(client, run.info.run_id, ".hydra/hydra.yaml", dst))["hydra"]
        assert hydra["overrides"]["task"] == overrides
        folder = Path(hydra["runtime"]["output_dir"])
        assert folder.is_dir()
        on_disk = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
        assert f"seed={seed}" in on_disk  # the folder's own provenance is this run's as well
        folders.add(folder)
    assert len(folders) == 4


# ---------------------------------------------------------------------------------------------- 2
def test_concurrent_sweeps_into_a_new_store_each_get_their_parent_and_children(tmp_path):
    env = _env(PRIVREC_JOBS="1")
    cmds = [Command(["run", "-m", "seed=0,1", "attack=none"], tmp_path, env, f"sweep{i}") for i in range(2)]
    for cmd in cmds:
        cmd.wait()
    for cmd in cmds:
        assert cmd.proc.returncode == 0, cmd.explain()

    client = _client(tmp_path)
    parents = _runs(client, filter_string="tags.`privrec.sweep` = 'true'")
    assert len(parents) == 2
    for parent in parents:
        assert parent.info.status == "FINISHED", parent.data.tags
        children = _children(client, parent.info.run_id)
        assert len(children) == 2
        assert {c.info.status for c in children} == {"FINISHED"}
        assert sorted(c.data.params["seed"] for c in children) == ["0", "1"]
    assert len(_runs(client)) == 6  # 2 parents + 4 children, nothing else


# ---------------------------------------------------------------------------------------------- 3
@pytest.mark.parametrize(
    ("command", "accelerate"),
    [(["run", "attack=none"], "1"), (["run", "attack=none"], "0"),
     (["report", "--experiment", EXPERIMENT, "--sweep", "all", "--x", "seed"], "1")],
    ids=["run-accelerated", "run-plain", "report"])
def test_runs_left_running_by_a_dead_process_are_repaired_and_live_ones_kept(tmp_path, command, accelerate):
    env = _env(PRIVREC_ACCELERATE=accelerate)
    if command[0] == "report":  # something to report on
        first = _privrec(["run", "attack=none"], tmp_path, env=env, name="first")
        assert first.proc.returncode == 0, first.explain()
    exp_id = _new_store(tmp_path)
    client = _client(tmp_path)
    dead = client.create_run(exp_id, run_name="killed", tags={"privrec.liveness": _dead_liveness()}).info.run_id
    live = client.create_run(exp_id, run_name="alive", tags={"privrec.liveness": _live_liveness()}).info.run_id
    elsewhere = client.create_run(exp_id, run_name="other host",
                                  tags={"privrec.liveness": "some-other-host 1 1000.00"}).info.run_id

    cmd = _privrec(command, tmp_path, env=env, name="repair")
    assert cmd.proc.returncode == 0, cmd.explain()

    dead_run = client.get_run(dead)
    assert dead_run.info.status == "FAILED"
    assert dead_run.data.tags.get("privrec.interrupted") == "true"
    assert dead_run.info.end_time is not None
    for run_id in (live, elsewhere):  # alive, or not judgeable from this host: left alone
        kept = client.get_run(run_id)
        assert kept.info.status == "RUNNING"
        assert "privrec.interrupted" not in kept.data.tags


# ---------------------------------------------------------------------------------------------- 4
# CPU seconds the command spends before its computation starts (imports, composing, opening the store; MLflow's
# import on the plain path) with a margin; CPU time, unlike wall time, does not stretch on a busy machine.
_CPU_BEFORE_WORK = {"1": 4.0, "0": 8.0}


@pytest.mark.parametrize("accelerate", ["1", "0"], ids=["accelerated", "plain"])
def test_ctrl_c_of_a_single_run_records_one_failed_run_and_exits_130(tmp_path, accelerate):
    _new_store(tmp_path)  # an existing store: the interrupt lands in the computation, not in schema creation
    cmd = Command(["run", "model.iterations=5000", "seed=7"], tmp_path, _env(PRIVREC_ACCELERATE=accelerate), "long")
    proc = psutil.Process(cmd.pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and cmd.proc.poll() is None:
        cpu = proc.cpu_times()
        if cpu.user + cpu.system >= _CPU_BEFORE_WORK[accelerate]:
            break
        time.sleep(0.2)
    time.sleep(0.5)
    assert cmd.proc.poll() is None, cmd.explain()
    family = proc.children(recursive=True)
    os.kill(cmd.pid, signal.SIGINT)
    code = cmd.wait(60)

    assert code == 130, cmd.explain()
    assert len(cmd.lines()) == 1 and cmd.lines()[0].startswith("privrec: interrupted"), cmd.explain()
    _gone, alive = psutil.wait_procs(family, timeout=5)
    assert not _alive(alive)  # the attack worker (accelerated path) went with the run
    client = _client(tmp_path)
    runs = _runs(client)
    assert [r.info.status for r in runs] == ["FAILED"], cmd.explain()
    assert runs[0].data.params["seed"] == "7"
    assert runs[0].data.tags.get("error")
    assert runs[0].info.run_id in cmd.lines()[0]


# ---------------------------------------------------------------------------------------------- 5
def test_killed_sweep_leaves_nothing_behind_reports_interrupted_and_resumes(tmp_path):
    sweep = ["run", "-m", "seed=0,1,2,3,4,5", "model.iterations=100", "attack=none"]
    env = _env(PRIVREC_JOBS="2")
    shm_before = set(_shm_entries())
    cmd = Command(sweep, tmp_path, env, "sweep")
    db = tmp_path / "mlflow.db"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and cmd.proc.poll() is None and _finished_children(db) < 1:
        time.sleep(0.2)
    assert cmd.proc.poll() is None, "the sweep ended before it could be killed:\n" + cmd.explain()
    assert _finished_children(db) >= 1
    family = psutil.Process(cmd.pid).children(recursive=True)
    assert family, "the sweep has no worker processes"
    ours = _shm_inodes([cmd.pid, *(p.pid for p in family)])  # the pool's semaphores
    os.kill(cmd.pid, signal.SIGKILL)
    cmd.wait(10)

    _gone, alive = psutil.wait_procs(family, timeout=5)
    assert not _alive(alive), [p.pid for p in _alive(alive)]

    def leftovers() -> list[str]:
        """Entries of the sweep's processes still in /dev/shm, and new entries no live process uses (other
        commands running on this machine meanwhile may own new entries, but they have them mapped)."""
        entries = _shm_entries()
        in_use = _shm_inodes()
        return sorted(name for name, inode in entries.items()
                      if inode in ours or (name not in shm_before and inode not in in_use))

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and leftovers():
        time.sleep(0.1)
    assert not leftovers()

    client = _client(tmp_path)
    (parent,) = _runs(client, filter_string="tags.`privrec.sweep` = 'true'")
    assert parent.info.status == "RUNNING"  # until a privrec command repairs it
    finished_before = [c for c in _children(client, parent.info.run_id) if c.info.status == "FINISHED"]
    n = len(finished_before)
    assert 1 <= n < 6

    report = _privrec(["report", "--experiment", EXPERIMENT, "--x", "seed"], tmp_path, env=env, name="report")
    assert report.proc.returncode == 0, report.explain()
    said = [line for line in (report.stdout + report.stderr).splitlines() if "interrupted" in line]
    assert len(said) == 1, report.explain()
    assert parent.info.run_id in said[0] and f"{n} of 6 jobs finished" in said[0], said[0]
    repaired = client.get_run(parent.info.run_id)
    assert repaired.info.status == "FAILED"
    assert repaired.data.tags.get("privrec.interrupted") == "true"

    resumed = _privrec([*sweep, "resume=true"], tmp_path, env=env, name="resume")
    assert resumed.proc.returncode == 0, resumed.explain()
    assert f"resuming sweep {parent.info.run_id}: {n} finished job(s) will be skipped" in resumed.stdout
    parents = _runs(client, filter_string="tags.`privrec.sweep` = 'true'")
    assert [p.info.run_id for p in parents] == [parent.info.run_id]  # the same parent, no new one
    final = client.get_run(parent.info.run_id)
    assert final.info.status == "FINISHED", final.data.tags
    children = _children(client, parent.info.run_id)
    assert [c.info.status for c in children].count("FINISHED") == 6, [c.info.status for c in children]
    assert len(children) == 6  # only the missing jobs ran again
    assert len({c.data.tags["privrec.config_sha256"] for c in children}) == 6
    assert sorted(int(c.data.params["seed"]) for c in children) == [0, 1, 2, 3, 4, 5]
    old = {c.info.run_id for c in finished_before}
    assert old <= {c.info.run_id for c in children}


# ---------------------------------------------------------------------------------------------- 6
def _corrupt(folder: Path) -> None:
    (folder / "mlflow.db").write_bytes(b"this is not a database\x00\xff" * 512)


def _directory(folder: Path) -> None:
    (folder / "mlflow.db").mkdir()


def _deleted_experiment(folder: Path) -> None:
    _client(folder).delete_experiment(_new_store(folder))


@pytest.mark.parametrize(
    ("overrides", "setup"),
    [(["tracking.tracking_uri=sqlite:///no/such/folder/mlflow.db"], None),
     ([], _corrupt),
     ([], _directory),
     ([], _deleted_experiment),
     (["tracking.experiment=''"], None),
     (["tracking.tracking_uri=ftp://x"], None),
     (["tracking.tracking_uri=http://127.0.0.1:9"], None)],
    ids=["missing-folder", "corrupt-file", "directory", "deleted-experiment", "empty-experiment", "ftp",
         "no-server"])
@pytest.mark.parametrize("accelerate", ["1", "0"], ids=["accelerated", "plain"])
def test_bad_stores_are_refused_before_any_work_with_one_line(tmp_path, overrides, setup, accelerate):
    if setup is not None:
        setup(tmp_path)
    before = (tmp_path / "mlflow.db").read_bytes() if (tmp_path / "mlflow.db").is_file() else None
    cmd = _privrec(["run", "attack=none", *overrides], tmp_path, env=_env(PRIVREC_ACCELERATE=accelerate), name="bad")

    assert cmd.proc.returncode == 2, cmd.explain()
    assert len(cmd.lines()) == 1, cmd.explain()
    assert cmd.lines()[0].startswith("privrec: error: tracking"), cmd.explain()
    assert not (tmp_path / "no").exists()
    if setup is None:
        assert not (tmp_path / "mlflow.db").exists()  # no store was created for a run that did not happen
    elif setup is _deleted_experiment:
        assert _runs(_client(tmp_path)) == []
        client = _client(tmp_path)
        exp = client.get_experiment_by_name(EXPERIMENT)
        assert exp.lifecycle_stage == "deleted"
        assert list(client.search_runs([exp.experiment_id], run_view_type=3)) == []  # ViewType.ALL
    elif before is not None:
        assert (tmp_path / "mlflow.db").read_bytes() == before


# ---------------------------------------------------------------------------------------------- 7
class _BrokenStore:
    uri = "sqlite:///broken.db"
    experiment = EXPERIMENT
    accelerated = False

    def write(self, record, *, parent_run_id=None):
        raise OSError("disk I/O error\nsecond line")


def _record(store_uri: str):
    from privrec.tracking.record import RunRecord

    return RunRecord(
        run_name="ConsentDrop ALS seed=3", status="FINISHED", start_time=1_700_000_000_000,
        end_time=1_700_000_004_321,
        params={"seed": "3", "model.factors": "64", "tracking.tracking_uri": store_uri,
                "tracking.experiment": EXPERIMENT, "privacy.rate": "0.25"},
        metrics={"eval/ndcg_at_10": 0.2866, "eval/opted_out/recall_at_20": float("nan"), "data/test_users": 943.0},
        tags={"privrec.config_sha256": "ab" * 32, "privacy.transform": "consent_drop", "error": "none"},
        artifacts={".hydra/overrides.yaml": "- seed=3\n- attack=none\n", "config/resolved.yaml": "seed: 3\n",
                   "segment_metrics.csv": "segment,users\noverall,943\nconsentéd,707\n"})


def _same_as_record(client, run_id: str, record, dst: Path, *, parent: str | None) -> None:
    run = client.get_run(run_id)
    assert run.info.status == record.status
    assert (run.info.start_time, run.info.end_time) == (record.start_time, record.end_time)
    assert run.info.run_name == record.run_name
    assert run.data.params == dict(record.params)
    assert run.data.metrics.keys() == record.metrics.keys()
    for key, value in record.metrics.items():
        got = run.data.metrics[key]
        assert (math.isnan(got) and math.isnan(value)) or got == value, key
    for key, value in record.tags.items():
        assert run.data.tags.get(key) == value, key
    assert run.data.tags.get("mlflow.parentRunId") == parent
    assert "privrec.parent_run_id" not in run.data.tags or parent is not None
    for path, text in record.artifacts.items():
        assert _artifact(client, run_id, path, dst / run_id) == text, path


def test_a_record_the_store_refused_is_saved_and_synced_once(tmp_path):
    from privrec.tracking.record import RECORD_FILE, RunRecord
    from privrec.tracking.store import write_record

    store_dir = tmp_path / "store"
    store_dir.mkdir()
    _new_store(store_dir)
    client = _client(store_dir)
    exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    parent = client.create_run(exp_id, run_name="sweep").info.run_id
    record = _record(_uri(store_dir))
    job = tmp_path / "multirun" / "0"

    written = write_record(_BrokenStore(), record, parent_run_id=parent, save_to=job)
    assert written.run_id is None
    assert written.saved == job / RECORD_FILE and written.saved.is_file()
    assert written.error == "OSError: disk I/O error"
    saved = RunRecord.from_json(written.saved.read_text())
    assert saved.tags["privrec.parent_run_id"] == parent
    assert math.isnan(saved.metrics["eval/opted_out/recall_at_20"])
    assert json.loads(written.saved.read_text())["format"] == "privrec.run_record/1"

    sync = _privrec(["sync", str(tmp_path / "multirun")], tmp_path, name="sync")
    assert sync.proc.returncode == 0, sync.explain()
    children = _children(client, parent)
    assert len(children) == 1
    _same_as_record(client, children[0].info.run_id, record, tmp_path / "dl", parent=parent)
    assert not (job / RECORD_FILE).exists()

    again = _privrec(["sync", str(tmp_path / "multirun")], tmp_path, name="sync2")
    assert again.proc.returncode in (0, 2), again.explain()
    assert len(again.lines()) <= 1, again.explain()
    assert len(_runs(client)) == 2  # the parent and the one synced run


@pytest.mark.parametrize("accelerate", ["1", "0"], ids=["accelerated", "plain"])
def test_a_real_run_whose_store_fails_after_the_check_is_saved_then_synced(tmp_path, accelerate):
    exp_id = _new_store(tmp_path)
    artifact_dir = Path(_client(tmp_path).get_experiment(exp_id).artifact_location.removeprefix("file://"))
    artifact_dir.parent.mkdir(parents=True, exist_ok=True)
    artifact_dir.write_text("a file where the store keeps its artifacts: every write of a run fails\n")
    env = _env(PRIVREC_ACCELERATE=accelerate)

    cmd = _privrec(["run", "attack=none", "seed=5"], tmp_path, env=env, name="failing")
    assert cmd.proc.returncode == 1, cmd.explain()
    assert "privrec sync" in cmd.stderr, cmd.explain()
    (saved,) = (tmp_path / "outputs").rglob("record.json")
    from privrec.tracking.record import RunRecord

    record = RunRecord.from_json(saved.read_text())
    assert record.status == "FINISHED" and record.params["seed"] == "5"

    still = _privrec(["sync", str(tmp_path / "outputs")], tmp_path, env=env, name="sync-broken")
    assert still.proc.returncode == 1, still.explain()
    assert len(still.lines()) == 1 and still.lines()[0].startswith("privrec: error:"), still.explain()
    assert saved.is_file()  # kept for the next attempt

    artifact_dir.unlink()  # the store is healthy again
    sync = _privrec(["sync", str(tmp_path / "outputs")], tmp_path, env=env, name="sync")
    assert sync.proc.returncode == 0, sync.explain()
    client = _client(tmp_path)
    finished = [r for r in _runs(client) if r.info.status == "FINISHED"]
    assert len(finished) == 1
    _same_as_record(client, finished[0].info.run_id, record, tmp_path / "dl", parent=None)
    assert not saved.exists()
    # recorded complete or not at all: the accelerated writer's one transaction leaves nothing; MLflow's client
    # cannot create a finished run, so each failed write of the plain path closes and deletes the run it had begun
    assert [r.info.run_id for r in _runs(client)] == [finished[0].info.run_id]
    from mlflow.entities import ViewType

    exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    deleted = client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    assert len(deleted) == (0 if accelerate == "1" else 2)
    assert all(r.info.status == "FAILED" for r in deleted)
