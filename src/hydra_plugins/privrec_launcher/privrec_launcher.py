"""privrec's Hydra launcher: a sweep's jobs in parallel worker processes that die with the sweep.

Select it with ``hydra/launcher=privrec`` (privrec's default, see ``conf/hydra/privrec.yaml``). Options:

- ``n_jobs``: worker processes. Default ``${oc.decode:${oc.env:PRIVREC_JOBS,-1}}``: the environment variable
  ``PRIVREC_JOBS``, else -1. -1 is every core this process may use (``os.sched_getaffinity``), -2 all but one,
  and so on; never more workers than the batch has jobs. ``n_jobs=1`` still runs the jobs in one worker
  process (so that a job behaves the same at any ``n_jobs``); ``hydra/launcher=basic`` runs them in turn in
  the main process.

How a batch runs (Hydra's public plugin API, Python's ``concurrent.futures``; nothing patched):

- A ``ProcessPoolExecutor`` with the ``spawn`` start method is created for the batch and shut down before
  ``launch`` returns (so no worker outlives a batch: between two batches of the Optuna sweeper there is none).
  ``spawn``, not ``fork`` (the main process has threads) nor ``forkserver`` (its workers would be children of
  the fork server, and the parent they watch would not be the sweep's). Each worker restores the main
  process's Hydra state (``setup_globals``, ``Singleton.set_state``), composes its job's config itself
  (``config_loader.load_sweep_config``), numbers it as Hydra's basic launcher does (``hydra.job.id`` =
  ``hydra.job.num`` = the job's index), sets ``HydraConfig`` and runs it with Hydra's ``run_job``; so job
  folders, ``.hydra/*.yaml`` files and callbacks are those of the basic launcher. The jobs a worker runs in one
  batch share the restored state and config loader, as all jobs share them in the basic launcher. The task
  function and Hydra's state travel to the workers pickled with cloudpickle (Hydra's own resolvers are
  closures that plain pickle refuses); a module-level task function is pickled by reference.
- The sweep talks (:mod:`._report`): as each job ends, one line with its swept values and headline metric (or
  FAILED and the reason), a progress line with ETA, and the warnings of every job counted in this process
  (workers record theirs instead of printing them). Jobs are told (``PRIVREC_LAUNCHER_REPORTS``) not to print
  their own line.
- ``JobReturn``s come back in job order. A job whose task raises is a FAILED ``JobReturn`` (the sweeper raises
  its exception after the batch) and does not stop the other jobs; an error outside the task (a config that
  does not compose, a worker that died) is raised once the batch has ended.
- Workers run BLAS single-threaded: ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``OMP_NUM_THREADS`` are
  set to 1 (unless already set) in the environment the workers are started with.
- Workers die with the main process: see :func:`hydra_plugins.privrec_launcher._worker.die_with_parent`
  (Linux's parent-death signal, and a watchdog thread). On Ctrl-C or SIGTERM the main process cancels the jobs
  not started, terminates the workers and raises ``KeyboardInterrupt``. After a kill -9 of the main process,
  the workers are killed by the kernel and multiprocessing's resource tracker removes the pool's semaphores
  from /dev/shm once the last of them is gone.
"""

import contextlib
import io
import logging
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import II, DictConfig

from hydra_plugins.privrec_launcher import _report, _worker

__all__ = ["BLAS_THREAD_VARIABLES", "PrivrecLauncher", "PrivrecLauncherConf", "usable_cores", "worker_count"]

log = logging.getLogger(__name__)

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
_START_METHOD = "spawn"
_TERMINATE_GRACE = 2.0  # seconds a terminated worker gets before it is killed
_TICK = 1.0  # seconds between two refreshes of the progress line


@dataclass
class PrivrecLauncherConf:
    _target_: str = "hydra_plugins.privrec_launcher.privrec_launcher.PrivrecLauncher"
    n_jobs: int = II("oc.decode:${oc.env:PRIVREC_JOBS,-1}")


ConfigStore.instance().store(group="hydra/launcher", name="privrec", node=PrivrecLauncherConf, provider="privrec")


def usable_cores() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worker_count(n_jobs: int, n_tasks: int) -> int:
    """Worker processes for ``n_tasks`` jobs: ``n_jobs`` if positive, else all usable cores + 1 + ``n_jobs``
    (-1: all); at least 1, at most ``n_tasks``."""
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("hydra.launcher.n_jobs must be a positive number of workers or -1 (all cores); got 0.")
    wanted = n_jobs if n_jobs > 0 else usable_cores() + 1 + n_jobs
    return max(1, min(wanted, n_tasks))


