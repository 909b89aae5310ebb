"""FactorizationModel: a pure-numpy model built on it needs only ``_fit_factors``."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np
import pytest

from privrec.errors import ConfigError, DataValidationError, NotFittedError
from privrec.models import ALS, BPR, LMF, FactorizationModel, ItemKNN, Popularity, Recommender
from privrec.testing.models import ModelConformance, checkerboard, model_dataset


@dataclass(kw_only=True, eq=False)
class TruncatedSVD(FactorizationModel):
    """Rank-``factors`` SVD of the training matrix: user factors ``U S``, item factors ``V``."""

    factors: int = 2
    fallback: Recommender | None = None

    def __post_init__(self) -> None:
        if isinstance(self.factors, bool) or not isinstance(self.factors, int) or self.factors < 1:
            raise ConfigError(f"model.factors must be an integer >= 1; got {self.factors!r}.")

    def _fit_factors(self, user_items, *, rng):
        u, s, vt = np.linalg.svd(user_items.toarray(), full_matrices=False)
        return u[:, : self.factors] * s[: self.factors], vt[: self.factors].T


@dataclass(kw_only=True, eq=False)
class WrongShapes(TruncatedSVD):
    def _fit_factors(self, user_items, *, rng):
        users, items = super()._fit_factors(user_items, rng=rng)
        return users[:-1], items


class TestTruncatedSVD(ModelConformance):
    has_embeddings = True

    def make_model(self):
        return TruncatedSVD(factors=3)

    def bad_configs(self):
        return [{"factors": 0}, {"factors": 1.5}, {"factors": True}]


class TestTruncatedSVDWithModelFallback(ModelConformance):
    has_embeddings = True

    def make_model(self):
        return TruncatedSVD(factors=3, fallback=TruncatedSVD(factors=1))


def fitted(model=None, data=None, seed=0):
    data = model_dataset() if data is None else data
    return (model or TruncatedSVD(factors=3)).fit(data, rng=np.random.default_rng(seed)), data


def test_is_a_recommender_with_the_learned_state():
    model, data = fitted()
    assert isinstance(model, Recommender)
    assert model.user_factors_.dtype == model.item_factors_.dtype == np.float32
    assert model.user_factors_.shape == (data.n_users, 3) and model.item_factors_.shape == (data.n_items, 3)
    assert isinstance(model.fallback_, Popularity)
    assert model.n_fallback_users_ == int((data.user_counts == 0).sum())
    assert model.privacy_report() is None


def test_scores_are_the_factor_product():
    model, data = fitted()
    users = np.flatnonzero(data.user_counts > 0)
    np.testing.assert_array_equal(model.score(users), model.user_factors_[users] @ model.item_factors_.T)
    np.testing.assert_array_equal(model.user_embeddings(users), model.user_factors_[users])
    np.testing.assert_array_equal(model.item_embeddings(), model.item_factors_)


def test_recommend_matches_a_plain_ranking_with_ties_to_the_lower_item():
    model, data = fitted()
    # tie every score in pairs: item 2j and 2j + 1 get the same factors
    model.item_factors_ = np.repeat(model.item_factors_[::2], 2, axis=0)[: data.n_items]
    users = np.flatnonzero(data.user_counts > 0)
    seen = data.to_csr()[users].toarray() != 0
    dense = model.score(users)
    recs = model.recommend(users, n=data.n_items)
    for row in range(len(users)):
        candidates = np.flatnonzero(~seen[row])
        expected = candidates[np.argsort(-dense[row, candidates], kind="stable")]  # stable: lower index first
        listed = recs.items[row][recs.items[row] >= 0]
        np.testing.assert_array_equal(listed, expected)


@pytest.mark.parametrize("block", [1, 23, 1 << 22])
def test_blocks_do_not_change_lists(monkeypatch, block):
    model, data = fitted()
    users = np.arange(data.n_users)
    expected = model.recommend(users, n=6)
    monkeypatch.setattr(type(model), "block_elements", block)
    got = model.recommend(users, n=6)
    np.testing.assert_array_equal(got.items, expected.items)
    np.testing.assert_array_equal(got.scores, expected.scores)


def test_checkerboard_rank_two_is_enough():
    data, held_out = checkerboard()
    model = TruncatedSVD(factors=2).fit(data, rng=np.random.default_rng(0))
    users = np.flatnonzero(held_out >= 0)
    np.testing.assert_array_equal(model.recommend(users, n=1).items[:, 0], held_out[users])


def test_embeddings_before_fit_and_bad_indices():
    model = TruncatedSVD()
    with pytest.raises(NotFittedError, match=r"^TruncatedSVD\.user_embeddings called before fit"):
        model.user_embeddings()
    with pytest.raises(NotFittedError, match=r"^TruncatedSVD\.item_embeddings called before fit"):
        model.item_embeddings()
    model, data = fitted()
    with pytest.raises(DataValidationError, match=r"^TruncatedSVD\.item_embeddings items must be indices in "
                                                  r"\[0, 20\); got 1 out of range\."):
        model.item_embeddings(np.array([0, data.n_items]))


def test_wrong_factor_shapes_raise():
    with pytest.raises(ValueError, match=r"^WrongShapes\._fit_factors must return \(n_users, d\)"):
        WrongShapes().fit(model_dataset(), rng=np.random.default_rng(0))


def test_pickled_model_keeps_the_factors():
    model, _ = fitted()
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.user_embeddings(), model.user_embeddings())


@pytest.mark.parametrize(("model", "expected"), [
    (ALS(num_threads=4), True),
    (ItemKNN(num_threads=4), True),
    (BPR(), True),
    (BPR(num_threads=0), False),
    (LMF(num_threads=2), False),
    (LMF(num_threads=1), True),
    (TruncatedSVD(), True),
    (ALS(fallback=BPR(num_threads=2)), False),
    (ALS(fallback=ALS(fallback=LMF(num_threads=0))), False),
    (TruncatedSVD(fallback=BPR(num_threads=1)), True),
    (ItemKNN(fallback=LMF(num_threads=3)), False),
])
def test_deterministic_follows_threads_and_fallback(model, expected):
    assert model.deterministic is expected


@pytest.mark.parametrize(("model", "extra_columns"), [
    (ALS(factors=6, iterations=3), 0),
    (BPR(factors=6, iterations=10), 1),  # a constant 1 meets the item bias
    (LMF(factors=6, iterations=3), 2),  # user bias and item bias pairs
])
def test_implicit_embeddings_are_implicits_factors(model, extra_columns):
    data = model_dataset()
    model.fit(data, rng=np.random.default_rng(0))
    has = data.user_counts > 0
    emb = model.user_embeddings()
    assert emb.shape == (data.n_users, 6 + extra_columns)
    np.testing.assert_array_equal(emb[has], model.model_.user_factors[has])  # what attacks read before
    assert np.isnan(emb[~has]).all()
    np.testing.assert_array_equal(model.item_embeddings(), model.model_.item_factors)
    users = np.flatnonzero(has)
    ids, scores = model.model_.recommend(users, model.user_items_[users], N=5)
    recs = model.recommend(users, n=5)
    np.testing.assert_array_equal(recs.items, ids)  # implicit's own lists, tie order included
    np.testing.assert_array_equal(recs.scores, scores)
