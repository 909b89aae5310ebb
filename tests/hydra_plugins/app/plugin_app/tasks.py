"""The task of the test application: a module-level function, so that it pickles by reference."""

import json
import os
import time
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

WATCHED = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS", "PRIVREC_SWEEP_JOBS")


def task(cfg) -> dict:
    """Write ``started.json``, sleep ``cfg.sleep`` seconds, fail if ``x == fail_x``, write ``done.json``; return
    the job's values (or ``x`` alone with ``scalar=true``)."""
    hydra = HydraConfig.get()
    out = Path(hydra.runtime.output_dir)
    facts = {"pid": os.getpid(), "ppid": os.getppid(), "num": hydra.job.num, "id": hydra.job.id,
             "env": {name: os.environ.get(name) for name in WATCHED}}
    (out / "started.json").write_text(json.dumps(facts))
    time.sleep(cfg.sleep)
    if cfg.fail_x is not None and cfg.x == cfg.fail_x:
        raise ValueError(f"job asked to fail: x must not be {cfg.fail_x}")
    (out / "done.json").write_text(json.dumps(facts))
    if cfg.scalar:  # what an optimising sweeper (Optuna) needs
        return float(cfg.x)
    return {"x": cfg.x, "y": cfg.y, "db": cfg.db.name, "num": hydra.job.num}
