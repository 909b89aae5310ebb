"""privrec's Hydra launcher, run for real: a tiny Hydra app swept in worker processes, compared with Hydra's
basic launcher, and killed in the middle of a sweep."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from plugin_helpers import (
    app_env,
    gone,
    job_dirs,
    job_summary,
    read_json,
    run_sweep,
    shm_entries,
    shm_mapped_by,
    shm_mapped_by_anyone,
    start_sweep,
    wait_for,
)

from hydra_plugins.privrec_launcher.privrec_launcher import worker_count

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, /dev/shm and prctl are Linux's")


def _sweep(tmp_path, name, *overrides):
    proc = run_sweep(tmp_path, f"hydra.sweep.dir={name}", *overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp_path / name


@pytest.mark.parametrize("overrides", [["x=1,2,3", "y=a,b"], ["db=a,b", "x=1,2", "+extra=1"]],
                         ids=["value-sweep", "group-sweep"])
def test_jobs_match_the_basic_launcher(tmp_path, overrides):
    common = ["hydra/sweeper=recorder", "hydra.launcher.n_jobs=2", *overrides]
    ours = _sweep(tmp_path, "privrec", "hydra/launcher=privrec", *common)
    basic = _sweep(tmp_path, "basic", "hydra/launcher=basic", *[o for o in common if "n_jobs" not in o])
    assert job_summary(ours) == job_summary(basic)
    assert len(job_dirs(ours)) == 6 if "y=a,b" in overrides else 4
    assert read_json(ours / "returns.json") == read_json(basic / "returns.json")  # values, in job order
    assert [r["num"] for r in read_json(ours / "returns.json")[0]] == list(range(len(job_dirs(ours))))

    main_pids = {read_json(d / "done.json")["pid"] for d in job_dirs(basic)}
    workers = [read_json(d / "done.json") for d in job_dirs(ours)]
    assert len(main_pids) == 1 and not main_pids & {w["pid"] for w in workers}  # basic: in the main process
    assert len({w["pid"] for w in workers}) <= 2 and len({w["ppid"] for w in workers}) == 1
    for w in workers:  # one BLAS thread each; the sweep's size for the lead's tracking code
        assert w["env"] == {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                            "PRIVREC_SWEEP_JOBS": str(len(workers))}


def test_preset_params_batches_and_numbering_match_hydras_basic_sweeper(tmp_path):
    # hydra.sweeper.params from a preset crossed with the command line, in batches of 3 jobs
    args = ["+preset=grid", "x=1,2", "hydra.sweeper.max_batch_size=3"]
    ours = _sweep(tmp_path, "privrec", "hydra/sweeper=recorder", "hydra/launcher=privrec", *args)
    basic = _sweep(tmp_path, "basic", "hydra/sweeper=basic", "hydra/launcher=basic", *args)
    assert job_summary(ours) == job_summary(basic)
    returns = read_json(ours / "returns.json")
    assert [len(batch) for batch in returns] == [3, 3, 2]
    assert [r["num"] for batch in returns for r in batch] == list(range(8))
    assert {read_json(d / "done.json")["env"]["PRIVREC_SWEEP_JOBS"] for d in job_dirs(ours)} == {"8"}


def test_one_worker_process_with_n_jobs_1(tmp_path):
    ours = _sweep(tmp_path, "one", "hydra/launcher=privrec", "hydra.launcher.n_jobs=1", "x=1,2,3")
    pids = {read_json(d / "done.json")["pid"] for d in job_dirs(ours)}
    ppids = {read_json(d / "done.json")["ppid"] for d in job_dirs(ours)}
    assert len(pids) == 1 and pids.isdisjoint(ppids)


def test_a_failing_job_does_not_stop_the_others(tmp_path):
    proc = run_sweep(tmp_path, "hydra.sweep.dir=out", "hydra/launcher=privrec", "hydra.launcher.n_jobs=2",
                     "x=1,2,3,4", "fail_x=2")
    assert proc.returncode != 0
    dirs = job_dirs(tmp_path / "out")
    assert [d.name for d in dirs if (d / "done.json").exists()] == ["0", "2", "3"]
    assert (dirs[1] / "started.json").exists()
    assert "Error executing job with overrides: ['x=2', 'fail_x=2']" in proc.stderr
    assert "job asked to fail: x must not be 2" in proc.stderr


def test_a_failing_job_carries_its_worker_traceback(tmp_path):
    env = app_env(HYDRA_FULL_ERROR="1")
    proc = subprocess.run([sys.executable, "-m", "plugin_app", "-m", "hydra.sweep.dir=out", "x=1,2", "fail_x=1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert "(sweep job #0, in worker process" in proc.stderr and "plugin_app/tasks.py" in proc.stderr


def test_a_bad_key_in_one_structure_is_caught_before_any_job_runs(tmp_path):
    # only db=a has the key only_in_a: the db=b jobs cannot compose
    proc = run_sweep(tmp_path, "hydra.sweep.dir=out", "hydra/launcher=privrec", "db=a,b", "db.only_in_a=5", "x=1,2")
    assert proc.returncode != 0
    assert "Could not override 'db.only_in_a'" in proc.stderr
    assert not list((tmp_path / "out").rglob("started.json"))
    assert not job_dirs(tmp_path / "out")


def _start_slow_sweep(tmp_path):
    """Four 30-s jobs on two workers; returns the process, its descendants and the /dev/shm entries it maps,
    once both workers run a job."""
    before = shm_entries()
    proc = start_sweep(tmp_path, "hydra.sweep.dir=out", "hydra/launcher=privrec", "hydra.launcher.n_jobs=2",
                       "x=1,2,3,4", "sleep=30")
    started = lambda: list((tmp_path / "out").rglob("started.json"))  # noqa: E731
    if not wait_for(lambda: len(started()) >= 2, timeout=60):
        proc.kill()
        pytest.fail(f"the jobs did not start: {proc.communicate()[1][-3000:]}")
    workers = {read_json(p)["pid"] for p in started()}
    family = psutil.Process(proc.pid).children(recursive=True)  # the workers and multiprocessing's tracker
    assert workers <= {p.pid for p in family}
    ours = shm_mapped_by([proc.pid, *workers])
    return proc, {p.pid for p in family}, ours, before


def _assert_cleaned_up(pids, ours, before, *, within: float = 5.0):
    t = time.monotonic()
    assert wait_for(lambda: all(gone(pid) for pid in pids), timeout=within), \
        f"still running {within} s later: {[p for p in pids if not gone(p)]}"
    elapsed = time.monotonic() - t
    assert wait_for(lambda: not ours & shm_entries(), timeout=within), f"left in /dev/shm: {ours & shm_entries()}"
    orphans = lambda: (shm_entries() - before) - shm_mapped_by_anyone()  # noqa: E731 - new, and nobody's
    assert wait_for(lambda: not orphans(), timeout=within), f"new orphan entries in /dev/shm: {orphans()}"
    return elapsed


@linux_only
def test_kill_9_of_the_main_process_takes_the_workers_and_their_semaphores(tmp_path):
    proc, family, ours, before = _start_slow_sweep(tmp_path)
    assert ours, "expected the pool's named semaphores in /dev/shm (spawn start method)"
    proc.kill()  # SIGKILL: no Python code of the main process runs
    proc.wait(timeout=10)
    elapsed = _assert_cleaned_up(family, ours, before)
    print(f"kill -9: {len(family)} child processes gone {elapsed:.2f} s after the main process; "
          f"/dev/shm entries of the sweep removed: {sorted(ours)}")
    assert not list((tmp_path / "out").rglob("done.json"))
    proc.communicate()


@linux_only
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_the_sweep_and_its_workers(tmp_path, how):
    proc, family, ours, before = _start_slow_sweep(tmp_path)
    t = time.monotonic()
    if how == "ctrl-c":  # a terminal's Ctrl-C: SIGINT to the whole foreground process group
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=20)
    print(f"{how}: the main process exited after {time.monotonic() - t:.2f} s")
    assert proc.returncode != 0
    assert "KeyboardInterrupt" in stderr
    _assert_cleaned_up(family, ours, before)
    dirs = job_dirs(tmp_path / "out")
    assert not [d for d in dirs if (d / "done.json").exists()]
    assert len([d for d in dirs if (d / "started.json").exists()]) == 2  # the two jobs not started never ran


@linux_only
def test_the_watchdog_alone_ends_a_worker_whose_parent_died(tmp_path):
    # a grandchild with only the watchdog thread (no parent-death signal); its parent is then killed
    grandchild = textwrap.dedent("""
        import os, threading, time
        from hydra_plugins.privrec_launcher import _worker
        threading.Thread(target=_worker._watch, args=(os.getppid(),), daemon=True).start()
        print(os.getpid(), flush=True)
        time.sleep(60)
    """)
    parent = textwrap.dedent(f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", {grandchild!r}], stdout=subprocess.PIPE, text=True)
        print(child.stdout.readline().strip(), flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, env=app_env())
    pid = int(proc.stdout.readline())
    assert not gone(pid)
    proc.kill()
    proc.wait()
    assert wait_for(lambda: gone(pid), timeout=3)
    proc.stdout.close()


def test_worker_count():
    assert worker_count(4, 10) == 4
    assert worker_count(4, 2) == 2
    assert worker_count(1, 5) == 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert worker_count(-1, 1000) == cores
    assert worker_count(-(cores + 5), 10) == 1
    with pytest.raises(ValueError, match="n_jobs"):
        worker_count(0, 3)


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
                    reason="hydra-optuna-sweeper (privrec[frontier]) is not installed")
def test_optuna_sweeper_runs_its_trials_with_this_launcher(tmp_path):
    proc = run_sweep(tmp_path, "hydra.sweep.dir=out", "hydra/sweeper=optuna", "hydra/launcher=privrec",
                     "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2", "hydra.sweeper.sampler.seed=0",
                     "hydra.sweeper.direction=minimize", "x=choice(1,2,3)", "scalar=true")
    assert proc.returncode == 0, proc.stderr[-3000:]
    dirs = job_dirs(tmp_path / "out")
    assert [d.name for d in dirs] == ["0", "1", "2", "3"]
    main_pid = {read_json(d / "done.json")["ppid"] for d in dirs}
    assert len(main_pid) == 1 and main_pid.isdisjoint(read_json(d / "done.json")["pid"] for d in dirs)
    assert "best_value" in (tmp_path / "out" / "optimization_results.yaml").read_text()
