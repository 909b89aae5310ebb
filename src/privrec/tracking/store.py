"""Where run records go: the store interface, opening a store, the one writer, and repairing after a kill.

- :func:`open_store` checks a tracking URI and experiment **before any work** (one-line ConfigError: unknown
  scheme, missing folder, read-only or corrupt file, unreachable server, empty or deleted experiment), creates
  a new store's schema and the experiment once under a file lock (concurrent first runs are safe), and returns
  MLflow's client (:class:`~privrec.tracking.mlflow_store.MlflowStore`, the reference) or, for a local SQLite
  store at a schema revision it was tested against, the direct writer
  (:class:`~privrec.tracking.sqlite_store.SqliteStore`, an accelerator behind :func:`privrec.speed.enabled`).
- :func:`write_record` is the one writer: it writes a :class:`~privrec.tracking.record.RunRecord` with Ctrl-C
  deferred until the write is done, and if the store fails it saves the record as ``record.json`` in the
  run's folder (``privrec sync`` writes it later) instead of throwing the computed run away.
- :func:`repair`: runs left RUNNING by a process that no longer exists on this host (kill -9) are marked
  FAILED with the tag ``privrec.interrupted``. Every run privrec leaves RUNNING while it works carries the tag
  ``privrec.liveness`` = ``host pid process-start-time`` of the process responsible for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import sqlite3
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from privrec.errors import ConfigError
from privrec.tracking.record import RunRecord
from privrec.tracking.uri import StoreURI, parse_tracking_uri

__all__ = ["CONFIG_SHA_TAG", "INTERRUPTED_TAG", "LAST_WRITTEN", "LIVENESS_TAG", "PARENT_TAG", "RunStore",
           "SWEEP_KEY_TAG", "Written", "check_experiment_name", "deferred_interrupts", "is_gone", "liveness",
           "open_store", "repair", "store_lock", "write_record"]

LIVENESS_TAG = "privrec.liveness"
INTERRUPTED_TAG = "privrec.interrupted"
PARENT_TAG = "mlflow.parentRunId"
SWEEP_KEY_TAG = "privrec.sweep_key"
CONFIG_SHA_TAG = "privrec.config_sha256"


class RunStore(Protocol):
    """A place run records are written to (one MLflow experiment of one tracking store)."""

    uri: str
    experiment: str
    accelerated: bool

    def write(self, record: RunRecord, *, parent_run_id: str | None = None) -> str:
        """Write a whole record; return the new run's id."""
        ...

    def start_parent(self, *, run_name: str, tags: Mapping[str, str]) -> str:
        """Create a sweep's parent run, RUNNING, tagged with this process's liveness."""
        ...

    def reopen_parent(self, run_id: str) -> None:
        """Mark an interrupted parent RUNNING again under this process (``resume=true``)."""
        ...

    def finish_parent(self, run_id: str, status: str, tags: Mapping[str, str]) -> None: ...

    def children(self, parent_run_id: str) -> list[tuple[str, str | None]]:
        """``(status, privrec.config_sha256 tag)`` of every child run of ``parent_run_id``."""
        ...

    def find_sweep(self, sweep_key: str) -> tuple[str, str] | None:
        """``(run id, status)`` of the latest parent run tagged ``privrec.sweep_key=sweep_key``."""
        ...

    def running(self) -> list[tuple[str, str | None]]:
        """``(run id, liveness tag)`` of every RUNNING run of the experiment."""
        ...

    def mark_interrupted(self, run_ids: list[str], reason: str) -> None: ...


# ---------------------------------------------------------------------------------------- liveness
@dataclass(frozen=True)
class _Process:
    host: str
    pid: int
    started: float


def liveness(pid: int | None = None) -> str:
    """``host pid start-time`` of a process (default: this one)."""
    import psutil

    proc = psutil.Process(pid or os.getpid())
    return f"{socket.gethostname()} {proc.pid} {proc.create_time():.2f}"


def is_gone(value: str | None) -> bool:
    """Whether the process a liveness tag names has ended (only answerable for this host)."""
    import psutil

    try:
        host, pid, started = (value or "").rsplit(" ", 2)
        pid_i, started_f = int(pid), float(started)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    try:
        return abs(psutil.Process(pid_i).create_time() - started_f) > 0.05
    except psutil.NoSuchProcess:
        return True


def repair(store: RunStore) -> int:
    """Mark RUNNING runs whose process is gone as FAILED (tag ``privrec.interrupted``); return how many."""
    dead = [run_id for run_id, alive in store.running() if is_gone(alive)]
    if dead:
        store.mark_interrupted(dead, "the process that was recording this run ended (killed) before it finished")
    return len(dead)


