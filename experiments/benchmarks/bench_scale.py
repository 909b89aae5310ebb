"""Time and peak memory of every stage of the default experiment at 10k, 100k and 1M synthetic users.

    python experiments/benchmarks/bench_scale.py                    # 10k, 100k, 1M users
    python experiments/benchmarks/bench_scale.py --users 10000 100000
    python experiments/benchmarks/bench_scale.py --users 100000 -- attack=none evaluation.max_users=null

Each size runs in its own child process (a fresh interpreter: peak memory is that size's alone), as
``privrec run`` would: the default config (consent drop, ALS, evaluation, every default attack, attacks in a
second process while the run evaluates) on ``dataset=synthetic dataset.n_users=N dataset.n_items=100000
dataset.n_interactions=50*N``, tracking off. Extra Hydra overrides after ``--`` apply to every size.

Per stage the child prints the wall time and the peak resident memory of the run's process plus its children
(the attack worker), sampled every 50 ms with psutil; the last line per size is the whole run (wall time, peak
RSS, and the machine's load average before and after, since the machine is shared). Only counts and timings
are printed, never an id or a record value.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the console script does, before numpy loads
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

ITEMS = 100_000
PER_USER = 50
GIB = 2**30


class _Sampler:
    """Peak RSS (this process + its children) per stage, sampled in a thread."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self.stage = "start"
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _rss(self) -> int:
        import psutil

        total = self._proc.memory_info().rss
        for child in self._proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a child that just ended
                total += child.memory_info().rss
        return total

    def _loop(self) -> None:
        while not self._stop.is_set():
            rss = self._rss()
            stage = self.stage
            self.peaks[stage] = max(self.peaks.get(stage, 0), rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def child(n_users: int, overrides: list[str]) -> None:
    """One size, in this process: prints one JSON line per stage and one for the whole run."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from privrec import experiment
    from privrec.cli import config_dir
    from privrec.speed import AttackExecutor

    load_before = os.getloadavg()[0]
    executor = AttackExecutor().start() if "attack=none" not in overrides else None
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        cfg = compose("config", overrides=[
            "dataset=synthetic", f"dataset.n_users={n_users}", f"dataset.n_items={ITEMS}",
            f"dataset.n_interactions={PER_USER * n_users}", "tracking.enabled=false", *overrides])
    container = OmegaConf.to_container(cfg, resolve=True)
    starts: dict[str, float] = {}
    t0 = time.perf_counter()
    with _Sampler() as sampler:
        def on_stage(name: str) -> None:
            starts[name] = time.perf_counter()
            sampler.stage = name
            print(f"  {n_users:,} users: {name} starts at {starts[name] - t0:.1f} s", file=sys.stderr, flush=True)

        try:
            record = experiment.run(container, on_stage=on_stage, attack_executor=executor)
        finally:
            if executor is not None:
                executor.close()
        total = time.perf_counter() - t0
    names = list(starts)
    for name, nxt in zip(names, [*names[1:], None], strict=True):
        end = starts[nxt] if nxt else t0 + total
        print(json.dumps({"users": n_users, "stage": name, "seconds": round(end - starts[name], 2),
                          "peak_gib": round(sampler.peaks.get(name, 0) / GIB, 2)}), flush=True)
    keys = ("eval/n_users_evaluated", "eval/ndcg_at_10", "eval/ndcg_at_10_ci_low", "eval/ndcg_at_10_ci_high",
            "attack/reid_rate_m8", "attack/mia_auc_random", "attack/gender_auc_released")
    print(json.dumps({"users": n_users, "stage": "total", "seconds": round(total, 1),
                      "peak_gib": round(max(sampler.peaks.values()) / GIB, 2),
                      "attack_compute_s": round(record.metrics.get("time/attack_s", float("nan")), 1),
                      "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
                      **{k: round(record.metrics[k], 4) for k in keys if k in record.metrics}}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every size (after --)")
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.overrides)
        return
    rows = []
    for n in args.users:
        # the child's stderr (stage starts, progress lines) passes through; its JSON lines are collected
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", str(n), "--",
                                 *args.overrides], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("{"):
                rows.append(json.loads(line))
            print(line, end="", flush=True)
        if proc.wait() != 0:
            print(f"{n:,} users: failed (exit {proc.returncode})", flush=True)
    print()
    print(f"| stage | {' | '.join(f'{n:,} users' for n in args.users)} |")
    print(f"| --- |{' --- |' * len(args.users)}")
    stages = list(dict.fromkeys(r["stage"] for r in rows))
    for stage in stages:
        cells = []
        for n in args.users:
            row = next((r for r in rows if r["users"] == n and r["stage"] == stage), None)
            cells.append("—" if row is None else f"{row['seconds']:g} s, {row['peak_gib']:g} GiB")
        print(f"| {stage} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
