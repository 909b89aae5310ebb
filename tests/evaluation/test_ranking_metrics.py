"""ranking_metrics on small cases computed by hand (arithmetic in the comments)."""

import numpy as np
import pytest
import scipy.sparse as sp

from privrec.errors import ConfigError, DataValidationError
from privrec.evaluation import RANKING_METRICS, ranking_metrics

N_ITEMS = 10


def csr(rows: list[list[int]], n_items: int = N_ITEMS) -> sp.csr_matrix:
    """Binary CSR with the given item indices per row."""
    r = [i for i, items in enumerate(rows) for _ in items]
    c = [j for items in rows for j in items]
    return sp.csr_matrix((np.ones(len(c), np.float32), (r, c)), shape=(len(rows), n_items))


# A: hits at ranks 2 and 4, |T| = 3        B: one hit at rank 1, rest padding, |T| = 1
# C: no hit, |T| = 1                       D: hits at ranks 3, 4, 5, |T| = 6 > K
TOP = np.array(
    [
        [3, 1, 7, 2, 5],
        [4, -1, -1, -1, -1],
        [0, 6, 8, 9, 2],
        [8, 9, 0, 1, 2],
    ]
)
TEST = csr([[1, 2, 9], [4], [5], [0, 1, 2, 3, 4, 5]])

# 1/log2(3) = 0.630930, 1/log2(4) = 0.5, 1/log2(5) = 0.430677, 1/log2(6) = 0.386853
# IDCG@3 (3 ideal hits) = 1 + 0.630930 + 0.5 = 2.130930
# IDCG@5 (5 ideal hits) = 2.130930 + 0.430677 + 0.386853 = 2.948459
EXPECTED = {
    # precision@K = hits / K
    "precision_at_3": [1 / 3, 1 / 3, 0.0, 1 / 3],  # A 1 hit, B 1, C 0, D 1 (rank 3)
    "precision_at_5": [2 / 5, 1 / 5, 0.0, 3 / 5],  # padding counts as a miss for B
    # recall@K = hits / |T|
    "recall_at_3": [1 / 3, 1.0, 0.0, 1 / 6],
    "recall_at_5": [2 / 3, 1.0, 0.0, 3 / 6],
    # nDCG@K = DCG / IDCG over min(K, |T|) hits
    "ndcg_at_3": [
        0.296082,  # A: 0.630930 / 2.130930 (|T| = 3 -> 3 ideal hits)
        1.0,  # B: 1 / 1 (one ideal hit)
        0.0,
        0.234639,  # D: 0.5 / 2.130930
    ],
    "ndcg_at_5": [
        0.498189,  # A: (0.630930 + 0.430677) / 2.130930 (min(5, 3) = 3 ideal hits)
        1.0,
        0.0,
        0.446854,  # D: (0.5 + 0.430677 + 0.386853) / 2.948459 (min(5, 6) = 5 ideal hits)
    ],
    # AP@K = sum P(k) rel_k / min(K, |T|)
    "map_at_3": [
        (1 / 2) / 3,  # A: P(2) = 1/2, min(3, 3) = 3 -> 0.166667
        1.0,  # B: P(1) = 1, min(3, 1) = 1
        0.0,
        (1 / 3) / 3,  # D: P(3) = 1/3, min(3, 6) = 3 -> 0.111111
    ],
    "map_at_5": [
        (1 / 2 + 2 / 4) / 3,  # A: P(2) = 1/2, P(4) = 2/4 -> 1/3
        1.0,
        0.0,
        (1 / 3 + 2 / 4 + 3 / 5) / 5,  # D: P(3), P(4), P(5), min(5, 6) = 5 -> 0.286667
    ],
    # RR@K = 1 / rank of first hit within K
    "mrr_at_3": [1 / 2, 1.0, 0.0, 1 / 3],
    "mrr_at_5": [1 / 2, 1.0, 0.0, 1 / 3],
    "hit_rate_at_3": [1.0, 1.0, 0.0, 1.0],
    "hit_rate_at_5": [1.0, 1.0, 0.0, 1.0],
}