# ---------------------------------------------------------------------------------------- opening
@contextlib.contextmanager
def store_lock(loc: StoreURI, *, timeout: float = 600.0) -> Iterator[None]:
    """A file lock serialising schema creation: beside a SQLite file, else one per URI in the temp folder."""
    from filelock import FileLock

    if loc.sqlite_path is not None:
        path = Path(f"{loc.sqlite_path}.lock")
    else:
        digest = hashlib.sha256(loc.uri.encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"privrec-store-{digest}.lock"
    with FileLock(str(path), timeout=timeout):
        yield


def _check_sqlite(path: Path, uri: str) -> bool:
    """Whether the file exists with an MLflow schema; ConfigError when it cannot hold runs."""
    folder = path.resolve().parent
    if not folder.is_dir():
        raise ConfigError(f"tracking.tracking_uri must point into an existing folder; got {uri!r} "
                          f"(no folder {folder}). Create it or choose another path.")
    if not path.exists():
        if not os.access(folder, os.W_OK):
            raise ConfigError(f"tracking.tracking_uri must be in a writable folder; got {uri!r} "
                              f"({folder} is read-only).")
        return False
    if not path.is_file() or not os.access(path, os.R_OK | os.W_OK) or not os.access(folder, os.W_OK):
        raise ConfigError(f"tracking.tracking_uri must be a readable and writable SQLite file in a writable "
                          f"folder; got {uri!r}. Fix its permissions or choose another store.")
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)) as con:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"tracking.tracking_uri must be an MLflow SQLite store; got {uri!r}, which SQLite "
                          f"cannot read ({exc}). Move it aside or choose another store.") from None
    return "alembic_version" in tables


def _check_server(uri: str) -> None:
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as response:
            ok = response.status == 200
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ConfigError(f"tracking.tracking_uri must be a reachable MLflow server; got {uri!r} "
                          f"({type(exc).__name__}). Start the server or fix the URI.") from None
    if not ok:
        raise ConfigError(f"tracking.tracking_uri must be a healthy MLflow server; got {uri!r} (/health failed).")


def check_experiment_name(experiment: object) -> str:
    if not isinstance(experiment, str) or not experiment.strip():
        raise ConfigError(f"tracking.experiment must be a non-empty name; got {experiment!r}.")
    return experiment


def open_store(uri: str | None = None, experiment: str = "privrec") -> RunStore:
    """Check the store and the experiment, create them if needed (once, under a lock) and return a writer."""
    from privrec import speed

    check_experiment_name(experiment)
    loc = parse_tracking_uri(uri)
    has_schema = _check_sqlite(loc.sqlite_path, loc.uri) if loc.sqlite_path is not None else False
    if loc.scheme in ("http", "https"):
        _check_server(loc.uri)
    if has_schema and speed.enabled():
        from privrec.tracking.sqlite_store import SqliteStore

        direct = SqliteStore.open(loc, experiment)  # None unless this exact schema revision was tested
        if direct is not None:
            return direct
    from privrec.tracking.mlflow_store import MlflowStore

    store = MlflowStore(loc, experiment)
    store.prepare()
    if loc.sqlite_path is not None and speed.enabled():
        from privrec.tracking.sqlite_store import SqliteStore

        direct = SqliteStore.open(loc, experiment)
        if direct is not None:
            return direct
    return store


# ---------------------------------------------------------------------------------------- writing
@dataclass(frozen=True)
class Written:
    """Where a record went: ``run_id`` in the store, or ``saved`` (a record.json) with the ``error``."""

    run_id: str | None = None
    saved: Path | None = None
    error: str | None = None


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[list[int]]:
    """Hold SIGINT/SIGTERM until the block ends (a half-written run is worse than a short delay), then
    re-deliver the first one. Only the main thread can do this; elsewhere it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    received: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def hold(signum: int, _frame: object) -> None:
        received.append(signum)

    for sig in previous:
        signal.signal(sig, hold)
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            signal.raise_signal(received[0])


#: The last record :func:`write_record` wrote in this process (for the message after a held Ctrl-C).
LAST_WRITTEN: list[Written] = []


def write_record(store: RunStore, record: RunRecord, *, parent_run_id: str | None = None,
                 save_to: str | os.PathLike | None = None) -> Written:
    """Write ``record`` into ``store`` (Ctrl-C waits for it). If the store fails, save the record in
    ``save_to`` so that ``privrec sync`` can write it later; the returned :class:`Written` says which."""
    with deferred_interrupts():  # a Ctrl-C held here is raised when the block ends: LAST_WRITTEN says what went
        try:
            written = Written(run_id=store.write(record, parent_run_id=parent_run_id))
        except Exception as exc:  # any store failure: keep the computed run
            error = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:300]}"
            if save_to is None:
                raise
            kept = record.with_tags({"privrec.parent_run_id": parent_run_id} if parent_run_id else {})
            written = Written(saved=kept.save(save_to), error=error)
        LAST_WRITTEN[:] = [written]
    return written
