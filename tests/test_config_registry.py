"""Configs build only privrec's components: nothing outside privrec is imported or called from a config.

A stored config (``privrec reproduce``) can be written by anyone who can write to a shared MLflow store, so
:func:`privrec.config.build` checks every ``_target_`` before importing or building anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from privrec import config as privrec_config
from privrec.config import accepts, build, check_targets, register, registered, resolve_target
from privrec.errors import ConfigError
from privrec.privacy import Chain, ConsentDrop

REFUSED = {
    "subprocess": {"_target_": "subprocess.run", "args": ["sh", "-c", "touch PWNED"]},
    "eval": {"_target_": "builtins.eval", "source": "__import__('os').system('touch PWNED')"},
    "os_system": {"_target_": "os.system", "command": "touch PWNED"},
    "privrec_function": {"_target_": "privrec.cli.main", "argv": ["data", "fetch"]},
    "privrec_store_function": {"_target_": "privrec.tracking.store.open_store", "uri": "sqlite:///x.db"},
    "privrec_non_component_class": {"_target_": "privrec.tracking.record.RunRecord", "run_name": "x"},
    "class_imported_into_privrec": {"_target_": "privrec.data.loaders.Path", "args": "x"},
    "protocol": {"_target_": "privrec.privacy.base.PrivacyTransform"},
    "privrec_module": {"_target_": "privrec.privacy"},
    "missing_privrec_class": {"_target_": "privrec.privacy.Nope"},
    "missing_privrec_module": {"_target_": "privrec.nope.Thing"},
    "non_privrec_module": {"_target_": "json.JSONDecoder"},
    "lookalike_package": {"_target_": "privrec_evil.privacy.ConsentDrop"},
    "prefix_without_dot": {"_target_": "privrec.privacyx.ConsentDrop"},
    "relative": {"_target_": ".privacy.ConsentDrop"},
    "not_a_string": {"_target_": 123},
    "a_list": {"_target_": ["privrec.privacy.ConsentDrop"]},
    "empty": {"_target_": ""},
    "spaces": {"_target_": "privrec.privacy.ConsentDrop; touch PWNED"},
}


@pytest.mark.parametrize("node", list(REFUSED.values()), ids=list(REFUSED))
def test_anything_but_a_privrec_component_is_refused_in_one_line(node, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^split\._target_ must name one of privrec's components") as info:
        build(node, name="split")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "PWNED").exists()


def test_a_module_outside_privrec_is_not_even_imported(tmp_path, monkeypatch):
    """The string is checked before any import: importing an attacker-chosen module runs its code."""
    (tmp_path / "pwned_module.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('PWNED').touch()\nclass Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for call in (lambda: build({"_target_": "pwned_module.Thing"}),
                 lambda: check_targets({"model": {"_target_": "pwned_module.Thing"}}),
                 lambda: resolve_target("pwned_module.Thing")):
        with pytest.raises(ConfigError):
            call()
    assert not accepts({"_target_": "pwned_module.Thing"}, "fallback")
    assert "pwned_module" not in sys.modules
    assert not (tmp_path / "PWNED").exists()


@dataclass(frozen=True, kw_only=True)
class Counted:
    """A component that counts its constructions."""

    built: list

    def __post_init__(self) -> None:
        self.built.append(1)


def test_every_target_is_checked_before_anything_is_built():
    register(Counted)
    built: list = []
    node = {"a": {"_target_": f"{__name__}.Counted", "built": built},
            "b": {"_target_": "privrec.privacy.Chain",
                  "steps": {"ok": {"_target_": f"{__name__}.Counted", "built": built},
                            "bad": {"_target_": "subprocess.run", "args": ["true"]}}}}
    with pytest.raises(ConfigError, match=r"^config\.b\.steps\.bad\._target_ must name one of privrec's components"):
        build(node)
    assert built == []  # the refused target was deep in the tree; nothing before it was built either


def test_privrec_components_build_and_nested_ones_too():
    chain = build({"_target_": "privrec.privacy.Chain",
                   "steps": {"consent": {"_target_": "privrec.privacy.ConsentDrop", "rate": 0.5}}}, name="privacy")
    assert isinstance(chain, Chain)
    assert resolve_target("privrec.privacy.ConsentDrop") is ConsentDrop
    assert resolve_target("privrec.privacy.consent.ConsentDrop") is ConsentDrop  # defined there, re-exported
    assert accepts({"_target_": "privrec.models.ALS"}, "fallback")


def test_missing_and_unknown_parameters_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"^dataset\.path must be set; got nothing"):
        build({"_target_": "privrec.data.loaders.Delimited"}, name="dataset")
    with pytest.raises(ConfigError, match=r"^privacy has no parameter 'nope'"):
        build({"_target_": "privrec.privacy.ConsentDrop", "nope": 1}, name="privacy")


class Mine:
    """A user's own component, outside privrec."""

    def __init__(self, *, size: int) -> None:
        self.size = size


def test_register_allows_exactly_that_class():
    name = f"{__name__}.Mine"
    with pytest.raises(ConfigError, match=r"registered with privrec\.config\.register"):
        build({"_target_": name, "size": 3})
    assert register(Mine) is Mine  # usable as a decorator
    assert name in registered()
    assert build({"_target_": name, "size": 3}).size == 3
    with pytest.raises(ConfigError, match="has no parameter 'nope'"):
        build({"_target_": name, "size": 3, "nope": 1})
    with pytest.raises(ConfigError, match=r"^register needs a class"):
        register(print)  # type: ignore[arg-type]
    assert "register" in privrec_config.__all__ and privrec_config.__all__ == sorted(privrec_config.__all__)


# ------------------------------------------------------------------ privrec reproduce, the real CLI
PRIVREC = shutil.which("privrec") or str(Path(sys.executable).with_name("privrec"))


def _env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "PRIVREC_DEBUG")}
    env.update(PRIVREC_DATA_DIR=str(data_dir), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db",
               MLFLOW_DISABLE_TELEMETRY="true")
    return env


@pytest.mark.slow
def test_reproduce_refuses_a_stored_config_that_would_run_a_command(tmp_path, shared_data_dir):
    """A real run into a SQLite store; its stored config/resolved.yaml is then overwritten on disk (as anyone
    who can write to a shared store could) so that ``split`` runs a shell command."""
    env = _env(tmp_path, shared_data_dir)
    proc = subprocess.run([PRIVREC, "run", "attack=none", "model.iterations=1", "model.factors=4", "progress=false"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    stored = list((tmp_path / "mlruns").rglob("config/resolved.yaml"))
    assert len(stored) == 1
    config = yaml.safe_load(stored[0].read_text())
    assert config["split"]["_target_"].startswith("privrec.")
    config["split"] = {"_target_": "subprocess.run", "args": ["sh", "-c", "touch PWNED"]}
    stored[0].write_text(yaml.safe_dump(config))
    run_id = stored[0].parents[2].name

    proc = subprocess.run([PRIVREC, "reproduce", run_id], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0] == ("privrec: error: config.split._target_ must name one of privrec's components (a class in "
                        "privrec.attacks, privrec.data, privrec.evaluation, privrec.models, privrec.privacy, "
                        "privrec.tuning) or a class registered with privrec.config.register; got 'subprocess.run'.")
    assert not (tmp_path / "PWNED").exists()
