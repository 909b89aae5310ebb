import numpy as np

from privrec.models import LMF
from privrec.testing.models import ModelConformance, model_dataset


class TestLMF(ModelConformance):
    def make_model(self):
        return LMF(factors=8, iterations=30)

    def bad_configs(self):
        return [{"factors": 0}, {"learning_rate": -1.0}, {"regularization": -0.6}, {"iterations": 0},
                {"neg_prop": 0}]


def test_one_thread_is_deterministic():
    data = model_dataset()
    a = LMF(factors=8, iterations=10).fit(data, rng=np.random.default_rng(5))
    b = LMF(factors=8, iterations=10).fit(data, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.model_.user_factors, b.model_.user_factors)
    np.testing.assert_array_equal(a.model_.item_factors, b.model_.item_factors)
