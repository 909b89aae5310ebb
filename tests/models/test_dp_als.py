import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from privrec.errors import ConfigError
from privrec.models import ALS, DPALS, Popularity
from privrec.models.dp_als import bound_contributions, weighted_grams
from privrec.privacy.accounting import calibrate_noise_multiplier, epsilon_spent
from privrec.privacy.base import PrivacyReport
from privrec.testing.models import ModelConformance, checkerboard, model_dataset


class TestDPALS(ModelConformance):
    """With noise: the whole contract except the checkerboard (noise on 22 users may reorder it)."""

    personalized = False
    has_embeddings = True

    def make_model(self):
        return DPALS(factors=4, iterations=3, epsilon=2.0, max_items_per_user=5)

    def bad_configs(self):
        return [{"epsilon": -1}, {"epsilon": 0}, {"epsilon": "abc"}, {"epsilon": float("nan")}, {"epsilon": None},
                {"delta": 0.0}, {"delta": 1.0}, {"delta": -1e-5}, {"unit": "item"}, {"max_items_per_user": 0},
                {"max_items_per_user": 2.5}, {"clip": 0.0}, {"clip": -1.0}, {"normalize": "yes"},
                {"min_weight": -1.0}, {"max_weight": 0.0}, {"min_weight": 2.0, "max_weight": 1.0},
                {"accountant": "moments"}, {"factors": 0}, {"regularization": -0.1}, {"alpha": 0.0},
                {"iterations": 0}, {"fallback": "popularity"}]


class TestDPALSWeighted(TestDPALS):
    """Confidences other than 1: the per-item noisy Gram matrices and the batched stacked solves."""

    def make_model(self):
        return DPALS(factors=4, iterations=2, epsilon=2.0, alpha=3.0, max_weight=2.0, unit="interaction")


class TestDPALSNoNoise(ModelConformance):
    has_embeddings = True

    def make_model(self):
        return DPALS(factors=8, iterations=10, regularization=0.1, epsilon=math.inf)


def test_message_shape():
    with pytest.raises(ConfigError, match=r"^dp_als\.epsilon must be > 0; got -1\.$"):
        DPALS(epsilon=-1)
    with pytest.raises(ConfigError, match=r"^dp_als\.factors must be >= 1; got 0\.$"):
        DPALS(factors=0)
    with pytest.raises(ConfigError, match=r"^dp_als\.unit must be one of \['user', 'interaction'\]; got 'item'\.$"):
        DPALS(unit="item")
    assert DPALS(epsilon="inf").epsilon == math.inf


# ---------------------------------------------------------------------- building blocks
def test_bound_contributions_keeps_a_uniform_subset_of_at_most_k():
    rng = np.random.default_rng(0)
    dense = (rng.random((40, 30)) < 0.5).astype(np.float32)
    dense[0] = 0.0
    dense[1, :3] = 1.0
    dense[1, 3:] = 0.0
    m = sp.csr_matrix(dense)
    out = bound_contributions(m, 5, np.random.default_rng(1))
    counts, before = np.diff(out.indptr), np.diff(m.indptr)
    np.testing.assert_array_equal(counts, np.minimum(before, 5))
    assert (out.toarray() <= dense).all(), "only stored entries may be kept"
    np.testing.assert_array_equal(out[1].toarray(), m[1].toarray())  # short rows are unchanged
    again = bound_contributions(m, 5, np.random.default_rng(1))
    np.testing.assert_array_equal(out.toarray(), again.toarray())
    # uniform: one row of 20 items, kept 5 at a time, 4000 draws -> each item kept with p = 1/4
    row = sp.csr_matrix(np.ones((1, 20)))
    rng = np.random.default_rng(2)
    kept = sum(bound_contributions(row, 5, rng).toarray()[0] for _ in range(4000))
    sd = math.sqrt(4000 * 0.25 * 0.75)
    assert np.all(np.abs(kept - 1000) < 4.5 * sd)


def test_weighted_grams_match_a_direct_sum():
    rng = np.random.default_rng(0)
    m = sp.random(60, 25, density=0.3, format="csr", random_state=1)
    m.data = rng.normal(size=m.nnz)
    F = rng.normal(size=(25, 5))
    expected = np.einsum("rj,jd,je->rde", m.toarray(), F, F)
    np.testing.assert_allclose(weighted_grams(m, F), expected, atol=1e-12)


