import numpy as np
import pytest

from privrec.errors import ConfigError
from privrec.models import ALS, Popularity
from privrec.testing.models import ModelConformance, model_dataset


class TestALS(ModelConformance):
    def make_model(self):
        return ALS(factors=8, iterations=10, regularization=0.1)

    def bad_configs(self):
        return [{"factors": 0}, {"factors": 2.5}, {"factors": True}, {"regularization": -0.1},
                {"regularization": float("nan")}, {"alpha": 0.0}, {"iterations": 0}, {"num_threads": -1},
                {"fallback": "popularity"}]


class TestALSWithCustomFallback(ModelConformance):
    def make_model(self):
        return ALS(factors=8, iterations=10, regularization=0.1, fallback=ALS(factors=4, iterations=3))


def test_message_shape():
    with pytest.raises(ConfigError, match=r"^model\.factors must be >= 1; got 0\.$"):
        ALS(factors=0)
    with pytest.raises(ConfigError, match=r"^model\.alpha must be > 0; got -1\.0\.$"):
        ALS(alpha=-1.0)


def test_same_seed_same_factors_other_seed_other_factors():
    data = model_dataset()
    a = ALS(factors=8, iterations=5).fit(data, rng=np.random.default_rng(11))
    b = ALS(factors=8, iterations=5).fit(data, rng=np.random.default_rng(11))
    c = ALS(factors=8, iterations=5).fit(data, rng=np.random.default_rng(12))
    np.testing.assert_array_equal(a.model_.user_factors, b.model_.user_factors)
    np.testing.assert_array_equal(a.model_.item_factors, b.model_.item_factors)
    assert not np.allclose(a.model_.item_factors, c.model_.item_factors)


def test_fitted_state():
    data = model_dataset(n_empty=5)
    model = ALS(factors=8, iterations=3).fit(data, rng=np.random.default_rng(0))
    assert isinstance(model.fallback_, Popularity) and model.fallback is None
    assert model.n_fallback_users_ == 5
    np.testing.assert_array_equal(model.has_data_, data.user_counts > 0)
    assert model.user_items_.shape == (data.n_users, data.n_items)
    assert isinstance(model.model_.random_state, int)  # never a RandomState
    assert model.model_.user_factors.shape == (data.n_users, 8)


def test_fallback_instance_is_not_mutated():
    fallback = Popularity()
    model = ALS(factors=4, iterations=2, fallback=fallback).fit(model_dataset(), rng=np.random.default_rng(0))
    assert model.fallback is fallback and model.fallback_ is not fallback
    assert not hasattr(fallback, "user_items_")


def test_scores_match_implicit_recommend():
    data = model_dataset()
    model = ALS(factors=8, iterations=5).fit(data, rng=np.random.default_rng(0))
    users = np.flatnonzero(data.user_counts > 0)
    ids, scores = model.model_.recommend(users, model.user_items_[users], N=5)
    dense = model.score(users)
    np.testing.assert_allclose(np.take_along_axis(dense, ids.astype(np.int64), axis=1), scores, rtol=1e-5, atol=1e-6)


def test_weights_are_confidences():
    data = model_dataset()
    heavy = data.with_interactions(data.user_idx, data.item_idx, data.weight * 20)
    a = ALS(factors=8, iterations=5).fit(data, rng=np.random.default_rng(0))
    b = ALS(factors=8, iterations=5).fit(heavy, rng=np.random.default_rng(0))
    assert not np.allclose(a.model_.user_factors, b.model_.user_factors)


@pytest.mark.parametrize("block", [1, 17, 1 << 22])
def test_chunking_does_not_change_lists(monkeypatch, block):
    data = model_dataset()
    model = ALS(factors=8, iterations=5).fit(data, rng=np.random.default_rng(0))
    users = np.arange(data.n_users)
    expected = model.recommend(users, n=4)
    monkeypatch.setattr(type(model), "block_elements", block)
    got = model.recommend(users, n=4)
    np.testing.assert_array_equal(got.items, expected.items)
    np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-5, atol=1e-6)


def test_non_finite_weights_raise():
    from privrec.errors import DataValidationError

    data = model_dataset()
    weight = data.weight.copy()
    weight[[0, 3]] = np.nan
    bad = data.with_interactions(data.user_idx, data.item_idx, weight)
    with pytest.raises(DataValidationError,
                       match=r"^ALS\.fit train weights must be finite; got 2 non-finite weights\.$"):
        ALS(factors=4, iterations=2).fit(bad, rng=np.random.default_rng(0))