class PrivrecLauncher(Launcher):
    def __init__(self, n_jobs: int = -1) -> None:
        self.n_jobs = n_jobs
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if not job_overrides:
            return []
        workers = worker_count(self.n_jobs, len(job_overrides))
        log.info("Launching %d jobs in %d worker processes", len(job_overrides), workers)
        for idx, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", initial_job_idx + idx, " ".join(filter_overrides(overrides)))
        state = cloudpickle.dumps(Singleton.get_state())
        context = cloudpickle.dumps((self.hydra_context, self.config, self.task_function))
        report = _report.current()
        owned = report is None  # launched by another sweeper: this batch is the whole report
        if report is None:
            from privrec.tracking.hydra_callback import current_swept_keys

            report = _report.SweepReport(len(job_overrides), swept=current_swept_keys())
        try:
            with _single_threaded_blas(), _sigterm_raises_keyboard_interrupt(), _jobs_do_not_report():
                return _run_batch((state, context), [list(o) for o in job_overrides], initial_job_idx, workers,
                                  report)
        finally:
            report.clear()
            if owned:
                report.finish()


def _run_batch(payload: tuple[bytes, bytes], batch: list[list[str]], initial_job_idx: int,
               workers: int, report: _report.SweepReport | None = None) -> list[JobReturn]:
    """Run ``batch`` in a new pool of ``workers`` processes; the pool is gone when this returns or raises. Each
    job is reported to ``report`` as it ends."""
    others = set(multiprocessing.active_children())  # child processes that are not this pool's workers
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(_START_METHOD),
                                   initializer=_worker.start, initargs=(os.getpid(),))
    returns: dict[int, JobReturn] = {}
    try:
        futures: list[Future] = [executor.submit(_worker.run, *payload, initial_job_idx + i, overrides)
                                 for i, overrides in enumerate(batch)]
        pending = set(futures)
        while pending:
            if report is not None:
                report.tick()
            done, pending = wait(pending, timeout=_TICK, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=futures.index):
                i = futures.index(future)
                returns[i] = _finished(future, initial_job_idx + i, batch[i], report)
    except BaseException:  # Ctrl-C, SIGTERM (see below), or anything else: the jobs must not run on
        executor.shutdown(wait=False, cancel_futures=True)
        _stop([p for p in multiprocessing.active_children() if p not in others])
        raise
    finally:
        executor.shutdown(wait=True)
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:  # not a task's exception (run_job keeps those in the JobReturn): composition, a dead worker
        raise errors[0]
    return [returns[i] for i in range(len(futures))]


def _finished(future: Future, idx: int, overrides: list[str], report: _report.SweepReport | None) -> Any:
    """A finished job's ``JobReturn`` (None when its worker failed outside the task), reported to ``report``."""
    error = future.exception()
    ret, warned = (None, []) if error is not None else pickle.loads(future.result())
    if report is None:
        return ret
    if error is None and ret.status is JobStatus.FAILED:
        with contextlib.redirect_stderr(io.StringIO()):  # ``return_value`` reports a failed job on stderr
            try:
                _ = ret.return_value
            except BaseException as exc:  # noqa: BLE001 - the job's own exception, stored by run_job
                error = exc
    value = None if error is not None else ret.return_value
    objectives = ret.cfg.get("objectives") if error is None and ret.cfg is not None else None
    if isinstance(value, tuple | list) and objectives:  # an optimising sweeper's job returns its objectives
        value = dict(zip(objectives, value, strict=False))
    report.job_done(idx, overrides, value=value, error=error, warnings=warned)
    return ret


@contextlib.contextmanager
def _jobs_do_not_report() -> Iterator[None]:
    """Workers inherit ``PRIVREC_LAUNCHER_REPORTS=1``: the launcher prints each job's line, the job does not."""
    from privrec.tracking.hydra_callback import REPORTED_ENV

    saved = os.environ.get(REPORTED_ENV)
    os.environ[REPORTED_ENV] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(REPORTED_ENV, None)
        else:
            os.environ[REPORTED_ENV] = saved


def _stop(processes: list[Any]) -> None:
    for p in processes:
        p.terminate()
    for p in processes:
        p.join(_TERMINATE_GRACE)
        if p.is_alive():
            p.kill()
            p.join()


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Start workers with one BLAS/OpenMP thread each (variables already set are kept)."""
    saved = {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _sigterm_raises_keyboard_interrupt() -> Iterator[None]:
    """While a batch runs, SIGTERM stops it like Ctrl-C does (only where Python's default would have killed
    the process outright: in the main thread, with no SIGTERM handler of the application's)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
