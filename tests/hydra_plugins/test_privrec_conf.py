"""privrec's conf/ selects the plugins: privrec's sweeper and launcher by default, which presets and the command
line may replace."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from privrec.cli import config_dir


def _choices(*overrides: str, env: dict[str, str] | None = None, monkeypatch=None):
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    choices = cfg.hydra.runtime.choices
    return choices["hydra/sweeper"], choices["hydra/launcher"], cfg.hydra


def test_privrecs_sweeper_and_launcher_are_the_defaults(monkeypatch):
    monkeypatch.delenv("PRIVREC_JOBS", raising=False)
    sweeper, launcher, hydra = _choices()
    assert (sweeper, launcher) == ("privrec", "privrec")
    assert hydra.launcher.n_jobs == -1 and hydra.sweeper.max_batch_size is None
    assert _choices(env={"PRIVREC_JOBS": "3"}, monkeypatch=monkeypatch)[2].launcher.n_jobs == 3


def test_the_command_line_and_presets_can_replace_them():
    assert _choices("hydra/launcher=basic")[:2] == ("privrec", "basic")
    assert _choices("hydra/sweeper=basic")[:2] == ("basic", "privrec")
    sweeper, launcher, hydra = _choices("experiment=consent_tradeoff")
    assert (sweeper, launcher) == ("privrec", "privrec")
    assert hydra.sweeper.params["seed"] == "range(5)"


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None,
                    reason="hydra-optuna-sweeper (privrec[frontier]) is not installed")
def test_a_preset_that_selects_optuna_gets_it_with_privrecs_launcher():
    assert _choices("experiment=frontier_search")[:2] == ("optuna", "privrec")


def test_a_structure_that_does_not_compose_stops_privrecs_sweep_before_any_job(tmp_path):
    # privacy.k exists for k_anonymity only: the consent_drop jobs cannot compose
    proc = subprocess.run([sys.executable, "-m", "privrec.cli", "run", "-m", "privacy=k_anonymity,consent_drop",
                           "privacy.k=2,5", "tracking.enabled=false", "hydra.sweep.dir=out"],
                          cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode != 0
    assert "privacy.k" in proc.stderr
    assert "[job" not in proc.stdout + proc.stderr  # no job ran
    assert not [p for p in (tmp_path / "out").glob("*") if p.is_dir()]
