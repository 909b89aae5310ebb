"""Fair tuning (privrec.tuning, tuning=grid): chosen on the treated training data only, known answers."""

import dataclasses
import json

import numpy as np
import pytest

from privrec import experiment
from privrec.data.dataset import Dataset, Vocabulary
from privrec.data.split import Split
from privrec.errors import ConfigError, DataValidationError
from privrec.models import ALS, ItemKNN, Popularity
from privrec.random import STREAM_NAMES, streams
from privrec.tuning import GridSearch, from_config, model_key, validation_split

ALS_FAST = {"_target_": "privrec.models.ALS", "factors": 8, "iterations": 3, "regularization": 0.05}


def _cfg(**over):
    """A fast run on the seeded synthetic dataset (no files needed), tuned on a 2 x 2 ALS grid."""
    cfg = {
        "seed": 0,
        "data_dir": "unused",
        "dataset": {"_target_": "privrec.data.loaders.Synthetic", "n_users": 200, "n_items": 120,
                    "n_interactions": 4000, "n_clusters": 4, "seed": 0},
        "split": {"_target_": "privrec.data.split.RandomHoldout", "fraction": 0.2},
        "privacy": {"_target_": "privrec.privacy.ConsentDrop", "rate": 0.25, "mechanism": "random"},
        "model": dict(ALS_FAST),
        "fallback": {"_target_": "privrec.models.Popularity"},
        "evaluation": {"cutoffs": [10, 20], "segment_by": []},
        "tuning": {"method": "grid", "validation_fraction": 0.2, "metric": None,
                   "grid": {"als": {"factors": [2, 8], "regularization": [0.05, 5.0]}}},
    }
    cfg.update(over)
    return cfg


def _blocks(n_blocks: int = 4, users_per_block: int = 12, items_per_block: int = 10) -> Dataset:
    """Users in ``n_blocks`` taste blocks; each holds all but one item of their own block (none elsewhere)."""
    rng = np.random.default_rng(1)
    rows = []
    for b in range(n_blocks):
        items = np.arange(b * items_per_block, (b + 1) * items_per_block)
        for u in range(b * users_per_block, (b + 1) * users_per_block):
            rows += [(u, i) for i in np.delete(items, rng.integers(items_per_block))]
    u, i = np.array(rows, dtype=np.int32).T
    n_users, n_items = n_blocks * users_per_block, n_blocks * items_per_block
    return Dataset(users=Vocabulary(np.arange(n_users)), items=Vocabulary(np.arange(n_items)), user_idx=u,
                   item_idx=i, weight=np.ones(len(u), np.float32))


class GarbageTest:
    """The run's own splitter, with its test part replaced by random interactions (the train part untouched)."""

    def __init__(self, inner):
        self.inner = inner

    def split(self, data, *, rng):
        real = self.inner.split(data, rng=rng)
        g = np.random.default_rng(99)
        n = real.test.n_interactions
        users = g.integers(0, data.n_users, n)
        items = g.integers(0, data.n_items, n)
        return Split(train=real.train, test=real.test.with_interactions(users, items, np.ones(n), None))


# ---------------------------------------------------------------------------------------------- known answers
def test_the_clearly_best_grid_point_is_chosen():
    # four disjoint taste blocks: one factor ranks every user's items the same way up to sign (two blocks at
    # most), four factors separate them all; the best point is not the first in grid order
    train = _blocks()
    search = GridSearch(grid={"als": {"factors": [1, 4], "iterations": [10]}}, metric="recall_at_5")
    result = search.tune(ALS(factors=16, regularization=0.01), train, rng=np.random.default_rng(0))
    assert dict(result.params) == {"factors": 4, "iterations": 10}
    scores = {p["factors"]: s for p, s in result.candidates}
    assert scores[4] == 1.0 and scores[1] < 0.75  # every held-out item ranked first vs. half the blocks at best
    assert result.score == scores[4]
    assert result.model.factors == 4 and result.model.regularization == 0.01  # the rest stays as configured
    assert not hasattr(result.model, "user_items_")  # unfitted: the run refits it on all treated data
    assert result.to_params() == {"tuned.factors": "4", "tuned.iterations": "10"}
    assert result.to_metrics() == {"tuning/validation_recall_at_5": scores[4], "tuning/candidates": 2.0}
    assert json.loads(result.to_json())["chosen"] == {"factors": 4, "iterations": 10}


