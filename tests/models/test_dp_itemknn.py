import math

import numpy as np
import pytest

from privrec.errors import ConfigError, DataValidationError
from privrec.models import DPItemKNN, ItemKNN
from privrec.privacy.accounting import calibrate_noise_multiplier, epsilon_spent
from privrec.privacy.base import PrivacyReport
from privrec.testing.models import ModelConformance, checkerboard, model_dataset


class TestDPItemKNN(ModelConformance):
    personalized = False  # noise on 22 users may reorder the checkerboard; see the large-epsilon test
    has_embeddings = False

    def make_model(self):
        return DPItemKNN(K=10, epsilon=2.0, max_items_per_user=8)

    def bad_configs(self):
        return [{"epsilon": -1}, {"epsilon": 0}, {"epsilon": "abc"}, {"delta": 0.0}, {"delta": 2.0},
                {"unit": "rating"}, {"max_items_per_user": 0}, {"max_weight": 0.0}, {"mechanism": "exponential"},
                {"shrinkage": -1.0}, {"accountant": "moments"}, {"K": 0}, {"fallback": "popularity"}]


class TestDPItemKNNLaplace(TestDPItemKNN):
    def make_model(self):
        return DPItemKNN(K=10, epsilon=2.0, mechanism="laplace", unit="interaction", max_items_per_user=8)


class TestDPItemKNNNoNoise(ModelConformance):
    has_embeddings = False

    def make_model(self):
        return DPItemKNN(K=10, epsilon=math.inf)


def test_message_shape():
    with pytest.raises(ConfigError, match=r"^dp_itemknn\.epsilon must be > 0; got -1\.$"):
        DPItemKNN(epsilon=-1)
    with pytest.raises(ConfigError, match=r"^dp_itemknn\.mechanism must be one of \['gaussian', 'laplace'\]; "):
        DPItemKNN(mechanism="exponential")


def test_sensitivity_known_answers():
    # Gaussian, user: W^2 whatever k; interaction: W^2 max(1, sqrt(2 / k))
    assert DPItemKNN(max_items_per_user=50).sensitivity() == 1.0
    assert DPItemKNN(max_items_per_user=50, max_weight=3.0).sensitivity() == 9.0
    assert DPItemKNN(max_items_per_user=1, unit="interaction").sensitivity() == pytest.approx(math.sqrt(2))
    assert DPItemKNN(max_items_per_user=8, unit="interaction").sensitivity() == 1.0
    # Laplace, user: W^2 (k + 1) / 2; interaction: 2 W^2
    assert DPItemKNN(max_items_per_user=9, mechanism="laplace").sensitivity() == 5.0
    assert DPItemKNN(max_items_per_user=9, mechanism="laplace", unit="interaction").sensitivity() == 2.0


def test_user_contribution_respects_the_l2_bound():
    """Brute force: remove each user in turn; the released triangle moves by at most the sensitivity."""
    data = model_dataset(n_users=20, n_items=12, density=0.6)
    model = DPItemKNN(epsilon=1.0, max_items_per_user=5)
    m = data.to_csr().astype(np.float64)
    m.data = np.clip(m.data, 0, 1)

    def triangle(rows):
        x = m[rows].toarray()[:, :].copy()
        keep = np.zeros_like(x, dtype=bool)
        for r in range(len(x)):  # the first k items stand for any kept subset
            keep[r, np.flatnonzero(x[r])[:5]] = True
        x = np.where(keep, x, 0.0)
        n = np.maximum(keep.sum(axis=1), 1)
        C = (x / np.sqrt(n)[:, None]).T @ (x / np.sqrt(n)[:, None])
        return C[np.triu_indices(C.shape[0])]

    full = triangle(np.arange(20))
    worst = max(np.linalg.norm(full - triangle(np.delete(np.arange(20), u))) for u in range(20))
    assert 0 < worst <= model.sensitivity() + 1e-12


def test_noise_is_what_the_accountant_implies():
    data = model_dataset()
    model = DPItemKNN(epsilon=0.7, delta=1e-6).fit(data, rng=np.random.default_rng(0))
    z = calibrate_noise_multiplier(0.7, 1e-6, releases=1)
    assert model.noise_multiplier_ == z
    assert model.noise_std_ == pytest.approx(z * model.sensitivity())
    assert epsilon_spent(z, 1e-6, releases=1) == pytest.approx(0.7, rel=1e-3)
    stds = [DPItemKNN(epsilon=e).fit(data, rng=np.random.default_rng(0)).noise_std_ for e in (0.5, 1, 4)]
    assert stds[0] > stds[1] > stds[2]


