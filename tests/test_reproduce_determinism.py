"""``is_deterministic(config)`` asks the model built from the config, not the class name."""

from pathlib import Path

import pytest
import yaml

from privrec.errors import ConfigError
from privrec.reproduce import is_deterministic

CONF = Path(__file__).resolve().parents[1] / "conf"


def config(model, fallback=None):
    cfg = {"seed": 0, "model": model}
    if fallback is not None:
        cfg["fallback"] = fallback
    return cfg


@pytest.mark.parametrize(("model", "expected"), [
    ({"_target_": "privrec.models.ALS", "num_threads": 8}, True),
    ({"_target_": "privrec.models.ItemKNN", "num_threads": 0}, True),
    ({"_target_": "privrec.models.Popularity"}, True),
    ({"_target_": "privrec.models.DemographicPopularity"}, True),
    ({"_target_": "privrec.models.BPR"}, True),  # num_threads defaults to 1
    ({"_target_": "privrec.models.BPR", "num_threads": 1}, True),
    ({"_target_": "privrec.models.BPR", "num_threads": 0}, False),
    ({"_target_": "privrec.models.LMF", "num_threads": 4}, False),
])
def test_the_model_decides(model, expected):
    assert is_deterministic(config(model)) is expected


def test_a_nondeterministic_fallback_makes_the_run_nondeterministic():
    lmf = {"_target_": "privrec.models.LMF", "num_threads": 0}
    assert is_deterministic(config({"_target_": "privrec.models.ALS"}, fallback=lmf)) is False
    assert is_deterministic(config({"_target_": "privrec.models.ALS"},
                                   fallback={"_target_": "privrec.models.DemographicPopularity"})) is True
    # a model without a fallback parameter ignores the fallback node, as the pipeline does
    assert is_deterministic(config({"_target_": "privrec.models.Popularity"}, fallback=lmf)) is True


@pytest.mark.parametrize("name", ["als", "bpr", "itemknn", "lmf", "popularity"])
def test_shipped_model_configs_are_deterministic(name):
    path = CONF / "model" / f"{name}.yaml"
    if not path.is_file():
        pytest.skip(f"no {path}")
    assert is_deterministic(config(yaml.safe_load(path.read_text()))) is True


def test_a_missing_or_bad_model_node_raises():
    with pytest.raises(ConfigError, match=r"^is_deterministic needs a config with a model node"):
        is_deterministic({"seed": 0})
    with pytest.raises(ConfigError, match=r"^model\.num_threads must be >= 0; got -1\.$"):
        is_deterministic(config({"_target_": "privrec.models.BPR", "num_threads": -1}))