def test_hand_computed_values() -> None:
    got = ranking_metrics(TOP, TEST, cutoffs=(3, 5))
    assert set(got) == set(EXPECTED)
    for name, expected in EXPECTED.items():
        np.testing.assert_allclose(got[name], expected, atol=1e-6, err_msg=name)
        assert got[name].dtype == np.float64


def test_keys_are_metric_major_then_k_ascending() -> None:
    got = ranking_metrics(TOP, TEST, cutoffs=[5, 3, 5])
    assert list(got) == [f"{m}_at_{k}" for m in RANKING_METRICS for k in (3, 5)]


def test_perfect_ranking_scores_one() -> None:
    # every relevant item first: P@2 = 2/2, R@2 = 2/2, nDCG = AP = RR = hit = 1
    got = ranking_metrics(np.array([[5, 2, 0]]), csr([[2, 5]]), cutoffs=[2])
    for name, value in got.items():
        assert value[0] == pytest.approx(1.0), name


def test_relevance_is_binary_and_ignores_stored_zeros() -> None:
    # weights 5.0 and an explicit 0.0 at item 3: item 3 is not relevant, item 1 counts once
    test = sp.csr_matrix((np.array([5.0, 0.0]), ([0, 0], [1, 3])), shape=(1, N_ITEMS))
    got = ranking_metrics(np.array([[3, 1]]), test, cutoffs=[2])
    assert got["precision_at_2"][0] == pytest.approx(0.5)  # 1 hit / 2
    assert got["recall_at_2"][0] == pytest.approx(1.0)  # 1 hit / |T| = 1
    assert got["mrr_at_2"][0] == pytest.approx(0.5)  # first hit at rank 2


def test_accepts_sparse_arrays_and_other_formats() -> None:
    expected = ranking_metrics(TOP, TEST, cutoffs=[5])
    for test in (sp.csr_array(TEST), TEST.tocoo(), TEST.tocsc()):
        got = ranking_metrics(TOP, test, cutoffs=[5])
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name])


def test_does_not_mutate_inputs() -> None:
    top, test = TOP.copy(), TEST.copy()
    ranking_metrics(top, test, cutoffs=[3])
    np.testing.assert_array_equal(top, TOP)
    assert (test != TEST).nnz == 0


def test_user_without_test_items_raises_value_error() -> None:
    with pytest.raises(ValueError, match="got 1 empty rows") as info:
        ranking_metrics(TOP[:2], csr([[1], []]), cutoffs=[3])
    assert isinstance(info.value, DataValidationError)


@pytest.mark.parametrize("cutoffs", [[0], [6], [], [2.5], [True]])
def test_bad_cutoffs_raise(cutoffs: list) -> None:
    with pytest.raises(ConfigError, match=r"must be an integer in \[1, 5\]|at least one"):
        ranking_metrics(TOP, TEST, cutoffs=cutoffs)


def test_bad_top_items_raise() -> None:
    with pytest.raises(DataValidationError, match="repeat an item"):
        ranking_metrics(np.array([[1, 1, 2]]), csr([[1]]), cutoffs=[3])
    with pytest.raises(DataValidationError, match="item indices in"):
        ranking_metrics(np.array([[1, N_ITEMS]]), csr([[1]]), cutoffs=[2])
    with pytest.raises(DataValidationError, match="one row per test row"):
        ranking_metrics(TOP, TEST[:2], cutoffs=[2])
    with pytest.raises(DataValidationError, match="integer item indices"):
        ranking_metrics(TOP.astype(float), TEST, cutoffs=[2])


def test_repeated_padding_is_not_a_duplicate() -> None:
    got = ranking_metrics(np.array([[-1, -1, 4]]), csr([[4]]), cutoffs=[3])
    # a hit at rank 3 after two padding slots: RR = 1/3, nDCG = (1/log2(4)) / 1 = 0.5
    assert got["mrr_at_3"][0] == pytest.approx(1 / 3)
    assert got["ndcg_at_3"][0] == pytest.approx(0.5)