@pytest.mark.parametrize(("mechanism", "variance"), [("gaussian", 1.0), ("laplace", 2.0)])
def test_symmetric_noise_statistics(mechanism, variance):
    """Statistical: std 1 (Gaussian) / scale 1 (Laplace, variance 2), symmetric, independent across the triangle."""
    noise = DPItemKNN(mechanism=mechanism)._symmetric_noise(np.random.default_rng(0), 1.0, 300)
    np.testing.assert_array_equal(noise, noise.T)
    upper = noise[np.triu_indices(300)]
    n = len(upper)
    # sample variance: sd of the estimate ~ sqrt((kurtosis - 1) / n) * variance; 5 sds
    kurtosis = 3.0 if mechanism == "gaussian" else 6.0
    assert abs(upper.var() - variance) < 5 * math.sqrt((kurtosis - 1) / n) * variance
    assert abs(upper.mean()) < 5 * math.sqrt(variance / n)


def test_report_is_measured_on_the_fit():
    data = model_dataset(n_users=40, n_items=30, density=0.5)
    assert DPItemKNN().privacy_report() is None
    model = DPItemKNN(K=5, epsilon=1.0, max_items_per_user=6).fit(data, rng=np.random.default_rng(0))
    report = model.privacy_report()
    assert isinstance(report, PrivacyReport)
    m = report.metrics
    assert m["epsilon"] == pytest.approx(1.0, rel=1e-3) and m["epsilon"] <= 1.0
    assert m["iterations"] == 1.0 and m["noise_multiplier"] == calibrate_noise_multiplier(1.0, 1e-5, releases=1)
    counts = np.diff(data.to_csr().indptr)
    assert m["max_items_contributed"] == min(6, counts.max()) <= m["max_items_per_user"]
    assert m["interactions_dropped"] == int(np.maximum(counts - 6, 0).sum())
    assert m["max_weight_used"] <= m["max_weight"] == 1.0
    assert "unit: user" in report.guarantee and "McSherry" in report.guarantee
    assert report.groups["unit"]["user"]["epsilon"] == m["epsilon"]
    assert model.user_embeddings() is None


def test_no_noise_is_implicit_cosine_item_knn():
    data = model_dataset(n_users=50, n_items=25, density=0.35)
    heavy = data.with_interactions(data.user_idx, data.item_idx, 1.0 + (np.arange(data.n_interactions) % 4))
    for d in (data, heavy):
        dp = DPItemKNN(K=25, epsilon="inf").fit(d, rng=np.random.default_rng(0))
        ref = ItemKNN(similarity="cosine", K=25).fit(d, rng=np.random.default_rng(0))
        np.testing.assert_allclose(dp.similarity_.toarray(), ref.similarity_.toarray(), atol=1e-6)
        users = np.arange(d.n_users)
        np.testing.assert_allclose(dp.score(users), ref.score(users), rtol=1e-5, atol=1e-5)


def test_large_epsilon_still_personalises_the_checkerboard():
    data, held_out = checkerboard(n_per_group=40)
    users = np.flatnonzero(held_out >= 0)
    model = DPItemKNN(K=16, epsilon=50.0, shrinkage=1.0).fit(data, rng=np.random.default_rng(0))
    hits = (model.recommend(users, n=1).items[:, 0] == held_out[users]).mean()
    assert hits >= 0.9


def test_same_seed_same_similarities():
    data = model_dataset()
    a = DPItemKNN(epsilon=1.0).fit(data, rng=np.random.default_rng(4))
    b = DPItemKNN(epsilon=1.0).fit(data, rng=np.random.default_rng(4))
    c = DPItemKNN(epsilon=1.0).fit(data, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.similarity_.toarray(), b.similarity_.toarray())
    assert not np.allclose(a.similarity_.toarray(), c.similarity_.toarray())
    assert a.deterministic is True


def test_refuses_catalogues_too_large_for_a_dense_noisy_matrix(monkeypatch):
    import privrec.models.dp_itemknn as module

    monkeypatch.setattr(module, "MAX_DENSE_CELLS", 100)
    with pytest.raises(DataValidationError, match=r"^DPItemKNN\.fit train must have at most 10 items"):
        DPItemKNN().fit(model_dataset(), rng=np.random.default_rng(0))


@pytest.mark.slow
def test_infinite_epsilon_matches_item_knn_on_ml100k(shared_data_dir):
    from privrec.data.loaders import MovieLens100K
    from privrec.data.split import RandomHoldout
    from privrec.evaluation import evaluate

    data = MovieLens100K().load(shared_data_dir)
    data = data.with_interactions(data.user_idx, data.item_idx, np.ones(data.n_interactions, dtype=np.float32))
    split = RandomHoldout(fraction=0.2).split(data, rng=np.random.default_rng(0))
    scores = {}
    for name, model in (("knn", ItemKNN(K=20)), ("dp", DPItemKNN(K=20, epsilon=math.inf))):
        model.fit(split.train, rng=np.random.default_rng(0))
        scores[name] = evaluate(model, split.train, split.test, cutoffs=(10,)).overall["ndcg_at_10"]
    assert scores["dp"] == pytest.approx(scores["knn"], abs=0.005)
