import numpy as np

from privrec.models import BPR
from privrec.testing.models import ModelConformance, model_dataset


class TestBPR(ModelConformance):
    def make_model(self):
        return BPR(factors=8, learning_rate=0.05, iterations=100)

    def bad_configs(self):
        return [{"factors": 0}, {"learning_rate": 0.0}, {"learning_rate": float("inf")}, {"regularization": -1.0},
                {"iterations": 0}, {"num_threads": 1.5}]


def test_one_thread_is_deterministic():
    data = model_dataset()
    a = BPR(factors=8, iterations=20).fit(data, rng=np.random.default_rng(5))
    b = BPR(factors=8, iterations=20).fit(data, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.model_.user_factors, b.model_.user_factors)
    np.testing.assert_array_equal(a.model_.item_factors, b.model_.item_factors)


def test_score_includes_item_bias():
    data = model_dataset()
    model = BPR(factors=8, iterations=20).fit(data, rng=np.random.default_rng(0))
    # implicit's layout: a constant-1 user column meets the item-bias column
    assert model.model_.user_factors.shape[1] == model.model_.item_factors.shape[1] == 9
    users = np.flatnonzero(data.user_counts > 0)
    np.testing.assert_array_equal(model.model_.user_factors[users, -1], 1.0)
    ids, scores = model.model_.recommend(users, model.user_items_[users], N=5)
    dense = model.score(users)
    np.testing.assert_allclose(np.take_along_axis(dense, ids.astype(np.int64), axis=1), scores, rtol=1e-5, atol=1e-6)
