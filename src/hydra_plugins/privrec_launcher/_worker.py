"""The worker-process side of :class:`~hydra_plugins.privrec_launcher.privrec_launcher.PrivrecLauncher`.

Kept apart from the plugin modules, and named with a leading underscore, on purpose: Hydra's plugin scanner
imports (and re-executes) every module of the ``hydra_plugins`` namespace whose name does not start with
``_``, and a job's ``Singleton.set_state`` makes it scan again inside the worker. This module holds the
functions a worker is running, so it stays out of that scan.

Everything here runs in a worker process started with the ``spawn`` method: it composes one job's config and
runs it with Hydra's public ``run_job``, as Hydra's basic launcher does in its own process.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

import cloudpickle
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, run_job, setup_globals
from omegaconf import open_dict

__all__ = ["PARENT_CHECK_INTERVAL", "die_with_parent", "run", "start"]

PARENT_CHECK_INTERVAL = 0.5  # seconds between two checks of the watchdog thread
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def start(parent_pid: int) -> None:
    """The pool's initializer: die with the sweep's main process, and leave Ctrl-C to it.

    A Ctrl-C in a terminal sends SIGINT to every process of the foreground group; the main process then
    cancels the sweep and terminates the workers (a worker must not turn it into a failed job of its own)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid)


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit when ``parent_pid`` (the process that started it) exits, however it exits.

    Two mechanisms, so that neither a kill -9 of the parent nor a platform without the first leaves this
    process computing on: Linux's ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (the kernel kills this process the
    moment the parent thread that started it exits), and a daemon thread that calls ``os._exit`` once
    ``os.getppid()`` is no longer ``parent_pid`` (checked every :data:`PARENT_CHECK_INTERVAL` seconds)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="privrec-parent-watchdog", daemon=True).start()


def _watch(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_INTERVAL)
        if os.getppid() != parent_pid:
            os._exit(1)


def run(state: bytes, context: bytes, idx: int, overrides: Sequence[str]) -> bytes:
    """Compose and run job number ``idx`` of a sweep; returns its pickled ``(JobReturn, warnings)``.

    ``warnings``: the distinct warnings the job raised, one line each (``Category: first line``), sorted; they
    are not printed here but counted and printed once by the sweep's main process
    (:class:`._report.SweepReport`), instead of every job printing them with a file path.

    ``state`` is the main process's pickled Hydra ``Singleton`` state and ``context`` its pickled
    ``(hydra_context, master config, task function)`` (see :func:`_restore`). A task that raises gives a FAILED
    ``JobReturn`` (Hydra's ``run_job`` catches it); its traceback in this worker is attached to the exception
    as a note. The result is pickled with cloudpickle, which also takes a class that a later scan of Hydra's
    plugins redefined (by value)."""
    setup_globals()
    hydra_context, config, task_function = _restore(state, context)
    sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(sweep_config):  # as Hydra's basic launcher numbers its jobs
        sweep_config.hydra.job.id = idx
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    with warnings.catch_warnings(record=True) as caught:  # a fresh warning registry per job: counted per job
        ret = run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                      job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    if ret.status is JobStatus.FAILED:
        _keep_traceback(ret, idx)
    lines = sorted({f"{w.category.__name__}: {(str(w.message).strip().splitlines() or [''])[0][:500]}"
                    for w in caught})
    return cloudpickle.dumps((ret, lines))


_RESTORED: dict[str, Any] = {}  # this worker's last (state, context) bytes and what they unpickled to


def _restore(state: bytes, context: bytes) -> tuple:
    """Restore the main process's Hydra state and unpickle the batch's context, once per batch in a worker.

    The jobs of a batch that run in one worker then share one config loader (and its cache of config files)
    and one Hydra state, as all jobs share them in Hydra's basic launcher (~0.1 s saved per job). The state is
    restored before the context is unpickled: restoring it makes Hydra scan (and re-execute) its plugin
    modules, and the config classes the job's config refers to must be those the modules define afterwards."""
    key = (state, context)
    if _RESTORED.get("key") != key:
        _RESTORED.clear()
        Singleton.set_state(pickle.loads(state))
        _RESTORED.update(key=key, value=pickle.loads(context))
    return _RESTORED["value"]


def _keep_traceback(ret: JobReturn, idx: int) -> None:
    """Note the worker's traceback on a failed job's exception (pickling drops ``__traceback__``), and
    replace an exception that cannot be pickled by a ``RuntimeError`` that names it."""
    with contextlib.redirect_stderr(io.StringIO()):  # ``return_value`` reports a failed job on stderr
        try:
            _ = ret.return_value
        except BaseException as exc:  # noqa: BLE001 - the job's own exception, stored by run_job
            error = exc
        else:  # pragma: no cover - FAILED always raises
            return
    text = "".join(traceback.format_exception(error)).rstrip()
    try:
        pickle.loads(cloudpickle.dumps(error))
    except Exception:  # noqa: BLE001 - any pickling failure
        error = RuntimeError(f"{type(error).__qualname__}: {error}")
        ret.return_value = error
    error.add_note(f"(sweep job #{idx}, in worker process {os.getpid()})\n{text}")
