"""The package surface: sorted re-exports, Hydra-style construction from plain YAML values, pickling."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

import privrec.data as data_pkg
from privrec.data import (
    Delimited,
    GlobalTemporal,
    MovieLens1M,
    MovieLens100K,
    Preprocess,
    RandomHoldout,
    Synthetic,
    TemporalHoldout,
)


def test_all_is_sorted_and_complete():
    assert data_pkg.__all__ == sorted(data_pkg.__all__)
    for name in data_pkg.__all__:
        assert hasattr(data_pkg, name), name
    assert {"Dataset", "Schema", "Vocabulary"} <= set(data_pkg.__all__)


CONFIGS = [
    {"_target_": "privrec.data.loaders.MovieLens100K"},
    {"_target_": "privrec.data.loaders.MovieLens1M"},
    {"_target_": "privrec.data.loaders.Synthetic", "n_users": 50, "n_items": 20, "n_interactions": 200, "seed": 1},
    {
        "_target_": "privrec.data.loaders.Delimited",
        "path": "log.csv",
        "sep": ",",
        "header": True,
        "user_col": "user",
        "item_col": "item",
        "rating_col": None,
        "user_attributes_path": "users.csv",
        "quasi_identifiers": ["age", "zip"],
        "sensitive": ["gender"],
        "numeric": ["age"],
        "hierarchies": {"zip": "prefix"},
    },
    {"_target_": "privrec.data.preprocess.Preprocess", "min_rating": 4, "user_core": 5, "item_core": 5},
    {"_target_": "privrec.data.split.RandomHoldout", "fraction": 0.2},
    {"_target_": "privrec.data.split.TemporalHoldout", "last_n": 1},
    {"_target_": "privrec.data.split.GlobalTemporal", "cut_quantile": 0.9},
]


@pytest.mark.parametrize("node", CONFIGS, ids=lambda n: n["_target_"].rsplit(".", 1)[1])
def test_hydra_nodes_instantiate_to_frozen_picklable_objects(node):
    obj = instantiate(OmegaConf.create(node))  # lists arrive as ListConfig, dicts as DictConfig
    assert dataclasses.is_dataclass(obj)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        assert value is None or isinstance(value, (bool, int, float, str, tuple)), (f.name, type(value))
    assert pickle.loads(pickle.dumps(obj)) == obj
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, "x_" if not dataclasses.fields(obj) else dataclasses.fields(obj)[0].name, 1)


def test_yaml_lists_become_tuples():
    obj = instantiate(OmegaConf.create(CONFIGS[3]))
    assert obj.quasi_identifiers == ("age", "zip") and obj.hierarchies == (("zip", "prefix"),)


@pytest.mark.parametrize("cls", [MovieLens100K, MovieLens1M, Synthetic, Preprocess, RandomHoldout, GlobalTemporal])
def test_keyword_only(cls):
    params = dataclasses.fields(cls)
    if params:
        with pytest.raises(TypeError):
            cls(*[None] * len(params))


def test_delimited_and_temporal_need_keywords():
    with pytest.raises(TypeError):
        Delimited("log.tsv")  # type: ignore[misc]
    with pytest.raises(TypeError):
        TemporalHoldout(1)  # type: ignore[misc]
