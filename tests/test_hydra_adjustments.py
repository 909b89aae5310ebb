"""privrec's two process-local Hydra adjustments (privrec._hydra) keep Hydra's behaviour."""

from __future__ import annotations

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
