"""Property tests: bounds and orderings that must hold for any lists and any test sets."""

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from privrec.evaluation import (
    RANKING_METRICS,
    auc,
    gini_exposure,
    item_coverage,
    mean_popularity,
    ranking_metrics,
)


@st.composite
def lists_and_tests(draw) -> tuple[np.ndarray, sp.csr_matrix]:
    """Random top-n lists (distinct items, -1 padding at the tail) and non-empty test sets."""
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 15))
    n = draw(st.integers(1, n_items))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    top = np.stack([rng.permutation(n_items)[:n] for _ in range(n_users)])
    lengths = rng.integers(0, n + 1, size=n_users)
    top[np.arange(n)[None, :] >= lengths[:, None]] = -1
    test = rng.random((n_users, n_items)) < draw(st.floats(0.05, 1.0))
    test[np.arange(n_users), rng.integers(0, n_items, size=n_users)] = True  # at least one relevant item
    return top, sp.csr_matrix(test, dtype=np.float32)


@settings(max_examples=150, deadline=None)
@given(lists_and_tests())
def test_ranking_metrics_bounds_and_orderings(case) -> None:
    top, test = case
    n = top.shape[1]
    cutoffs = list(range(1, n + 1))
    m = ranking_metrics(top, test, cutoffs=cutoffs)
    n_rel = np.diff(test.indptr)
    for values in m.values():
        assert np.all((values >= 0) & (values <= 1 + 1e-12))
    for k in cutoffs:
        p, r, hit = m[f"precision_at_{k}"], m[f"recall_at_{k}"], m[f"hit_rate_at_{k}"]
        assert np.all(hit >= p)
        assert np.all(hit >= m[f"mrr_at_{k}"])
        np.testing.assert_allclose(p * k, r * n_rel)  # both count the same hits
        assert np.all((m[f"ndcg_at_{k}"] > 0) == (hit > 0))
        assert np.all((m[f"map_at_{k}"] > 0) == (hit > 0))
        if k > 1:  # more room can only add hits
            for name in ("recall", "hit_rate", "mrr"):
                assert np.all(m[f"{name}_at_{k}"] >= m[f"{name}_at_{k - 1}"] - 1e-12), name


@settings(max_examples=100, deadline=None)
@given(lists_and_tests(), st.integers(0, 2**32 - 1))
def test_auc_bounds_symmetry_and_invariance(case, seed) -> None:
    _, test = case
    rng = np.random.default_rng(seed)
    scores = rng.integers(-3, 4, size=test.shape).astype(np.float64)
    exclude = sp.csr_matrix(rng.random(test.shape) < 0.3, dtype=np.float32)
    a = auc(scores, test, exclude)
    defined = ~np.isnan(a)
    assert np.all((a[defined] >= 0) & (a[defined] <= 1))
    # reversing the scores swaps wins and losses, ties stay: AUC(-s) = 1 - AUC(s)
    np.testing.assert_allclose(auc(-scores, test, exclude), 1 - a, equal_nan=True)
    # any strictly increasing transform leaves AUC unchanged
    np.testing.assert_allclose(auc(np.exp(scores) * 3 + 1, test, exclude), a, equal_nan=True)


@settings(max_examples=100, deadline=None)
@given(lists_and_tests())
def test_beyond_accuracy_bounds(case) -> None:
    top, test = case
    n_items = test.shape[1]
    for k in range(1, top.shape[1] + 1):
        cov = item_coverage(top, n_items, k=k)
        assert 0 <= cov <= 1
        g = gini_exposure(top, n_items, k=k)
        assert np.isnan(g) == bool((top[:, :k] < 0).all())
        assert np.isnan(g) or 0 <= g <= (n_items - 1) / n_items + 1e-12
        pop = mean_popularity(top, np.linspace(0, 1, n_items), k=k)
        assert np.all(np.isnan(pop) | ((pop >= 0) & (pop <= 1)))
        if k > 1:
            assert cov >= item_coverage(top, n_items, k=k - 1)


def test_metric_names_are_known() -> None:
    assert RANKING_METRICS == ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