# ---------------------------------------------------------------------- noise calibration
def test_sensitivity_known_answers():
    # user: Gamma^4 + k B^2 Gamma^4 + k c_hi^2 Gamma^2 with B = 0 (every confidence is 1), c_hi = 1
    assert DPALS(max_items_per_user=4, clip=1.0).sensitivity() == pytest.approx(math.sqrt(1 + 4))
    assert DPALS(max_items_per_user=4, clip=2.0).sensitivity() == pytest.approx(math.sqrt(16 + 4 * 4))
    # alpha=2, weights in [1, 1]: c = 2, B = 1
    assert DPALS(max_items_per_user=3, alpha=2.0).sensitivity() == pytest.approx(math.sqrt(1 + 3 + 3 * 4))
    # interaction: 2 Gamma^4 + 2 k B^2 Gamma^4 + 4 k c_hi^2 Gamma^2
    assert DPALS(max_items_per_user=4, unit="interaction").sensitivity() == pytest.approx(math.sqrt(2 + 16))


def test_noise_is_what_the_accountant_implies():
    data = model_dataset()
    model = DPALS(factors=4, iterations=5, epsilon=1.5, delta=1e-6).fit(data, rng=np.random.default_rng(0))
    z = calibrate_noise_multiplier(1.5, 1e-6, releases=5)
    assert model.noise_multiplier_ == z
    assert model.noise_std_ == pytest.approx(z * model.sensitivity())
    assert epsilon_spent(z, 1e-6, releases=5) == pytest.approx(1.5, rel=1e-3)


def test_smaller_epsilon_more_noise():
    data = model_dataset()
    stds = [DPALS(factors=4, epsilon=e).fit(data, rng=np.random.default_rng(0)).noise_std_ for e in (0.5, 1, 4, 16)]
    assert all(a > b for a, b in itertools.pairwise(stds))
    user = DPALS(factors=4, unit="user").fit(data, rng=np.random.default_rng(0))
    interaction = DPALS(factors=4, unit="interaction").fit(data, rng=np.random.default_rng(0))
    assert interaction.noise_std_ > user.noise_std_


def test_noise_reaches_the_item_factors():
    """Statistical: items nobody has get factors from noise alone, so more noise -> longer such factors."""
    data = model_dataset(n_unused_items=5)
    unused = np.arange(data.n_items - 5, data.n_items)

    def unused_norm(eps):
        model = DPALS(factors=4, iterations=1, epsilon=eps).fit(data, rng=np.random.default_rng(3))
        return float(np.linalg.norm(model.item_factors_[unused], axis=1).mean())

    assert unused_norm(math.inf) == 0.0
    assert unused_norm(0.5) > unused_norm(8.0) > 0.0


# ---------------------------------------------------------------------- report
def test_report_is_measured_on_the_fit():
    data = model_dataset(n_users=40, n_items=30, density=0.5)
    assert DPALS().privacy_report() is None
    model = DPALS(factors=4, iterations=3, epsilon=2.0, max_items_per_user=6, clip=0.5,
                  normalize=False).fit(data, rng=np.random.default_rng(0))
    report = model.privacy_report()
    assert isinstance(report, PrivacyReport)
    m = report.metrics
    assert m["epsilon"] == pytest.approx(2.0, rel=1e-3) and m["epsilon"] <= 2.0
    assert m["delta"] == 1e-5 and m["iterations"] == 3.0
    assert m["noise_multiplier"] == calibrate_noise_multiplier(2.0, 1e-5, releases=3)
    counts = np.diff(data.to_csr().indptr)
    assert m["max_items_contributed"] == min(6, counts.max()) <= m["max_items_per_user"] == 6
    assert m["users_bounded"] == int((counts > 6).sum())
    assert m["interactions_dropped"] == int(np.maximum(counts - 6, 0).sum())
    assert 0 < m["max_factor_norm"] <= 0.5 + 1e-12
    assert m["unit_is_user"] == 1.0
    assert "unit: user" in report.guarantee and "Chien" in report.guarantee
    assert report.groups == {"unit": {"user": {"epsilon": m["epsilon"], "delta": 1e-5}}}