def test_ties_go_to_the_first_point_and_fits_share_their_random_numbers():
    # K beyond the catalogue: both points are the same model, fitted on the same draws -> the same score
    train = _blocks()
    result = GridSearch(grid={"itemknn": {"K": [100, 200]}}).tune(ItemKNN(), train, rng=np.random.default_rng(0))
    (_, a), (_, b) = result.candidates
    assert a == b and result.params == {"K": 100}
    als = GridSearch(grid={"als": {"factors": [4, 4]}}).tune(ALS(), train, rng=np.random.default_rng(0))
    assert als.candidates[0][1] == als.candidates[1][1]


def test_same_rng_same_choice_and_the_validation_split_is_a_per_user_holdout():
    train = _blocks()
    search = GridSearch(grid={"als": {"factors": [1, 4]}}, validation_fraction=0.3)
    a = search.tune(ALS(), train, rng=np.random.default_rng(5))
    b = search.tune(ALS(), train, rng=np.random.default_rng(5))
    assert a.candidates == b.candidates
    val = validation_split(train, fraction=0.3, rng=np.random.default_rng(0))
    assert val.train.n_interactions + val.test.n_interactions == train.n_interactions
    assert (val.train.user_counts > 0).all()  # nobody loses all their interactions
    assert (val.test.user_counts == np.floor(0.3 * train.user_counts + 0.5)).all()


def test_row_dependent_weights_are_computed_without_the_validation_rows():
    # BM25 / TF-IDF depend on other rows: tuning hands `prepare` the validation split's training part only
    train = _blocks()
    seen: list[Dataset] = []

    def prepare(data: Dataset) -> Dataset:
        seen.append(data)
        return data

    search = GridSearch(grid={"als": {"factors": [1, 4]}}, validation_fraction=0.3)
    with_prepare = search.tune(ALS(), train, rng=np.random.default_rng(5), prepare=prepare)
    val = validation_split(train, fraction=0.3, rng=np.random.default_rng(5).spawn(2)[0])
    (given,) = seen  # once, not once per candidate
    assert given.n_interactions == val.train.n_interactions < train.n_interactions
    assert np.array_equal(given.user_idx, val.train.user_idx) and np.array_equal(given.item_idx, val.train.item_idx)
    # an identity `prepare` changes nothing
    assert with_prepare.candidates == search.tune(ALS(), train, rng=np.random.default_rng(5)).candidates


def test_a_model_without_a_grid_is_not_tuned():
    search = GridSearch(grid={"als": {"factors": [1, 4]}})
    assert search.candidates(Popularity()) == []
    assert search.tune(Popularity(), _blocks(), rng=np.random.default_rng(0)) is None


# ---------------------------------------------------------------------------------------------- in a run
@pytest.mark.filterwarnings("ignore:.*test interactions also appear in train")  # the garbage test set
def test_chosen_hyperparameters_do_not_depend_on_the_test_split():
    real = experiment.run(_cfg())
    p = experiment.plan(_cfg())
    garbage = experiment.run(dataclasses.replace(p, splitter=GarbageTest(p.splitter)))
    # the test split really differed ...
    assert real.metrics["eval/ndcg_at_10"] != garbage.metrics["eval/ndcg_at_10"]
    # ... and the choice, its validation score and every candidate's score did not
    tuned = {k: v for k, v in real.params.items() if k.startswith("tuned.")}
    assert tuned.keys() == {"tuned.factors", "tuned.regularization"}
    assert tuned == {k: v for k, v in garbage.params.items() if k.startswith("tuned.")}
    assert real.metrics["tuning/validation_ndcg_at_10"] == garbage.metrics["tuning/validation_ndcg_at_10"]
    assert real.artifacts["tuning.json"] == garbage.artifacts["tuning.json"]
    assert real.metrics["tuning/candidates"] == 4
    assert real.params["model.factors"] == "8"  # the configured value stays; tuned.* says what was fitted


def test_tuning_none_changes_nothing():
    plain = _cfg()
    del plain["tuning"]
    untuned = experiment.run(plain)
    none = experiment.run(_cfg(tuning={"method": "none"}))
    # a grid holding only the configured values refits exactly the configured model with the run's own stream
    same = experiment.run(_cfg(tuning={"method": "grid", "grid": {"als": {"factors": [8], "regularization": [0.05]}}}))
    for other in (none, same):
        for key, value in untuned.metrics.items():
            if key.startswith(("eval/", "privacy/", "data/", "model/")):
                assert other.metrics[key] == value or (np.isnan(value) and np.isnan(other.metrics[key])), key
    assert not any(k.startswith(("tuned.", "tuning/")) for k in [*none.params, *none.metrics])
    assert set(none.params) - set(untuned.params) == {"tuning.method"}
    assert same.params["tuned.factors"] == "8" and "time/tune_s" in same.metrics


