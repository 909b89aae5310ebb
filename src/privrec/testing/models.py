"""Conformance checks every recommender must pass (subclass in a test file), and their datasets.

Usage::

    class TestALS(ModelConformance):
        def make_model(self):
            return ALS(factors=8, iterations=10)

        def bad_configs(self):
            return [{"factors": 0}, {"alpha": -1.0}]
"""

from __future__ import annotations

import pickle
from typing import Any, ClassVar

import numpy as np
import pytest
from numpy.typing import NDArray

from privrec.data.dataset import Dataset, Vocabulary
from privrec.errors import ConfigError, DataValidationError, NotFittedError
from privrec.models.base import Recommendations, Recommender
from privrec.privacy.base import PrivacyReport

__all__ = ["ModelConformance", "check_well_formed", "checkerboard", "model_dataset"]


def _dataset(n_users: int, n_items: int, users: NDArray, items: NDArray, name: str) -> Dataset:
    return Dataset(
        users=Vocabulary(np.array([f"u{i}" for i in range(n_users)], dtype=object)),
        items=Vocabulary(np.array([f"i{i}" for i in range(n_items)], dtype=object)),
        user_idx=users,
        item_idx=items,
        weight=np.ones(len(users), dtype=np.float32),
        name=name,
    )


def model_dataset(
    n_users: int = 36, n_items: int = 20, *, n_empty: int = 4, n_unused_items: int = 1, density: float = 0.3,
    seed: int = 0,
) -> Dataset:
    """Random implicit feedback with ``n_empty`` users without rows (scattered among the indices) and
    ``n_unused_items`` items nobody has (the last ones). Every other user has at least two rows."""
    rng = np.random.default_rng(seed)
    used = n_items - n_unused_items
    mask = rng.random((n_users, used)) < density
    mask[np.arange(n_users), rng.integers(0, used, n_users)] = True
    mask[np.arange(n_users), (np.arange(n_users) + 1) % used] = True
    mask[rng.choice(n_users, n_empty, replace=False)] = False
    users, items = np.nonzero(mask)
    return _dataset(n_users, n_items, users, items, "model-conformance")


def checkerboard(
    n_per_group: int = 10, n_per_block: int = 8, *, n_empty: int = 2
) -> tuple[Dataset, NDArray[np.int64]]:
    """Two disjoint user groups, each consuming its own disjoint item block, minus one withheld item per user.

    User ``u`` of group ``g`` (users ``g*n_per_group ...``) has every item of block ``g`` except item
    ``g*n_per_block + u % n_per_block``, which is returned in ``held_out[u]``. Any personalised model must rank
    a user's withheld item above the other block's items, i.e. first. The last ``n_empty`` users have no rows
    (``held_out`` is -1 for them).
    """
    n_users = 2 * n_per_group + n_empty
    held_out = np.full(n_users, -1, dtype=np.int64)
    users, items = [], []
    for g in range(2):
        block = np.arange(g * n_per_block, (g + 1) * n_per_block)
        for k in range(n_per_group):
            u = g * n_per_group + k
            held_out[u] = block[k % n_per_block]
            kept = block[block != held_out[u]]
            users.extend([u] * len(kept))
            items.extend(kept)
    return _dataset(n_users, 2 * n_per_block, np.array(users), np.array(items), "checkerboard"), held_out


def check_well_formed(recs: Recommendations, users: NDArray, n: int, n_items: int) -> None:
    """Shapes, dtypes, padding and ordering every :class:`Recommendations` must satisfy."""
    u = len(users)
    assert isinstance(recs, Recommendations)
    assert recs.users.dtype == np.int64 and recs.users.shape == (u,)
    np.testing.assert_array_equal(recs.users, users)
    assert recs.items.dtype == np.int64 and recs.items.shape == (u, n)
    assert recs.scores.dtype == np.float32 and recs.scores.shape == (u, n)
    assert recs.fallback.dtype == np.bool_ and recs.fallback.shape == (u,)
    assert recs.n == n
    pad = recs.items == -1
    np.testing.assert_array_equal(pad, np.isneginf(recs.scores), err_msg="padding must be (-1, -inf) together")
    assert np.all((recs.items >= -1) & (recs.items < n_items))
    assert not np.isnan(recs.scores).any()
    for row in range(u):
        valid = ~pad[row]
        k = int(valid.sum())
        assert valid[:k].all(), "padding must come after every real item"
        assert len(np.unique(recs.items[row, :k])) == k, "an item is listed twice"
        top = recs.scores[row, :k]
        assert np.all(np.diff(top) <= 1e-6 * (1 + np.abs(top[1:]))), "items must be listed best first"


