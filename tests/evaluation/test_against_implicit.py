"""ranking_metrics agrees with implicit.evaluation.ranking_metrics_at_k under implicit's normalisation.

implicit 0.7.3 (implicit/evaluation.pyx) scores the users with >= 1 test item, asks
``model.recommend(users, train[users], N=K)`` (filter_already_liked_items=True by default) and returns:

- ``precision = sum_u hits_u / sum_u min(K, |T_u|)``: a ratio of sums, normalised by min(K, |T|), so we compare
  ``sum_u K * precision_at_K[u] / sum_u min(K, |T_u|)``;
- ``map = mean_u AP@K`` with AP normalised by min(K, |T_u|): the same as ours;
- ``ndcg = mean_u nDCG@K`` with binary gains and IDCG over min(K, |T_u|) hits: the same as ours.

(Its ``auc`` is a different, top-K-limited quantity and is not compared.)
"""

import numpy as np
import pytest
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.evaluation import ranking_metrics_at_k
from threadpoolctl import threadpool_limits

from privrec.evaluation import ranking_metrics


@pytest.fixture(scope="module")
def fitted() -> tuple[AlternatingLeastSquares, sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng(0)
    n_users, n_items = 80, 40
    full = rng.random((n_users, n_items)) < 0.25
    in_test = full & (rng.random((n_users, n_items)) < 0.3)
    train = sp.csr_matrix(full & ~in_test, dtype=np.float32)
    test = sp.csr_matrix(in_test, dtype=np.float32)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=4, iterations=3, random_state=0, num_threads=1)
        model.fit(train, show_progress=False)
    return model, train, test


@pytest.mark.parametrize("k", [1, 5, 10])
def test_matches_implicit_ranking_metrics_at_k(fitted, k: int) -> None:
    model, train, test = fitted
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    assert 0 < users.size < test.shape[0]  # some users without test items, skipped by both
    ids, _ = model.recommend(users, train[users], N=k, filter_already_liked_items=True)
    assert ids.shape == (users.size, k) and (ids >= 0).all()

    with threadpool_limits(1, "blas"):
        reference = ranking_metrics_at_k(model, train, test, K=k, show_progress=False)
    ours = ranking_metrics(ids, test[users], cutoffs=[k])

    assert reference["ndcg"] > 0 and reference["map"] > 0  # a non-trivial comparison
    assert ours[f"ndcg_at_{k}"].mean() == pytest.approx(reference["ndcg"], rel=1e-9)
    assert ours[f"map_at_{k}"].mean() == pytest.approx(reference["map"], rel=1e-9)

    n_test = np.diff(test[users].indptr)
    hits = ours[f"precision_at_{k}"] * k
    implicit_precision = hits.sum() / np.minimum(k, n_test).sum()
    assert implicit_precision == pytest.approx(reference["precision"], rel=1e-9)
    # ... and the standard P@K differs from implicit's whenever some user has fewer than K test items
    if (n_test < k).any():
        assert ours[f"precision_at_{k}"].mean() < reference["precision"]
