"""Run a single run's attacks in a second process, alongside evaluation.

The attacks need scikit-learn, whose import (with scipy.stats) costs about 1.5-2 s here - as much as training
and evaluating ALS on ML-100K. A single ``privrec run`` on a machine with a spare core therefore starts an
:class:`AttackWorker` when the command starts: the process imports the attack stack while the main process
composes the config, loads, splits, treats and trains. After training the main process sends it the
attack inputs (split, treated data, fitted model and the attack stream, pickled: ~5 MB / 10 ms on ML-100K),
evaluates meanwhile, and collects the metrics. The worker calls the very same
:func:`privrec.experiment.run_attacks` with the same generator state, so its metrics are identical to an
in-process run's (``tests/attacks/test_worker.py``). Sweeps do not use it: their jobs already fill every core.

Protocol (``python -m privrec.attacks.worker``): one pickled ``(attacks, split, treated, model, rng)`` on
stdin; on stdout an 8-byte little-endian length, then one pickled ``("ok", metrics, missing, seconds)`` or
``("error", exception)``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from typing import Any

__all__ = ["AttackWorker", "COMMAND"]

COMMAND = [sys.executable, "-m", "privrec.attacks.worker"]


class AttackWorker:
    """One use: :meth:`submit` the inputs, then :meth:`result`."""

    def __init__(self, proc: subprocess.Popen | None = None) -> None:
        """``proc``: a process already started with :data:`COMMAND` and binary stdin/stdout pipes (the CLI
        starts it before importing anything heavy); else one is started now."""
        self._proc = proc or subprocess.Popen(COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, attacks: Any, split: Any, treated: Any, model: Any, rng: Any) -> None:
        """Send the inputs without waiting for the worker to finish its imports (a thread feeds the pipe)."""
        payload = pickle.dumps((attacks, split, treated, model, rng), protocol=pickle.HIGHEST_PROTOCOL)

        def feed() -> None:
            try:
                self._proc.stdin.write(payload)
                self._proc.stdin.close()
            except BaseException as exc:  # the worker died; result() reports it
                self._error = exc

        self._writer = threading.Thread(target=feed, name="privrec-attack-feed", daemon=True)
        self._writer.start()

    def result(self) -> tuple[dict[str, float], dict[str, str], float]:
        """``(metrics, missing, seconds)`` as :func:`privrec.experiment.run_attacks` returns them (plus the
        worker's own compute time); an exception raised by an attack is re-raised here."""
        header = self._proc.stdout.read(8)  # the answer's length, then the answer (no wait for the exit)
        out = self._proc.stdout.read(int.from_bytes(header, "little")) if len(header) == 8 else b""
        if self._writer is not None:
            self._writer.join()
        try:
            answer = pickle.loads(out) if out else None
        except Exception:  # noqa: BLE001 - a truncated answer: the process died mid-write
            answer = None
        if answer is None:
            raise RuntimeError(f"the attack worker process ended without a result (exit code {self._proc.wait()}).")
        if answer[0] == "error":
            raise answer[1]
        _, metrics, missing, seconds = answer
        return metrics, missing, seconds

    def close(self) -> None:
        """Stop the process if it still runs and release its pipes (safe to call more than once)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._writer is not None:
            self._writer.join()
        for pipe in (self._proc.stdin, self._proc.stdout):
            try:
                pipe.close()
            except (OSError, ValueError):  # already closed, or a broken pipe on a killed process
                pass


def main() -> int:
    # Import everything an attack needs while the main process is still training.
    import sklearn.linear_model
    import sklearn.metrics
    import sklearn.model_selection  # noqa: F401

    from privrec.experiment import run_attacks

    raw = sys.stdin.buffer.read()
    if not raw:
        return 0
    out = sys.stdout.buffer
    try:
        attacks, split, treated, model, rng = pickle.loads(raw)
        t = time.perf_counter()
        metrics, missing = run_attacks(attacks, split, treated, model, rng)
        answer: tuple = ("ok", metrics, missing, time.perf_counter() - t)
    except Exception as exc:  # noqa: BLE001 - handed to the main process, which raises it
        try:
            pickle.dumps(exc)
            answer = ("error", exc)
        except Exception:  # noqa: BLE001 - an exception that does not pickle
            answer = ("error", RuntimeError(f"{type(exc).__name__} in the attack worker"))
    payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(len(payload).to_bytes(8, "little") + payload)
    out.flush()
    sys.stderr.flush()
    os._exit(0)  # nothing to clean up; tearing down sklearn/scipy would cost the caller ~0.5 s


if __name__ == "__main__":
    sys.exit(main())
