"""Every process-level speed trick of privrec, behind one switch: ``PRIVREC_ACCELERATE`` (default on;
``PRIVREC_ACCELERATE=0`` takes the plain path everywhere, which is the reference the tests compare with).

The tricks change when things happen, never what is computed:

- **Direct SQLite recording** (:mod:`privrec.tracking.sqlite_store`): an existing MLflow SQLite store at a
  tested schema revision is written with ``sqlite3`` in one transaction instead of through MLflow's client
  (whose import costs ~4 s of CPU per process). Plain path: MLflow's client.
- **Exit without teardown** (:func:`exit`): tearing down numpy/scipy/scikit-learn/pandas/Hydra module state
  costs ~0.5 s at the end of every command and does nothing a finished command needs. Plain path:
  ``sys.exit``. Sweeps and processes under a profiler or tracer always exit normally.
- **Attacks on the spare core** (:class:`AttackExecutor`): a single run on a machine with two or more usable
  cores computes its attacks in a ``concurrent.futures`` worker process, which imports scikit-learn while the
  run trains and attacks while the run evaluates. Same function, same random stream: identical metrics.
  Plain path: attacks in the run's own process. Not used with ``attack=none`` or in sweeps (their jobs fill
  every core).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any

__all__ = ["AttackExecutor", "die_with_parent", "enabled", "exit", "usable_cores"]

SWITCH = "PRIVREC_ACCELERATE"


def enabled() -> bool:
    """Whether speed tricks are on (``PRIVREC_ACCELERATE`` unset, ``1``, ``true`` or ``yes``)."""
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def exit(code: object) -> None:  # noqa: A001 - the process exit, as sys.exit
    """End the command with ``code`` (flushing output streams and log handlers first)."""
    code = code if isinstance(code, int) else 1
    if not enabled() or sys.getprofile() or sys.gettrace() or any(a in ("-m", "--multirun") for a in sys.argv[1:]):
        sys.exit(code)  # profilers and coverage tools write their results at a normal exit
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (e.g. `privrec run | head`)
            stream.flush()
    os._exit(code)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def die_with_parent() -> None:
    """Initializer for helper processes: end this process when the process that started it ends (even by
    kill -9). Linux: the kernel sends SIGKILL (``prctl(PR_SET_PDEATHSIG)``); everywhere: a watchdog thread
    that exits when the parent process id changes."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except OSError:  # pragma: no cover - no glibc: the watchdog below still works
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="privrec-parent-watchdog", daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the parent, which stops its helpers


def _warm_up() -> int:
    """Import what the attacks need (scikit-learn: ~1.5 s) while the parent still trains; return the pid."""
    import sklearn.linear_model
    import sklearn.metrics
    import sklearn.model_selection  # noqa: F401

    import privrec.attacks  # noqa: F401

    return os.getpid()


def _attack(attacks: Any, split: Any, treated: Any, model: Any, rng: Any) -> tuple[dict, dict, float]:
    from privrec.experiment import run_attacks

    t = time.perf_counter()
    metrics, missing = run_attacks(attacks, split, treated, model, rng)
    return metrics, missing, time.perf_counter() - t


class AttackExecutor:
    """One worker process for a single run's attacks (``concurrent.futures``, spawn context).

    Start it early (:meth:`start` warms the worker up), :meth:`submit` after training, :meth:`result` after
    evaluating; :meth:`close` always. The worker dies with its parent."""

    def __init__(self) -> None:
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._future: concurrent.futures.Future | None = None
        self._worker: concurrent.futures.Future | None = None  # the warm-up call: its result is the pid

    @classmethod
    def wanted(cls, *, attacks_configured: bool, mode: str) -> bool:
        """Whether a single run should use it: attacks configured, and ``parallel_attacks=true``, or
        ``auto`` with the switch on and two or more usable cores."""
        if not attacks_configured or mode == "false":
            return False
        return mode == "true" or (enabled() and usable_cores() >= 2)

    def start(self) -> AttackExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent)
            self._worker = self._pool.submit(_warm_up)
        return self

    def submit(self, attacks: Any, split: Any, treated: Any, model: Any, rng: Any) -> None:
        self.start()
        assert self._pool is not None
        self._future = self._pool.submit(_attack, attacks, split, treated, model, rng)

    def result(self) -> tuple[dict[str, float], dict[str, str], float]:
        """``(metrics, missing, seconds)``; an attack's exception is raised here."""
        if self._future is None:
            raise RuntimeError("AttackExecutor.result called before submit.")
        return self._future.result()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        busy = self._future is not None and not self._future.done()
        if busy and self._worker is not None and self._worker.done() and self._worker.exception() is None:
            # an interrupted run: stop the attack computation now instead of waiting for it
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._worker.result(), signal.SIGKILL)
        pool.shutdown(wait=True, cancel_futures=True)
