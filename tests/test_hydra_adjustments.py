"""privrec's two process-local Hydra adjustments (privrec._hydra) keep Hydra's behaviour."""

from __future__ import annotations

import json
import subprocess
import sys

from privrec import _hydra
from privrec.cli import config_dir

GROUPS = {"model", "privacy", "hydra/launcher"}.__contains__


def test_one_job_per_structure():
    batch = [[f"privacy.rate={r}", f"seed={s}"] for r in (0, 0.5) for s in (0, 1, 2)]
    assert _hydra.structures(batch, GROUPS) == [batch[0]]
    batch = [[f"model={m}", f"seed={s}"] for m in ("als", "bpr") for s in (0, 1)]
    assert _hydra.structures(batch, GROUPS) == [batch[0], batch[2]]
    # added, deleted and overridden keys are different structures; values of plain keys are not
    batch = [["+a=1"], ["+a=2"], ["a=1"], ["~a"], ["privacy=none", "privacy.k=1"], ["privacy=k_anonymity",
                                                                                     "privacy.k=1"]]
    assert _hydra.structures(batch, GROUPS) == [batch[0], batch[2], batch[3], batch[4], batch[5]]


def test_sweepers_validate_one_job_per_structure():
    from types import SimpleNamespace

    from hydra.plugins.sweeper import Sweeper

    composed = []

    class Loader:
        repository = SimpleNamespace(group_exists=GROUPS)

        def load_sweep_config(self, master_config, sweep_overrides):
            composed.append(sweep_overrides)

    class Probe(Sweeper):
        def setup(self, **kwargs): ...

        def sweep(self, arguments): ...

    probe = Probe()
    probe.hydra_context, probe.config = SimpleNamespace(config_loader=Loader()), object()
    batch = [[f"privacy.rate={r}", f"seed={s}"] for r in range(10) for s in range(3)]
    _hydra.validate_structures_once()
    _hydra.validate_structures_once()  # idempotent
    probe.validate_batch_is_legal(batch)
    assert composed == [batch[0]]


def test_mode_probe_is_skipped_only_when_nothing_can_set_the_mode(tmp_path):
    assert _hydra.mode_is_never_configured(["privacy.rate=0.5", "-m"], config_dir())
    assert not _hydra.mode_is_never_configured(["hydra.mode=MULTIRUN"], config_dir())
    assert not _hydra.mode_is_never_configured(["--config-dir", "x"], config_dir())
    (tmp_path / "exp.yaml").write_text("# @package _global_\nhydra:\n  mode: MULTIRUN\n")
    assert not _hydra.mode_is_never_configured([], tmp_path)
    (tmp_path / "exp.yaml").write_text("privacy:\n  mode: strict\n")  # a treatment's own `mode` key
    assert _hydra.mode_is_never_configured([], tmp_path)


def test_composition_errors_in_any_structure_still_stop_a_sweep_before_it_starts(tmp_path):
    # privacy.k exists for k_anonymity only: the consent_drop jobs cannot compose
    proc = subprocess.run([sys.executable, "-m", "privrec.cli", "run", "-m", "privacy=k_anonymity,consent_drop",
                           "privacy.k=2,5", "tracking.enabled=false"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0 and "Could not override 'privacy.k'" in proc.stderr
    assert "[job" not in proc.stdout  # no job ran


_COMPARE_COMPOSITIONS = """
import json, sys
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf
from privrec import _hydra
from privrec.cli import config_dir

jobs = [[f"model={m}", f"privacy.mechanism={k}", f"privacy.rate={r}", f"seed={s}", "+extra.key=1"]
        for m in ("als", "bpr") for k in ("random", "activity") for r in (0.0, 0.5) for s in (0, 1)]
jobs += [["privacy=none", "seed=1"], ["privacy=k_anonymity", "privacy.k=5"], ["privacy=k_anonymity", "privacy.k=9"],
         ["experiment=consent_tradeoff", "privacy.rate=0.3", "model=bpr"], ["attack=none", "hydra.job.name=x"],
         ["model=als", "privacy.mechanism=random", "privacy.rate=0.5", "seed=1", "+extra.key=1"]]
with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
    loader = GlobalHydra.instance().config_loader()
    master = loader.load_configuration("config", overrides=["hydra.mode=MULTIRUN"], run_mode=RunMode.MULTIRUN)
    def snap(cfg):
        return [OmegaConf.to_container(cfg, resolve=False), OmegaConf.is_struct(cfg), OmegaConf.is_readonly(cfg.hydra),
                OmegaConf.to_container(cfg.hydra.runtime.choices), str(cfg.hydra.job.override_dirname)]
    plain = [snap(loader.load_sweep_config(master, j)) for j in jobs]
    _hydra.cache_compositions()
    cached = [snap(loader.load_sweep_config(master, j)) for j in jobs]
    again = [snap(loader.load_sweep_config(master, j)) for j in reversed(jobs)][::-1]
    print(json.dumps({"same": plain == cached == again, "structures": len(_hydra._DEFAULTS),
                      "differs": [i for i, (a, b) in enumerate(zip(plain, again)) if a != b]}))
"""


def test_cached_compositions_equal_hydras_own():
    proc = subprocess.run([sys.executable, "-c", _COMPARE_COMPOSITIONS], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"same": True, "structures": 6, "differs": []}