def test_report_without_noise():
    data = model_dataset()
    report = DPALS(epsilon="inf", unit="interaction").fit(data, rng=np.random.default_rng(0)).privacy_report()
    assert report is not None
    assert report.metrics["epsilon"] == math.inf and report.metrics["noise_multiplier"] == 0.0
    assert report.metrics["interactions_dropped"] == 0.0
    assert report.metrics["max_items_contributed"] == float(data.user_counts.max())
    assert "no guarantee" in report.guarantee and "unit: interaction" in report.guarantee


# ---------------------------------------------------------------------- epsilon = inf is ALS
def test_no_noise_solves_the_als_normal_equations_exactly():
    """Known answer: the returned user factors are the exact ALS solution against the returned item factors
    (weighted confidences, so the per-user Gram path is exercised)."""
    data = model_dataset()
    heavy = data.with_interactions(data.user_idx, data.item_idx, 1.0 + (np.arange(data.n_interactions) % 3))
    model = DPALS(factors=5, iterations=4, regularization=0.2, alpha=2.0, epsilon="inf")
    model.fit(heavy, rng=np.random.default_rng(0))
    X, Y = model.user_factors_.astype(np.float64), model.item_factors_.astype(np.float64)
    C = heavy.to_csr().toarray() * 2.0
    for u in range(data.n_users):
        A = Y.T @ Y + 0.2 * np.eye(5) + Y.T @ np.diag(np.where(C[u] != 0, C[u] - 1, 0.0)) @ Y
        b = Y.T @ C[u]
        np.testing.assert_allclose(X[u], np.linalg.solve(A, b), rtol=1e-4, atol=1e-6)


def test_no_noise_recommends_like_als_on_checkerboard():
    data, held_out = checkerboard()
    users = np.flatnonzero(held_out >= 0)
    dp = DPALS(factors=4, iterations=10, regularization=0.1, epsilon=math.inf).fit(data, rng=np.random.default_rng(0))
    als = ALS(factors=4, iterations=10, regularization=0.1).fit(data, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(dp.recommend(users, n=1).items, als.recommend(users, n=1).items)


def test_large_epsilon_still_personalises_the_checkerboard():
    data, held_out = checkerboard(n_per_group=40)
    users = np.flatnonzero(held_out >= 0)
    model = DPALS(factors=2, iterations=2, epsilon=200.0).fit(data, rng=np.random.default_rng(0))
    hits = (model.recommend(users, n=1).items[:, 0] == held_out[users]).mean()
    assert hits >= 0.9


@pytest.mark.slow
def test_infinite_epsilon_matches_als_on_ml100k(shared_data_dir):
    from privrec.data.loaders import MovieLens100K
    from privrec.data.split import RandomHoldout
    from privrec.evaluation import evaluate

    data = MovieLens100K().load(shared_data_dir)
    data = data.with_interactions(data.user_idx, data.item_idx, np.ones(data.n_interactions, dtype=np.float32))
    split = RandomHoldout(fraction=0.2).split(data, rng=np.random.default_rng(0))
    hyper = {"factors": 64, "regularization": 0.05, "alpha": 1.0, "iterations": 15}
    scores = {}
    for name, model in (("als", ALS(**hyper)), ("dp", DPALS(**hyper, epsilon=math.inf))):
        model.fit(split.train, rng=np.random.default_rng(0))
        scores[name] = evaluate(model, split.train, split.test, cutoffs=(10,)).overall["ndcg_at_10"]
    # exact solves vs implicit's 3-step conjugate gradient: the same model up to convergence
    assert scores["dp"] == pytest.approx(scores["als"], abs=0.01)
    assert scores["als"] > 0.3


# ---------------------------------------------------------------------- reproducibility and fallback
def test_same_seed_same_factors_other_seed_other_factors():
    data = model_dataset()
    a = DPALS(factors=4, epsilon=1.0).fit(data, rng=np.random.default_rng(11))
    b = DPALS(factors=4, epsilon=1.0).fit(data, rng=np.random.default_rng(11))
    c = DPALS(factors=4, epsilon=1.0).fit(data, rng=np.random.default_rng(12))
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.allclose(a.item_factors_, c.item_factors_)
    assert a.deterministic is True


def test_users_without_data_use_the_fallback():
    data = model_dataset(n_empty=5)
    model = DPALS(factors=4).fit(data, rng=np.random.default_rng(0))
    assert isinstance(model.fallback_, Popularity) and model.n_fallback_users_ == 5
