"""privrec's Hydra sweeper: one composition per config structure, and Hydra's basic sweeper's job order."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from hydra_plugins.privrec_launcher.privrec_sweeper import PrivrecSweeper, group_test, job_overrides, structures

GROUPS = {"model", "privacy", "hydra/launcher"}.__contains__


def test_a_value_sweep_is_one_structure():
    batch = [[f"privacy.rate={r}", f"seed={s}"] for r in (0, 0.5) for s in (0, 1, 2)]
    assert structures(batch, GROUPS) == [batch[0]]


def test_each_group_option_is_a_structure():
    batch = [[f"model={m}", f"seed={s}"] for m in ("als", "bpr") for s in (0, 1)]
    assert structures(batch, GROUPS) == [batch[0], batch[2]]
    batch = [["hydra/launcher=basic"], ["hydra/launcher=privrec"], ["hydra/launcher=basic"]]
    assert structures(batch, GROUPS) == batch[:2]


def test_added_deleted_and_overridden_keys_are_structures_values_of_plain_keys_are_not():
    batch = [["+a=1"], ["+a=2"], ["a=1"], ["~a"], ["++a=1"], ["privacy=none", "privacy.k=1"],
             ["privacy=k_anonymity", "privacy.k=1"], ["privacy=k_anonymity", "privacy.k=7"]]
    assert structures(batch, GROUPS) == [batch[0], batch[2], batch[3], batch[4], batch[5], batch[6]]


def test_the_order_of_overrides_does_not_make_a_structure():
    assert structures([["a=1", "model=als"], ["model=als", "a=2"]], GROUPS) == [["a=1", "model=als"]]


def test_values_of_hydras_own_typed_keys_are_structure():
    batch = [["hydra.job.chdir=true", "x=1"], ["hydra.job.chdir=false", "x=2"], ["hydra.job.chdir=true", "x=3"]]
    assert structures(batch, GROUPS) == batch[:2]


def test_group_test_asks_the_config_loader_for_groups():
    asked = []

    class Loader:
        def list_groups(self, parent):
            asked.append(parent)
            return {"": ["model", "hydra"], "hydra": ["launcher", "sweeper"]}.get(parent, [])

    is_group = group_test(Loader())
    assert [is_group(k) for k in ("model", "model.factors", "hydra/launcher", "hydra.launcher", "seed")] == \
        [True, False, True, False, False]
    assert is_group("model") and asked == ["", "hydra"]  # each parent's groups are listed once


def _parse(*overrides):
    return OverridesParser.create().parse_overrides(list(overrides))


def test_job_overrides_are_the_cartesian_product_in_the_basic_sweepers_order():
    assert job_overrides(_parse("a=1,2", "b=x,y", "c=5")) == [
        ["a=1", "b=x", "c=5"], ["a=1", "b=y", "c=5"], ["a=2", "b=x", "c=5"], ["a=2", "b=y", "c=5"]]
    # a key given twice (preset params, then the command line) keeps its first place and its last values
    assert job_overrides(_parse("a=1,2", "b=x", "a=3")) == [["a=3", "b=x"]]
    assert job_overrides(_parse("s=range(3)")) == [["s=0"], ["s=1"], ["s=2"]]
    assert job_overrides([]) == [[]]
    with pytest.raises(HydraException, match="does not support sweep type"):
        job_overrides(_parse("a=interval(0,1)"))


def test_validation_composes_one_job_per_structure():
    composed = []

    class Loader:
        def list_groups(self, parent):
            return ["model"] if parent == "" else []

        def load_sweep_config(self, master_config, sweep_overrides):
            composed.append(sweep_overrides)

    sweeper = PrivrecSweeper()
    sweeper.hydra_context, sweeper.config = SimpleNamespace(config_loader=Loader()), object()
    batch = [[f"model={m}", f"privacy.rate={r}", f"seed={s}"] for m in ("als", "bpr") for r in range(10)
             for s in range(3)]
    sweeper.validate_batch_is_legal(batch)
    assert composed == [batch[0], batch[30]]


def test_max_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="max_batch_size"):
        PrivrecSweeper(max_batch_size=0)
    assert PrivrecSweeper(max_batch_size=-1).max_batch_size is None  # as Hydra's basic sweeper: all at once