def _seen_sets(data: Dataset) -> list[set[int]]:
    m = data.to_csr()
    return [set(m.indices[m.indptr[u] : m.indptr[u + 1]].tolist()) for u in range(data.n_users)]


class ModelConformance:
    """Subclass as ``class TestMyModel(ModelConformance)`` and define the hooks (not collected itself).

    Hooks: ``make_model()`` (a valid, unfitted instance, small enough to fit in milliseconds),
    ``bad_configs()`` (kwargs that must raise :class:`ConfigError`), optionally ``make_data()``.
    Class attributes: ``uses_fallback`` (users without rows are served and flagged by ``model.fallback_``;
    false for a model that serves everyone itself), ``personalized`` (runs the checkerboard known-answer test),
    ``checkerboard_top`` (the withheld item must be within this many first places), ``has_embeddings``
    (``True``/``False`` to require or forbid ``user_embeddings()``; ``None`` accepts either).

    Besides fitting and serving, the suite checks the optional members of the contract: ``user_embeddings``
    (``None``, or float32 rows with NaN exactly for the users served by the fallback, consistent with
    ``score`` when the model also has ``item_embeddings``), ``deterministic`` (a bool known before ``fit``;
    when true, two seeded fits give identical scores) and ``privacy_report`` (``None`` or a
    :class:`~privrec.privacy.base.PrivacyReport` without ids).
    """

    uses_fallback: ClassVar[bool] = True
    personalized: ClassVar[bool] = True
    checkerboard_top: ClassVar[int] = 1
    n: ClassVar[int] = 5
    #: Whether the model must have user embeddings (true for a matrix-factorisation model).
    has_embeddings: ClassVar[bool | None] = None

    # ------------------------------------------------------------------ hooks
    def make_model(self) -> Recommender:  # pragma: no cover - hook
        raise NotImplementedError

    def bad_configs(self) -> list[dict[str, Any]]:
        return []

    def make_data(self) -> Dataset:
        return model_dataset()

    # ------------------------------------------------------------------ helpers
    def _fit(self, seed: int = 0, data: Dataset | None = None) -> tuple[Recommender, Dataset]:
        data = self.make_data() if data is None else data
        return self.make_model().fit(data, rng=np.random.default_rng(seed)), data

    # ------------------------------------------------------------------ contract
    def test_satisfies_protocol(self):
        assert isinstance(self.make_model(), Recommender)

    def test_fit_returns_self(self):
        model = self.make_model()
        assert model.fit(self.make_data(), rng=np.random.default_rng(0)) is model

    def test_recommend_before_fit_raises(self):
        model = self.make_model()
        with pytest.raises(NotFittedError, match=rf"^{type(model).__name__}\.recommend called before fit"):
            model.recommend(np.arange(3), n=self.n)

    def test_score_before_fit_raises(self):
        model = self.make_model()
        with pytest.raises(NotFittedError, match=rf"^{type(model).__name__}\.score called before fit"):
            model.score(np.arange(3))

    def test_empty_train_raises(self):
        data = self.make_data()
        empty = data.subset(np.zeros(data.n_interactions, dtype=bool))
        with pytest.raises(DataValidationError):
            self.make_model().fit(empty, rng=np.random.default_rng(0))

    def test_rng_must_be_generator(self):
        with pytest.raises(ConfigError):
            self.make_model().fit(self.make_data(), rng=0)  # type: ignore[arg-type]  # the wrong type under test

    def test_bad_configs_raise(self):
        cls = type(self.make_model())
        for kwargs in self.bad_configs():
            with pytest.raises(ConfigError) as info:
                cls(**kwargs)
            assert "\n" not in str(info.value)

    # ------------------------------------------------------------------ lists
    def test_recommendations_well_formed(self):
        model, data = self._fit()
        users = np.arange(data.n_users)
        recs = model.recommend(users, n=self.n)
        check_well_formed(recs, users, self.n, data.n_items)
        assert (recs.items[:, 0] >= 0).all(), "every user gets at least one item here"

    def test_exclude_seen(self):
        model, data = self._fit()
        seen = _seen_sets(data)
        recs = model.recommend(np.arange(data.n_users), n=data.n_items)
        for u in range(data.n_users):
            listed = set(recs.items[u][recs.items[u] >= 0].tolist())
            assert not listed & seen[u]

    def test_include_seen_is_well_formed(self):
        model, data = self._fit()
        users = np.arange(data.n_users)
        check_well_formed(model.recommend(users, n=self.n, exclude_seen=False), users, self.n, data.n_items)

    def test_pads_beyond_catalogue(self):
        model, data = self._fit()
        users = np.arange(data.n_users)
        n = data.n_items + 3
        recs = model.recommend(users, n=n)
        check_well_formed(recs, users, n, data.n_items)
        assert (recs.items[:, data.n_items :] == -1).all()
        unseen = data.n_items - data.user_counts
        assert np.all((recs.items >= 0).sum(axis=1) <= unseen)

    def test_empty_user_batch(self):
        model, _ = self._fit()
        recs = model.recommend(np.zeros(0, dtype=np.int64), n=self.n)
        assert recs.items.shape == (0, self.n) and recs.scores.shape == (0, self.n)
        assert model.score(np.zeros(0, dtype=np.int64)).shape[0] == 0

    def test_input_order_and_duplicates(self):
        model, data = self._fit()
        all_recs = model.recommend(np.arange(data.n_users), n=self.n)
        users = np.random.default_rng(1).integers(0, data.n_users, 2 * data.n_users)
        recs = model.recommend(users, n=self.n)
        np.testing.assert_array_equal(recs.users, users)
        np.testing.assert_array_equal(recs.items, all_recs.items[users])
        np.testing.assert_allclose(recs.scores, all_recs.scores[users], rtol=1e-5, atol=1e-6)  # BLAS batch shapes
        np.testing.assert_array_equal(recs.fallback, all_recs.fallback[users])

    def test_unknown_users_raise_without_ids(self):
        model, data = self._fit()
        users = np.array([0, data.n_users, data.n_users + 1234, -5])
        with pytest.raises(DataValidationError, match="got 3 out of range") as info:
            model.recommend(users, n=self.n)
        assert "1234" not in str(info.value) and "\n" not in str(info.value)
        with pytest.raises(DataValidationError):
            model.score(users)
        with pytest.raises(DataValidationError):
            model.recommend(np.array([0.5]), n=self.n)
        with pytest.raises(ConfigError):
            model.recommend(np.arange(2), n=0)

    def test_users_without_rows(self):
        model, data = self._fit()
        users = np.arange(data.n_users)
        empty = data.user_counts == 0
        assert empty.any(), "make_data() must include users without training rows"
        recs = model.recommend(users, n=self.n)
        if not self.uses_fallback:
            assert not recs.fallback.any()
            assert (recs.items[empty] >= 0).all(), "users without rows must still be served"
            return
        np.testing.assert_array_equal(recs.fallback, empty)
        assert getattr(model, "n_fallback_users_", int(empty.sum())) == int(empty.sum())
        fallback = getattr(model, "fallback_", None)
        assert isinstance(fallback, Recommender), "a model with uses_fallback exposes its fitted fallback_"
        expected = fallback.recommend(users[empty], n=self.n)
        np.testing.assert_array_equal(recs.items[empty], expected.items)
        np.testing.assert_array_equal(recs.scores[empty], expected.scores)
        np.testing.assert_array_equal(model.score(users[empty]), fallback.score(users[empty]))

    # ------------------------------------------------------------------ scores
    def test_score_shape_and_dtype(self):
        model, data = self._fit()
        users = np.array([3, 1, 3, 0])
        scores = model.score(users)
        assert scores.dtype == np.float32 and scores.shape == (4, data.n_items)
        np.testing.assert_array_equal(scores[0], scores[2])
        # BLAS may sum in another order for another batch shape: equal up to float32 rounding
        np.testing.assert_allclose(model.score(users[[1]])[0], scores[1], rtol=1e-5, atol=1e-6)

    def test_score_consistent_with_recommend(self):
        model, data = self._fit()
        users = np.arange(data.n_users)
        seen = data.to_csr().toarray() != 0
        for exclude in (True, False):
            recs = model.recommend(users, n=self.n, exclude_seen=exclude)
            dense = model.score(users)
            for u in users:
                valid = recs.items[u] >= 0
                k = int(valid.sum())
                got = recs.scores[u, :k]
                np.testing.assert_allclose(dense[u, recs.items[u, :k]], got, rtol=1e-4, atol=1e-5)
                candidates = dense[u][~seen[u]] if exclude else dense[u]
                best = np.sort(candidates)[::-1][:k]
                np.testing.assert_allclose(got, best, rtol=1e-4, atol=1e-5,
                                           err_msg="recommend must list the best-scored items, best first")

    # ------------------------------------------------------------------ reproducibility
    def test_same_seed_same_output(self):
        a, data = self._fit(seed=7)
        b, _ = self._fit(seed=7)
        users = np.arange(data.n_users)
        ra, rb = a.recommend(users, n=self.n), b.recommend(users, n=self.n)
        np.testing.assert_array_equal(ra.items, rb.items)
        np.testing.assert_array_equal(ra.scores, rb.scores)
        np.testing.assert_array_equal(a.score(users), b.score(users))

    def test_refit_starts_fresh(self):
        data = self.make_data()
        users = np.arange(data.n_users)
        refit = self.make_model().fit(data, rng=np.random.default_rng(1)).fit(data, rng=np.random.default_rng(2))
        fresh = self.make_model().fit(data, rng=np.random.default_rng(2))
        np.testing.assert_array_equal(refit.score(users), fresh.score(users))

    def test_pickles(self):
        model = self.make_model()
        again = pickle.loads(pickle.dumps(model))
        assert type(again) is type(model)
        with pytest.raises(NotFittedError):
            again.recommend(np.arange(2), n=self.n)
        data = self.make_data()
        users = np.arange(data.n_users)
        again.fit(data, rng=np.random.default_rng(3))
        model.fit(data, rng=np.random.default_rng(3))
        restored = pickle.loads(pickle.dumps(model))
        for other in (again, restored):
            a, b = model.recommend(users, n=self.n), other.recommend(users, n=self.n)
            np.testing.assert_array_equal(a.items, b.items)
            np.testing.assert_array_equal(a.scores, b.scores)
            np.testing.assert_array_equal(a.fallback, b.fallback)
            np.testing.assert_array_equal(model.score(users), other.score(users))

    # ------------------------------------------------------------------ optional contract members
    def test_user_embeddings_contract(self):
        model = self.make_model()
        fitted, data = self._fit()
        emb = fitted.user_embeddings()
        if self.has_embeddings is not None:
            assert (emb is not None) == self.has_embeddings
        if emb is None:
            assert model.user_embeddings() is None, "a model without embeddings answers None before fit too"
            return
        # a model with embeddings raises before fit
        with pytest.raises(NotFittedError, match=rf"^{type(model).__name__}\.user_embeddings called before fit"):
            model.user_embeddings()
        assert isinstance(emb, np.ndarray) and emb.dtype == np.float32
        assert emb.ndim == 2 and emb.shape[0] == data.n_users and emb.shape[1] >= 1
        users = np.arange(data.n_users)
        served_by_fallback = fitted.recommend(users, n=1).fallback
        np.testing.assert_array_equal(np.isnan(emb).all(axis=1), served_by_fallback,
                                      err_msg="rows are NaN exactly for the users served by the fallback")
        assert np.isfinite(emb[~served_by_fallback]).all()
        some = np.array([3, 1, 3, 0])
        np.testing.assert_array_equal(fitted.user_embeddings(some), emb[some])
        saved = emb.copy()
        emb[:] = 0.0
        np.testing.assert_array_equal(fitted.user_embeddings(), saved, err_msg="must return a copy")
        with pytest.raises(DataValidationError):
            fitted.user_embeddings(np.array([data.n_users]))
        item_embeddings = getattr(fitted, "item_embeddings", None)
        if callable(item_embeddings):
            items = item_embeddings()
            assert items.dtype == np.float32 and items.shape[0] == data.n_items
            known = users[~served_by_fallback]
            np.testing.assert_allclose(fitted.score(known), fitted.user_embeddings(known) @ items.T,
                                       rtol=1e-5, atol=1e-6, err_msg="score must be user x item embeddings")

    def test_deterministic_flag(self):
        model = self.make_model()
        flag = model.deterministic
        assert isinstance(flag, bool), "deterministic must be a bool, known before fit"
        assert pickle.loads(pickle.dumps(model)).deterministic is flag
        a, data = self._fit(seed=5)
        assert a.deterministic is flag, "fitting must not change deterministic"
        if not flag:
            pytest.skip("not deterministic for this configuration")
        b, _ = self._fit(seed=5)
        users = np.arange(data.n_users)
        np.testing.assert_array_equal(a.score(users), b.score(users))
        ea, eb = a.user_embeddings(), b.user_embeddings()
        assert (ea is None) == (eb is None)
        if ea is not None:
            np.testing.assert_array_equal(ea, eb)

    def test_privacy_report_type(self):
        model, data = self._fit()
        report = model.privacy_report()
        assert report is None or isinstance(report, PrivacyReport)
        if report is not None:
            text = repr(report.to_dict())
            assert not any(f"'{user_id}'" in text for user_id in data.users.ids[:10])

    # ------------------------------------------------------------------ known answer
    def test_checkerboard(self):
        if not self.personalized:
            pytest.skip("not a personalised model")
        data, held_out = checkerboard()
        model = self.make_model().fit(data, rng=np.random.default_rng(0))
        users = np.flatnonzero(held_out >= 0)
        recs = model.recommend(users, n=self.checkerboard_top)
        hits = (recs.items == held_out[users, None]).any(axis=1)
        assert hits.all(), f"{int((~hits).sum())} of {len(users)} users miss their withheld item"