def test_tuning_changes_no_other_random_stream():
    rng = experiment.tuning_rng(3)
    appended = np.random.SeedSequence(3).spawn(len(STREAM_NAMES) + 1)[-1]
    assert rng.random() == np.random.Generator(np.random.PCG64(appended)).random()
    s = streams(3)
    assert {rng.bit_generator.state["state"]["state"]} != {
        getattr(s, n).bit_generator.state["state"]["state"] for n in STREAM_NAMES}


# ---------------------------------------------------------------------------------------------- config
def test_grid_keys_are_config_options_or_class_names():
    assert model_key("dp_als") == model_key("DPALS") and model_key("itemknn") == model_key("ItemKNN")
    p = experiment.plan(_cfg(tuning={"method": "grid", "grid": {"ALS": {"factors": [2]}}}))
    assert p.tuner is not None and p.tuner.candidates(p.model) == [{"factors": 2}]
    assert p.tuner.metric == "ndcg_at_10"  # ndcg at the smallest cutoff
    assert experiment.plan(_cfg(evaluation={"cutoffs": [20, 5]})).tuner.metric == "ndcg_at_5"
    assert experiment.plan(_cfg(tuning={"method": "none", "grid": {"als": {"factors": [2]}}})).tuner is None
    assert from_config(None, cutoffs=(10,)) is None


@pytest.mark.parametrize(("tuning", "message"), [
    ({"method": "random"}, r"tuning.method must be one of \['grid', 'none'\]; got 'random'"),
    ({"method": "grid", "folds": 3}, r"tuning has no option 'folds'"),
    ({"method": "grid", "validation_fraction": 1.0}, r"tuning.validation_fraction must be in \(0, 1\); got 1.0"),
    ({"method": "grid", "metric": "ndcg@10"}, r"tuning.metric must be auc or .*; got 'ndcg@10'"),
    ({"method": "grid", "grid": {"als": {"K": [10]}}}, r"tuning.grid.als must name hyperparameters ALS has; got 'K'"),
    ({"method": "grid", "grid": {"als": {"num_threads": [2]}}}, r"tuning.grid.als.num_threads must be one of"),
    ({"method": "grid", "grid": {"als": {"factors": []}}}, r"tuning.grid.als.factors must be a non-empty list"),
    ({"method": "grid", "grid": {"als": {"factors": [0]}}}, r"model.factors must be >= 1; got 0"),
    ({"method": "grid", "grid": {"alss": {"factors": [8]}}}, r"tuning.grid keys must name models .*; got 'alss'"),
])
def test_a_bad_tuning_config_fails_before_any_work(tuning, message):
    with pytest.raises(ConfigError, match=message):
        experiment.plan(_cfg(tuning=tuning))


def test_no_validation_users_is_a_clear_error():
    one_each = Dataset(users=Vocabulary(np.arange(3)), items=Vocabulary(np.arange(3)),
                       user_idx=np.arange(3), item_idx=np.arange(3), weight=np.ones(3, np.float32))
    with pytest.raises(DataValidationError, match=r"tuning\.validation_fraction=0\.2 must leave validation users"):
        GridSearch(grid={"als": {"factors": [1]}}).tune(ALS(), one_each, rng=np.random.default_rng(0))


def test_the_tuning_group_composes_and_plans():
    hydra = pytest.importorskip("hydra")
    from privrec.cli import config_dir

    with hydra.initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        for model in ("als", "bpr", "lmf", "itemknn", "dp_als", "dp_itemknn", "popularity"):
            for option in ("none", "grid"):
                cfg = hydra.compose(config_name="config", overrides=[f"tuning={option}", f"model={model}"])
                from omegaconf import OmegaConf

                container = OmegaConf.to_container(cfg, resolve=False)
                container.pop("hydra", None)
                container["data_dir"] = "unused"
                p = experiment.plan(container)
                assert (p.tuner is None) == (option == "none")
                if p.tuner is not None and model != "popularity":
                    assert len(p.tuner.candidates(p.model)) >= 2
        default = hydra.compose(config_name="config")
        assert default.tuning.method == "none" and default.evaluation.exclude == "released"
