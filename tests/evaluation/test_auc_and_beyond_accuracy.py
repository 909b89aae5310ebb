"""auc, item_coverage, mean_popularity and gini_exposure on hand-computed cases and references."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from privrec.errors import ConfigError, DataValidationError
from privrec.evaluation import auc, gini_exposure, item_coverage, mean_popularity


def csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    r = [i for i, items in enumerate(rows) for _ in items]
    c = [j for items in rows for j in items]
    return sp.csr_matrix((np.ones(len(c), np.float32), (r, c)), shape=(len(rows), n_items))


def brute_force_auc(scores: np.ndarray, test: sp.csr_matrix, exclude: sp.csr_matrix | None) -> np.ndarray:
    """Every (relevant, irrelevant) pair, one at a time: 1 if relevant scores higher, 1/2 on a tie."""
    out = []
    for u in range(scores.shape[0]):
        excluded = set() if exclude is None else set(exclude[u].indices)
        pos = [i for i in test[u].indices if i not in excluded]
        neg = [i for i in range(scores.shape[1]) if i not in excluded and i not in set(test[u].indices)]
        if not pos or not neg:
            out.append(np.nan)
            continue
        wins = sum(1.0 if scores[u, p] > scores[u, q] else 0.5 if scores[u, p] == scores[u, q] else 0.0
                   for p, q in itertools.product(pos, neg))
        out.append(wins / (len(pos) * len(neg)))
    return np.array(out)


# ---------------------------------------------------------------------------------------------- AUC
def test_auc_hand_computed() -> None:
    scores = np.array(
        [
            [0.9, 0.1, 0.5, 0.5, 0.3],
            [4.0, 3.0, 2.0, 1.0, 0.0],
        ]
    )
    test = csr([[2], [0, 3]], 5)
    exclude = csr([[0], [4]], 5)
    got = auc(scores, test, exclude)
    # user 0: item 0 excluded; positive 2 (0.5) vs negatives 1 (0.1) win, 3 (0.5) tie, 4 (0.3) win
    #         -> (1 + 0.5 + 1) / 3 = 0.833333
    # user 1: item 4 excluded; positives 0 (4.0), 3 (1.0) vs negatives 1 (3.0), 2 (2.0):
    #         0>1, 0>2 win, 3<1, 3<2 lose -> 2 / 4 = 0.5
    np.testing.assert_allclose(got, [2.5 / 3, 0.5])
    # without exclusion user 0 also meets item 0 (0.9) and loses: 2.5 / 4 = 0.625
    # user 1 also meets item 4 (0.0): 0>4 win, 3>4 win -> (2 + 2) / 6 = 0.666667
    np.testing.assert_allclose(auc(scores, test), [2.5 / 4, 4 / 6])


def test_auc_signed_zeros_tie_and_integer_scores() -> None:
    # positive 0 (0.0) vs negatives 1 (-0.0, a tie: 0.5) and 2 (1.0, a loss: 0) -> 0.5 / 2 = 0.25
    assert auc(np.array([[0.0, -0.0, 1.0]]), csr([[0]], 3))[0] == pytest.approx(0.25)
    # integer scores: positive 1 (5) beats 0 (3), ties 2 (5) -> 1.5 / 2 = 0.75
    assert auc(np.array([[3, 5, 5]]), csr([[1]], 3))[0] == pytest.approx(0.75)


def test_auc_nan_without_negatives_or_positives() -> None:
    scores = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    test = csr([[0, 1], [2]], 3)
    exclude = csr([[2], [2]], 3)
    got = auc(scores, test, exclude)
    # user 0: candidates {0, 1} are all relevant -> no negative -> NaN
    # user 1: its only test item is excluded -> no positive -> NaN
    assert np.isnan(got).all()


def test_auc_matches_brute_force_with_ties_and_infinities() -> None:
    rng = np.random.default_rng(0)
    u, n = 30, 12
    scores = rng.integers(0, 4, size=(u, n)).astype(np.float32)  # many ties
    scores[rng.random((u, n)) < 0.1] = -np.inf
    test = sp.csr_matrix(rng.random((u, n)) < 0.3, dtype=np.float32)
    exclude = sp.csr_matrix(rng.random((u, n)) < 0.3, dtype=np.float32)
    np.testing.assert_allclose(auc(scores, test, exclude), brute_force_auc(scores, test, exclude), equal_nan=True)
    np.testing.assert_allclose(auc(scores, test), brute_force_auc(scores, test, None), equal_nan=True)


def test_auc_rejects_nan_scores_and_bad_shapes() -> None:
    with pytest.raises(DataValidationError, match="got 1 NaN"):
        auc(np.array([[np.nan, 1.0]]), csr([[0]], 2))
    with pytest.raises(DataValidationError, match="must have shape"):
        auc(np.zeros((1, 3)), csr([[0]], 2))


def test_auc_does_not_mutate_scores() -> None:
    scores = np.array([[0.3, 0.2, 0.1]])
    auc(scores, csr([[0]], 3), csr([[1]], 3))
    np.testing.assert_array_equal(scores, [[0.3, 0.2, 0.1]])


# ---------------------------------------------------------------------------------------------- coverage
def test_item_coverage() -> None:
    top = np.array([[0, 1, -1], [1, 2, 3]])
    assert item_coverage(top, 10, k=2) == pytest.approx(0.3)  # {0, 1, 2} of 10
    assert item_coverage(top, 10, k=3) == pytest.approx(0.4)  # {0, 1, 2, 3} of 10; padding ignored
    assert item_coverage(np.empty((0, 3), int), 10, k=3) == 0.0
    with pytest.raises(ConfigError):
        item_coverage(top, 10, k=4)


# ---------------------------------------------------------------------------------------------- popularity
def test_mean_popularity() -> None:
    pop = np.array([0.5, 0.1, 0.2, 0.9])
    top = np.array([[0, 1, -1], [3, 2, 1], [-1, -1, -1]])
    got = mean_popularity(top, pop, k=3)
    # (0.5 + 0.1) / 2 = 0.3 (padding ignored); (0.9 + 0.2 + 0.1) / 3 = 0.4; nothing shown -> NaN
    np.testing.assert_allclose(got, [0.3, 0.4, np.nan])
    # top 1: 0.5, 0.9, NaN
    np.testing.assert_allclose(mean_popularity(top, pop, k=1), [0.5, 0.9, np.nan])


# ---------------------------------------------------------------------------------------------- Gini
def test_gini_equal_exposure_is_zero() -> None:
    # every one of 4 items shown exactly once
    assert gini_exposure(np.array([[0, 1], [2, 3]]), 4, k=2) == pytest.approx(0.0)
    # every item shown twice
    assert gini_exposure(np.array([[0, 1], [1, 0]]), 2, k=2) == pytest.approx(0.0)


def test_gini_all_exposure_on_one_item() -> None:
    # counts (0, 0, 3, 0, 0): sorted x = (0, 0, 0, 0, 3); sum (2i - n - 1) x_i = (2*5 - 6) * 3 = 12
    # G = 12 / (5 * 3) = 0.8 = (n - 1) / n
    assert gini_exposure(np.array([[2], [2], [2]]), 5, k=1) == pytest.approx(4 / 5)


def test_gini_hand_computed() -> None:
    # counts: item 0 -> 1, item 1 -> 3, item 2 -> 0; sorted (0, 1, 3), n = 3, total 4
    # sum (2i - 4) x_i = -2*0 + 0*1 + 2*3 = 6 -> G = 6 / (3 * 4) = 0.5
    # check: mean absolute difference form, sum_ij |x_i - x_j| = 2 * (1 + 3 + 2) = 12 -> 12 / (2 * 3 * 4) = 0.5
    top = np.array([[0, 1], [1, -1], [1, -1]])
    assert gini_exposure(top, 3, k=2) == pytest.approx(0.5)
    # k = 1 counts only the first column: item 0 -> 1, item 1 -> 2, item 2 -> 0; sorted (0, 1, 2), total 3
    # sum (2i - 4) x_i = 0 + 0 + 2*2 = 4 -> G = 4 / 9
    assert gini_exposure(top, 3, k=1) == pytest.approx(4 / 9)


def test_gini_without_exposure_is_nan() -> None:
    assert np.isnan(gini_exposure(np.full((2, 3), -1), 5, k=3))


def test_auc_row_chunks_do_not_change_results(monkeypatch) -> None:
    from privrec.evaluation import metrics

    rng = np.random.default_rng(3)
    scores = rng.normal(size=(9, 7))
    test = sp.csr_matrix(rng.random((9, 7)) < 0.4, dtype=np.float32)
    exclude = sp.csr_matrix(rng.random((9, 7)) < 0.3, dtype=np.float32)
    whole = auc(scores, test, exclude)
    monkeypatch.setattr(metrics, "_AUC_BLOCK", 10)  # 1 row of 7 items per block
    np.testing.assert_array_equal(auc(scores, test, exclude), whole)
