"""Progress inside long stages (model fitting, evaluation batches, attack batches), in one place.

:func:`track` returns a :class:`Progress` for one stage: ``update(n)`` as work is done, ``close()`` (or a
``with`` block) at the end. On a terminal it is a tqdm bar on stderr that appears only once the stage has run
for :data:`BAR_DELAY` seconds (so quick stages never flash a bar); when stderr is not a terminal (a log file, a
cluster job, a pipe) it writes one log line every :data:`INTERVAL` seconds through the ``privrec.progress``
logger (to stderr when nothing configured logging)::

    privrec: evaluate 12,288/100,000 users (12%), 410 users/s, ETA 3m34s

Lines carry counts, rates and times only: never an id or a record value.

One process-wide switch: the run's ``progress`` config key (:func:`configure`; ``progress: false`` turns every
bar and line off). A run's attacks may be computed in another process; :func:`carry` wraps what is sent there
so the switch travels with it. ``PRIVREC_PROGRESS=0`` in the environment turns progress off before any config
is read; ``PRIVREC_PROGRESS_INTERVAL`` sets the seconds between log lines.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["INTERVAL", "Progress", "carry", "configure", "duration", "enabled", "line_interval", "track"]

ENV = "PRIVREC_PROGRESS"
INTERVAL_ENV = "PRIVREC_PROGRESS_INTERVAL"
#: Seconds between two log lines when stderr is not a terminal.
INTERVAL = 30.0
#: Seconds a stage runs before its bar appears on a terminal.
BAR_DELAY = 2.0

logger = logging.getLogger("privrec.progress")
_STATE: dict[str, bool] = {}


def enabled() -> bool:
    """Whether progress is shown in this process (:func:`configure`, else ``PRIVREC_PROGRESS``, else on)."""
    if "enabled" in _STATE:
        return _STATE["enabled"]
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def configure(on: bool) -> None:
    """Turn progress on or off for this process (the run's ``progress`` key)."""
    _STATE["enabled"] = bool(on)


class _Carrier(dict):
    """A dict that, when unpickled in another process, sets that process's progress switch first."""

    def __init__(self, items: Mapping[Any, Any], on: bool) -> None:
        super().__init__(items)
        self.on = on

    def __reduce__(self) -> tuple[Any, ...]:
        return _restore, (dict(self), self.on)


def _restore(items: dict[Any, Any], on: bool) -> dict[Any, Any]:
    configure(on)
    return items


def carry(items: Mapping[Any, Any]) -> dict[Any, Any]:
    """``items`` as a dict that carries this process's progress switch into the process that unpickles it
    (a run's attacks, sent to the attack worker)."""
    return _Carrier(items, enabled())


def line_interval(env: str = INTERVAL_ENV, default: float = INTERVAL) -> float:
    """Seconds between two progress lines off a terminal: ``default``, or the environment variable ``env`` when
    set to a number (a cluster log may want fewer lines)."""
    text = os.environ.get(env, "").strip()
    try:
        return max(0.0, float(text)) if text else default
    except ValueError:
        return default


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``; ``?`` when unknown."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Progress of one stage: a tqdm bar on a terminal, periodic log lines otherwise, nothing when off.

    ``total``: units of work (users, iterations, pairs); ``unit``: their name. ``interval`` and ``tty``
    override :data:`INTERVAL` and the terminal test (tests pass ``tty=False``); ``clock`` is the time source.
    """

    def __init__(self, stage: str, total: int, *, unit: str = "it", on: bool | None = None,
                 interval: float | None = None, tty: bool | None = None, clock: Any = time.monotonic) -> None:
        self.stage, self.total, self.unit = stage, max(0, int(total)), unit
        self.done = 0
        self._on = enabled() if on is None else bool(on)
        self._interval = line_interval() if interval is None else float(interval)
        self._clock = clock
        self._start = self._last = clock()
        self._bar: Any = None
        if self._on and (sys.stderr.isatty() if tty is None else tty):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=stage, unit=unit, leave=False, delay=BAR_DELAY,
                             file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.done += int(n)
        if not self._on:
            return
        if self._bar is not None:
            self._bar.update(int(n))
            return
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._log(now)

    def line(self, now: float | None = None) -> str:
        """The progress line (stage, done/total, share, rate, ETA)."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        eta = (self.total - self.done) / rate if rate > 0 else math.inf
        return (f"privrec: {self.stage} {self.done:,}/{self.total:,} {self.unit}{share}, "
                f"{rate:,.3g} {self.unit}/s, elapsed {duration(elapsed)}, ETA {duration(eta)}")

    def _log(self, now: float) -> None:
        text = self.line(now)
        if logger.hasHandlers() and logger.isEnabledFor(logging.INFO):
            logger.info(text)
        else:  # nothing configured logging (a plain script, the attack worker): the line still reaches stderr
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(stage: str, total: int, *, unit: str = "it", **kwargs: Any) -> Progress:
    """A :class:`Progress` for ``stage`` with ``total`` units of work (see the module docstring)."""
    return Progress(stage, total, unit=unit, **kwargs)
