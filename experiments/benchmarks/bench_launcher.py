"""Wall time of a 30-job sweep of a trivial task: privrec's Hydra launcher and sweeper vs Hydra's basic ones.

    python experiments/benchmarks/bench_launcher.py [--repeats 3] [--jobs 30]

Two configs, each swept over ``--jobs`` values of one key, every command in a fresh process:

- ``tiny``: a one-key config (what the launchers themselves cost: processes, pickling, Hydra's job set-up);
- ``privrec``: privrec's own ``conf/`` (``seed=range(N) tracking.enabled=false``), where composing a job's config
  costs ~0.15 s - which Hydra's basic sweeper also does for every job in the main process before launching.

The task returns at once, so the times are the harness's own cost. Medians of interleaved repeats; this machine
is shared, so read the ratios (printed against ``hydra/sweeper=basic hydra/launcher=basic``).
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

TASKS = '''
def task(cfg):
    return 0.0
'''
APP = '''
import sys

import hydra

from bench_tasks import task

if __name__ == "__main__":
    conf = sys.argv.pop(1)
    hydra.main(version_base="1.3", config_path=conf, config_name="config")(task)()
'''
TINY = '''
defaults:
  - _self_
  - override hydra/sweeper: privrec
  - override hydra/launcher: privrec
x: 0
hydra:
  job:
    chdir: false
'''
SETUPS = {
    "hydra/sweeper=basic hydra/launcher=basic": ["hydra/sweeper=basic", "hydra/launcher=basic"],
    "hydra/sweeper=privrec hydra/launcher=basic": ["hydra/sweeper=privrec", "hydra/launcher=basic"],
    "hydra/sweeper=privrec hydra/launcher=privrec": ["hydra/sweeper=privrec", "hydra/launcher=privrec"],
}


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=30)
    args = parser.parse_args()
    from hydra_plugins.privrec_launcher.privrec_launcher import worker_count

    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "bench_tasks.py").write_text(TASKS)
        (cwd / "bench_app.py").write_text(APP)
        (cwd / "tiny").mkdir()
        (cwd / "tiny" / "config.yaml").write_text(TINY)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(cwd), os.environ.get("PYTHONPATH", "")]))
        sweeps = {"tiny": [str(cwd / "tiny"), f"x=range({args.jobs})"],
                  "privrec": [str(REPO / "conf"), f"seed=range({args.jobs})", "tracking.enabled=false"]}
        results: dict[tuple[str, str], list[float]] = {(c, s): [] for c in sweeps for s in SETUPS}
        for _ in range(args.repeats):  # interleaved, so that load changes hit every row alike
            for (config, setup), times in results.items():
                out = f"hydra.sweep.dir={cwd}/out/{config}/{len(times)}/{abs(hash(setup))}"
                cmd = [sys.executable, "bench_app.py", sweeps[config][0], "-m", *sweeps[config][1:], out,
                       *SETUPS[setup]]
                times.append(timed(cmd, cwd, env))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{args.jobs}-job sweep of a trivial task, median of {args.repeats}; privrec launcher workers: "
          f"{worker_count(-1 if 'PRIVREC_JOBS' not in os.environ else int(os.environ['PRIVREC_JOBS']), args.jobs)}"
          f"; load average after: {load:.1f}")
    for config in sweeps:
        base = statistics.median(results[(config, next(iter(SETUPS)))])
        for setup in SETUPS:
            m = statistics.median(results[(config, setup)])
            print(f"  {config:8s} {setup:48s} {m:6.2f} s   x{m / base:.2f}")


if __name__ == "__main__":
    main()
