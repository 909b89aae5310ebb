"""Whole-process timings of the CLI on ML-100K, measured in one run (this machine is shared: read ratios).

    python experiments/benchmarks/bench_run.py [--repeats 3] [--sweep [--sweep-repeats 3]] [--preset]

Prints, for the default ``privrec run`` (ML-100K, 80/20 split, ALS, consent drop 0.25, MLflow SQLite):
the median wall time, the same without tracking, and a bare ``python -c "import numpy"`` start-up as the
baseline; with ``--sweep`` also the 30-run sweep ``privrec run -m privacy.rate=0,...,0.9 seed=0,1,2``.
With ``--preset`` also the 120-run ``consent_tradeoff`` preset and ``privrec report`` over it.
Targets: default run <= 5 s wall; 30-run sweep <= 30 s wall (issue 2); preset <= 180 s, report <= 10 s (issue 5),
held on public APIs (issue 9). The plain path (``PRIVREC_ACCELERATE=0``) is measured alongside.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--sweep-repeats", type=int, default=3)
    parser.add_argument("--preset", action="store_true", help="also the consent_tradeoff preset and its report")
    args = parser.parse_args()
    data_dir = os.environ.get("PRIVREC_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
    privrec = [str(Path(sys.executable).with_name("privrec"))]  # the console script a user runs
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        env = dict(os.environ, PRIVREC_DATA_DIR=data_dir, MLFLOW_TRACKING_URI=f"sqlite:///{tmp}/mlflow.db")
        first = timed(privrec + ["run", "progress=false"], cwd, env)  # MLflow creates the store's schema once
        print(f"first run into a new store (MLflow creates the schema): {first:.2f} s")
        rows = {
            "python -c 'import numpy' (start-up)": [sys.executable, "-c", "import numpy"],
            "privrec run attack=none tracking.enabled=false": privrec + ["run", "progress=false", "attack=none",
                                                                         "tracking.enabled=false"],
            "privrec run parallel_attacks=false": privrec + ["run", "progress=false", "parallel_attacks=false"],
            "privrec run (default)": privrec + ["run", "progress=false"],
            "privrec run, PRIVREC_ACCELERATE=0 (plain path)": privrec + ["run", "progress=false"],
        }
        plain = dict(env, PRIVREC_ACCELERATE="0")
        results = {name: [] for name in rows}
        for _ in range(args.repeats):  # interleaved, so that load changes hit every row alike
            for name, cmd in rows.items():
                results[name].append(timed(cmd, cwd, plain if "PRIVREC_ACCELERATE=0" in name else env))
        medians = {name: statistics.median(values) for name, values in results.items()}
        base = medians["privrec run attack=none tracking.enabled=false"]
        print(f"{'command':<52}{'median s':>10}{'ratio':>8}   (ratio to the untracked run without attacks)")
        for name, value in medians.items():
            print(f"{name:<52}{value:>10.2f}{value / base:>8.2f}")
        print(f"default run target <= 5 s: {'OK' if medians['privrec run (default)'] <= 5 else 'MISSED'}")
        if args.sweep:
            rates = ",".join(str(r / 10) for r in range(10))
            times = [timed(privrec + ["run", "-m", f"privacy.rate={rates}", "seed=0,1,2"], cwd, env)
                     for _ in range(args.sweep_repeats)]
            t = statistics.median(times)
            print(f"30-run sweep: median {t:.1f} s wall of {[round(x, 1) for x in times]} ({t / 30:.2f} s per run; "
                  f"{t / 30 / base:.2f}x a single untracked run); target <= 30 s: {'OK' if t <= 30 else 'MISSED'}")
        if args.preset:
            t = timed(privrec + ["run", "-m", "experiment=consent_tradeoff"], cwd, env)
            print(f"consent_tradeoff preset (120 runs, attacks on): {t:.1f} s wall ({t / 120:.2f} s per run; "
                  f"{t / 120 / base:.2f}x a single untracked run); target <= 180 s: {'OK' if t <= 180 else 'MISSED'}")
            r = timed(privrec + ["report", "--experiment", "consent_tradeoff", "--x", "privacy.rate", "--y",
                                 "eval/ndcg_at_10", "--panels", "overall,consent,gender", "--out", "report"], cwd, env)
            print(f"privrec report over it: {r:.1f} s wall ({r / base:.2f}x a single untracked run); "
                  f"target <= 10 s: {'OK' if r <= 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
