"""Every option of every config group composes and builds."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from privrec.cli import config_dir
from privrec.config import build, check_targets
from privrec.experiment import build_model

CONF = config_dir()
GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and not p.name.startswith((".", "hydra")))
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]
EXTRA = {("dataset", "delimited"): ["dataset.path=ratings.tsv"]}


def _optuna_sweeper_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_builds(group, option):
    if (group, option) == ("experiment", "frontier_search") and not _optuna_sweeper_installed():
        pytest.skip("the optional extra privrec[frontier] (hydra-optuna-sweeper) is not installed")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"{group}={option}", *EXTRA.get((group, option), [])])
    container = OmegaConf.to_container(cfg, resolve=True)
    check_targets(container)  # every _target_ a shipped config names is one of privrec's components
    if group in ("model", "experiment"):
        assert build_model(container) is not None
    if group == "experiment":  # a preset: every treatment and attack it names builds
        assert build(container["privacy"], name="privacy") is not None
        assert build(container["attack"], name="attack") is not None
    elif group != "model":
        assert build(container[group], name=group) is not None


def test_config_is_shipped_or_in_checkout():
    assert (CONF / "config.yaml").is_file()
    assert Path(CONF).name == "conf"
