"""Run the test application (``app/plugin_app``) in a real process and read what its sweep left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml

APP = Path(__file__).resolve().parent / "app"  # plugin_app and a test-only sweeper (hydra_plugins namespace)
SHM = Path("/dev/shm")


def app_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PRIVREC_JOBS", "PRIVREC_SWEEP_JOBS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                        "OMP_NUM_THREADS", "HYDRA_FULL_ERROR")}
    env["PYTHONPATH"] = os.pathsep.join([str(APP), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def command(*overrides: str) -> list[str]:
    return [sys.executable, "-m", "plugin_app", "-m", *overrides]


def run_sweep(cwd: Path, *overrides: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command(*overrides), cwd=cwd, env=app_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


def start_sweep(cwd: Path, *overrides: str) -> subprocess.Popen:
    """Start a sweep in its own session (so that a test can send a terminal's Ctrl-C to its process group)."""
    return subprocess.Popen(command(*overrides), cwd=cwd, env=app_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))


def job_summary(sweep_dir: Path) -> list[dict]:
    """What a job left that must not depend on the launcher: its folder, its task config and overrides, and
    Hydra's numbering of it."""
    rows = []
    for d in job_dirs(sweep_dir):
        hydra = yaml.safe_load((d / ".hydra" / "hydra.yaml").read_text())["hydra"]
        rows.append({"dir": d.name, "files": sorted(p.name for p in d.iterdir() if p.name != "tasks.log"),
                     "overrides": (d / ".hydra" / "overrides.yaml").read_text(),
                     "config": (d / ".hydra" / "config.yaml").read_text(),
                     "job": {k: hydra["job"][k] for k in ("id", "num", "override_dirname", "name")},
                     "output_dir": Path(hydra["runtime"]["output_dir"]).relative_to(sweep_dir.resolve()).as_posix(),
                     "choices": {k: v for k, v in hydra["runtime"]["choices"].items()
                                 if k not in ("hydra/launcher", "hydra/sweeper")}})
    return rows


def read_json(path: Path):
    return json.loads(path.read_text())


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (a zombie waiting for its reaper computes nothing)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def shm_entries() -> set[str]:
    return set(os.listdir(SHM)) if SHM.is_dir() else set()


def shm_mapped_by(pids) -> set[str]:
    """The /dev/shm entries (e.g. multiprocessing's named semaphores ``sem.mp-*``) the processes have mapped."""
    names = set()
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if f" {SHM}/" in line:
                names.add(line.split(f"{SHM}/", 1)[1].split()[0])
    return names


def shm_mapped_by_anyone() -> set[str]:
    return shm_mapped_by(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
