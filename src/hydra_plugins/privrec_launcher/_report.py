"""What a sweep tells its user, in the sweep's main process: a progress line with ETA, one line per finished
job, the warnings of all jobs (each once, with a count) and a summary table at the end.

Kept out of Hydra's plugin scan (leading underscore), like :mod:`._worker`.

- **Progress**: on a terminal, one line on stderr updated in place (job lines are printed above it); otherwise a
  line on stdout at most every :data:`PROGRESS_INTERVAL` seconds (``PRIVREC_SWEEP_PROGRESS_INTERVAL``) while
  jobs run.
- **Jobs**: ``[job 3] rate=0.3 mechanism=random seed=1: nDCG@10=0.2721`` on stdout - the values that vary
  across the sweep (:func:`privrec.tracking.hydra_callback.swept_values`) and the headline metric
  (:data:`HEADLINE`); a failed job says ``FAILED`` and its one-line reason.
- **Warnings**: collected per job in the workers (:func:`._worker.run`) and counted here by distinct text.
- **Summary**: jobs finished / failed, the best and worst settings by the headline metric (a setting is the
  swept values without the seed; its value is the mean over its seeds), the failed jobs and where the runs went.

Only counts, swept config values and metrics are printed: never a record value or a user id.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from privrec.progress import duration, line_interval

__all__ = ["HEADLINE", "JobResult", "PROGRESS_INTERVAL", "PROGRESS_INTERVAL_ENV", "SweepReport", "current",
           "one_line", "start", "stop"]

HEADLINE = "eval/ndcg_at_10"
HEADLINE_LABEL = "nDCG@10"
PROGRESS_INTERVAL = 30.0  # seconds between two progress lines when the output is not a terminal
PROGRESS_INTERVAL_ENV = "PRIVREC_SWEEP_PROGRESS_INTERVAL"  # overrides PROGRESS_INTERVAL (seconds)
_SHOWN_SETTINGS = 3  # best and worst settings shown when there are many


@dataclass(frozen=True)
class JobResult:
    idx: int
    values: tuple[tuple[str, str], ...]
    status: str  # FINISHED, FAILED or SKIPPED
    metric: float = math.nan
    reason: str = ""

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.values) or "(no swept values)"


def one_line(error: BaseException) -> str:
    """A failed job's reason in one line: privrec's own errors in full (their messages carry no record values),
    other exceptions by type and first line."""
    from privrec.errors import PrivRecError

    text = (str(getattr(error, "reason", None) or error).strip().splitlines() or [""])[0][:300]
    if isinstance(error, PrivRecError) or type(error).__name__ == "_UserError":
        return text or type(error).__name__
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class SweepReport:
    """The sweep's console output (see the module docstring); ``total``: jobs in the whole sweep."""

    def __init__(self, total: int, *, swept: Sequence[str] = ()) -> None:
        self.total = total
        self.swept = list(swept)
        self.started = time.monotonic()
        self.results: dict[int, JobResult] = {}
        self.warnings: Counter[str] = Counter()
        self._last_progress = self.started
        self._status_shown = False
        self.interval = line_interval(PROGRESS_INTERVAL_ENV, PROGRESS_INTERVAL)

    # ------------------------------------------------------------------ jobs
    def values(self, overrides: Sequence[str]) -> tuple[tuple[str, str], ...]:
        from privrec.tracking.hydra_callback import swept_values

        return tuple(swept_values(overrides, self.swept))

    def job_done(self, idx: int, overrides: Sequence[str], *, value: Any = None, error: BaseException | None = None,
                 warnings: Sequence[str] = (), echo: bool = True) -> JobResult:
        """Record job ``idx`` (its return ``value`` or its ``error``) and, with ``echo``, print its line."""
        if error is not None:
            result = JobResult(idx, self.values(overrides), "FAILED", reason=one_line(error))
        elif isinstance(value, dict) and not value:
            result = JobResult(idx, self.values(overrides), "SKIPPED", reason="already FINISHED in the resumed sweep")
        else:
            metric = value.get(HEADLINE, math.nan) if isinstance(value, dict) else math.nan
            result = JobResult(idx, self.values(overrides), "FINISHED", metric=float(metric))
        self.results[idx] = result
        self.warnings.update(set(warnings))
        if echo:
            self._print(self._job_line(result))
        return result

    def _job_line(self, r: JobResult) -> str:
        if r.status == "FAILED":
            tail = f"FAILED: {r.reason}"
        elif r.status == "SKIPPED":
            tail = f"skipped ({r.reason})"
        else:
            tail = f"{HEADLINE_LABEL}={r.metric:.4f}"
        return f"[job {r.idx}] {r.label}: {tail}"

    # ------------------------------------------------------------------ progress
    def _counts(self) -> tuple[int, int]:
        done = len(self.results)
        return done, sum(r.status == "FAILED" for r in self.results.values())

    def status(self) -> str:
        done, failed = self._counts()
        elapsed = time.monotonic() - self.started
        eta = f", ETA {duration(elapsed / done * (self.total - done))}" if 0 < done < self.total else ""
        fails = f" ({failed} failed)" if failed else ""
        return f"privrec: sweep {done}/{self.total} jobs done{fails}, {duration(elapsed)} elapsed{eta}"

    @staticmethod
    def _tty() -> bool:
        try:
            return sys.stderr.isatty()
        except (AttributeError, ValueError):
            return False

    def tick(self) -> None:
        """Refresh the progress line (terminal) or print one if :data:`PROGRESS_INTERVAL` has passed."""
        if self._tty():
            sys.stderr.write(f"\r\033[K{self.status()}")
            sys.stderr.flush()
            self._status_shown = True
        elif time.monotonic() - self._last_progress >= self.interval and len(self.results) < self.total:
            self._last_progress = time.monotonic()
            print(self.status(), flush=True)

    def _print(self, line: str) -> None:
        self.clear()
        print(line, flush=True)
        self.tick()

    def clear(self) -> None:
        if self._status_shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self._status_shown = False

    # ------------------------------------------------------------------ the end
    def summary(self, *, where: str = "") -> str:
        """The table printed when the sweep ends."""
        done, failed = self._counts()
        finished = [r for r in self.results.values() if r.status == "FINISHED"]
        lines = [f"privrec: sweep done in {duration(time.monotonic() - self.started)}: {len(finished)} finished, "
                 f"{failed} failed" + (f", {done - len(finished) - failed} skipped" if done - len(finished) - failed
                                       else "") + (f", {self.total - done} not run" if done < self.total else "")]
        settings: dict[tuple, list[float]] = {}
        for r in sorted(finished, key=lambda r: r.idx):
            if not math.isnan(r.metric):
                settings.setdefault(tuple(kv for kv in r.values if kv[0] != "seed"), []).append(r.metric)
        if settings:
            ranked = sorted(settings.items(), key=lambda kv: -sum(kv[1]) / len(kv[1]))
            lines.append(f"  {'':<6}{HEADLINE_LABEL:>9}  {'seeds':>5}  setting")
            shown: list[tuple[int, Any]] = list(enumerate(ranked))
            if len(ranked) > 2 * _SHOWN_SETTINGS:
                shown = [*shown[:_SHOWN_SETTINGS], (-1, None), *shown[-_SHOWN_SETTINGS:]]
            for rank, item in shown:
                if item is None:
                    lines.append(f"  {'...':<6}")
                    continue
                values, metrics = item
                tag = "best" if rank == 0 else ("worst" if rank == len(ranked) - 1 else "")
                setting = " ".join(f"{k}={v}" for k, v in values) or "(all jobs)"
                lines.append(f"  {tag:<6}{sum(metrics) / len(metrics):>9.4f}  {len(metrics):>5}  {setting}")
        lines.extend(f"  FAILED [job {r.idx}] {r.label}: {r.reason}"
                     for r in sorted(self.results.values(), key=lambda r: r.idx) if r.status == "FAILED")
        if where:
            lines.append(f"  runs: {where}")
        return "\n".join(lines)

    def warning_lines(self) -> list[str]:
        n = max(len(self.results), 1)
        return [f"privrec: warning in {count} of {n} jobs: {text}" for text, count in
                sorted(self.warnings.items(), key=lambda kv: (-kv[1], kv[0]))]

    def finish(self, *, where: str = "") -> None:
        """Print the warnings (stderr, each once with its count) and the summary (stdout)."""
        self.clear()
        for line in self.warning_lines():
            print(line, file=sys.stderr, flush=True)
        if self.results:
            print(self.summary(where=where), flush=True)


_CURRENT: list[SweepReport] = []


def start(total: int, *, swept: Sequence[str] = ()) -> SweepReport:
    """Begin the report of a sweep of ``total`` jobs (privrec's sweeper; the launcher reports into it)."""
    report = SweepReport(total, swept=swept)
    _CURRENT[:] = [report]
    return report


def current() -> SweepReport | None:
    return _CURRENT[0] if _CURRENT else None


def stop() -> None:
    _CURRENT.clear()
