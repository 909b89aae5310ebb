"""Preprocess: duplicates, rating threshold, implicit weights, iterative k-core, compaction."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from datahelpers import make_dataset, rows_of

from privrec.data import Preprocess
from privrec.errors import ConfigError, DataValidationError

# user, item, rating, timestamp; (0, 0) appears three times, (1, 2) twice.
DUPES = [
    (0, 0, 3.0, 10),
    (1, 2, 5.0, 11),
    (0, 0, 5.0, 5),
    (0, 1, 4.0, 12),
    (0, 0, 2.0, 30),
    (1, 2, 5.0, 20),
]


def frame(data):
    return [tuple(r) for r in rows_of(data).tolist()]


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("max", {(0, 0): (5.0, 5), (1, 2): (5.0, 20), (0, 1): (4.0, 12)}),  # ties in weight: latest row wins
        ("last", {(0, 0): (2.0, 30), (1, 2): (5.0, 20), (0, 1): (4.0, 12)}),
        ("sum", {(0, 0): (10.0, 30), (1, 2): (10.0, 20), (0, 1): (4.0, 12)}),
    ],
)
def test_duplicates(how, expected):
    out, stats = Preprocess(weight="rating", duplicates=how).apply(make_dataset(DUPES))
    got = {(out.users.id_of(int(u)) - 100, out.items.id_of(int(i)) - 100): (w, t) for u, i, w, t in frame(out)}
    assert got == {k: (v[0], v[1]) for k, v in expected.items()}
    assert stats["duplicates_merged"] == 3
    assert stats["interactions_before"] == 6 and stats["interactions_after_duplicates"] == 3


def test_duplicates_keep_row_order():
    out, _ = Preprocess(weight="rating", duplicates="last").apply(make_dataset(DUPES))
    # survivors: (1,2)@20 is row 5, (0,1) row 3, (0,0)@30 row 4 -> original order 3, 4, 5
    np.testing.assert_array_equal(out.timestamp, [12, 30, 20])


def test_last_without_timestamps_uses_row_order():
    data = make_dataset([(0, 0, 1.0), (0, 0, 4.0), (0, 0, 2.0)])
    out, _ = Preprocess(weight="rating", duplicates="last").apply(data)
    np.testing.assert_array_equal(out.weight, [2.0])
    assert out.timestamp is None


def test_threshold_and_weights():
    data = make_dataset([(0, 0, 1.0), (0, 1, 4.0), (1, 0, 5.0), (1, 1, 3.0)])
    binary, stats = Preprocess(min_rating=4).apply(data)
    assert frame(binary) == [(0, 1, 1.0), (1, 0, 1.0)]  # user 0 keeps item 1, user 1 keeps item 0
    assert stats["interactions_after_min_rating"] == 2
    rating, _ = Preprocess(min_rating=4, weight="rating").apply(data)
    np.testing.assert_array_equal(np.sort(rating.weight), [4.0, 5.0])


def test_kcore_fixed_point_on_a_cascade():
    # A full 3x3 block (users 0-2, items 0-2) is the (2, 2)-core. Pass 1 removes users 3, 4 and 6 (one
    # item each); that leaves items 3 and 4 with a single rater (user 5), removed in pass 2, which empties
    # user 5; pass 3 finds nothing left to remove (the fixed point).
    block = [(u, i, 1.0) for u in range(3) for i in range(3)]
    fringe = [(3, 0, 1.0), (4, 3, 1.0), (5, 3, 1.0), (5, 4, 1.0), (6, 4, 1.0)]
    data = make_dataset(block + fringe, attributes={"g": list("abcdefg")})
    out, stats = Preprocess(user_core=2, item_core=2).apply(data)
    assert out.users.ids.tolist() == [100, 101, 102] and out.items.ids.tolist() == [100, 101, 102]
    assert out.n_interactions == 9
    assert out.user_attributes["g"].tolist() == ["a", "b", "c"]  # aligned after compaction
    assert stats["kcore_iterations"] == 3
    assert stats["users_after_kcore"] == 3 and stats["items_after_kcore"] == 3
    assert stats["users_dropped"] == 4 and stats["items_dropped"] == 2
    # the fixed point: every user and item meets its bound
    assert out.user_counts.min() >= 2 and out.item_counts.min() >= 2


def test_compaction_drops_empty_rows_and_keeps_order():
    data = make_dataset([(2, 3, 1.0), (0, 1, 1.0)], n_users=4, n_items=5, attributes={"g": list("wxyz")})
    out, stats = Preprocess().apply(data)
    assert out.users.ids.tolist() == [100, 102] and out.items.ids.tolist() == [101, 103]
    assert out.user_attributes["g"].tolist() == ["w", "y"]
    np.testing.assert_array_equal(out.user_idx, [1, 0])
    np.testing.assert_array_equal(out.item_idx, [1, 0])
    assert stats["users_before"] == 2 and stats["users_dropped"] == 2


def test_input_is_not_mutated():
    data = make_dataset(DUPES)
    before = data.checksum()
    Preprocess(min_rating=3, user_core=1, duplicates="sum").apply(data)
    assert data.checksum() == before


def test_everything_removed_errors_name_the_parameter():
    data = make_dataset([(0, 0, 1.0), (1, 1, 2.0)])
    with pytest.raises(DataValidationError, match=r"^preprocess.user_core=500 removes every interaction; lower it.$"):
        Preprocess(user_core=500).apply(data)
    with pytest.raises(DataValidationError, match=r"^preprocess.min_rating=6 removes every interaction; lower it.$"):
        Preprocess(min_rating=6).apply(data)
    with pytest.raises(DataValidationError, match=r"user_core=2 and item_core=2 remove every interaction; lower them"):
        Preprocess(user_core=2, item_core=2).apply(data)


def test_stats_are_aggregate_counts():
    out, stats = Preprocess(min_rating=2, user_core=1).apply(make_dataset(DUPES))
    assert all(isinstance(v, (int, float)) for v in stats.values())
    assert stats["interactions_after_kcore"] == out.n_interactions


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"weight": "sqrt"}, r"preprocess.weight must be one of 'binary', 'rating', 'log', 'bm25', 'tfidf'; got"),
        ({"bm25_k1": -1}, r"preprocess.bm25_k1 must be in \[0, inf\); got -1."),
        ({"bm25_b": 1.5}, r"preprocess.bm25_b must be in \[0, 1\]; got 1.5."),
        ({"duplicates": "first"}, r"preprocess.duplicates must be one of"),
        ({"user_core": -1}, r"preprocess.user_core must be >= 0; got -1."),
        ({"item_core": 1.5}, r"preprocess.item_core must be an integer >= 0; got 1.5."),
        ({"min_rating": "high"}, r"preprocess.min_rating must be a finite number"),
    ],
)
def test_config_errors(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        Preprocess(**kwargs)


def test_picklable_and_frozen():
    p = Preprocess(min_rating=3.5, user_core=5)
    assert pickle.loads(pickle.dumps(p)) == p
    with pytest.raises(AttributeError):
        p.user_core = 1  # type: ignore[misc]


# ---------------------------------------------------------------------- confidence weighting
# 4 users x 5 items of play counts (user, item, count); item 4 is played by nobody.
PLAYS = [(0, 0, 1.0), (0, 1, 3.0), (1, 0, 10.0), (1, 2, 1.0), (1, 3, 2.0), (2, 1, 1.0), (3, 0, 4.0), (3, 1, 1.0),
         (3, 2, 1.0), (3, 3, 5.0)]


def _weights_by_cell(data):
    return {(int(u), int(i)): float(w) for u, i, w in zip(data.user_idx, data.item_idx, data.weight, strict=True)}


def test_log_weight_is_log1p_of_the_count():
    out, _ = Preprocess(weight="log").apply(make_dataset([(0, 0, 1.0), (0, 1, 9.0), (1, 0, 0.0)]))
    assert _weights_by_cell(out) == pytest.approx({(0, 0): 0.6931472, (0, 1): 2.3025851, (1, 0): 0.0})
    with pytest.raises(DataValidationError, match=r"^preprocess.weight=log needs ratings >= 0; got 1 negative"):
        Preprocess(weight="log").apply(make_dataset([(0, 0, -1.0), (0, 1, 2.0)]))


def test_bm25_and_tfidf_keep_the_counts_until_the_model_input():
    data = make_dataset(PLAYS, n_items=5)
    for weight in ("rating", "bm25", "tfidf"):
        out, _ = Preprocess(weight=weight).apply(data)
        assert _weights_by_cell(out) == {(u, i): w for u, i, w in PLAYS}
    binary = Preprocess(weight="binary")
    assert binary.model_input(data) is data  # per-interaction weights are final after apply


def test_bm25_by_hand_on_a_single_cell():
    # K1=1, B=0: w = x (K1 + 1) / (K1 + x) * idf_u. User 0 (items 0 and 1 of 5): idf = log(5) - log1p(2) = log(5/3).
    # Cell (0, 0), x = 1: 1 * 2 / 2 * log(5/3) = 0.5108256; cell (0, 1), x = 3: 3 * 2 / 4 * log(5/3) = 0.7662384.
    out = Preprocess(weight="bm25", bm25_k1=1, bm25_b=0).model_input(make_dataset(PLAYS, n_items=5))
    got = _weights_by_cell(out)
    assert got[(0, 0)] == pytest.approx(0.5108256, rel=1e-6)
    assert got[(0, 1)] == pytest.approx(0.7662384, rel=1e-6)
    # user 2 has one item: idf = log(5) - log(2) = log(2.5) = 0.9162907; x = 1 -> the idf itself
    assert got[(2, 1)] == pytest.approx(0.9162907, rel=1e-6)


def test_bm25_matches_the_formula_and_implicit():
    data = make_dataset(PLAYS, n_items=5)
    k1, b = 100.0, 0.8
    out = Preprocess(weight="bm25").model_input(data)  # implicit's defaults K1=100, B=0.8
    # the formula, written out: a document is an item, a term a user (implicit's orientation, items x users)
    n_items = 5
    items_of_user = {u: sum(1 for uu, _, _ in PLAYS if uu == u) for u in range(4)}
    item_total = [sum(w for _, i, w in PLAYS if i == item) for item in range(n_items)]
    mean_total = sum(item_total) / n_items  # over every item, the unplayed one too
    expected = {}
    for u, i, x in PLAYS:
        idf = np.log(n_items) - np.log1p(items_of_user[u])
        norm = (1 - b) + b * item_total[i] / mean_total
        expected[(u, i)] = x * (k1 + 1) / (k1 * norm + x) * idf
    assert _weights_by_cell(out) == pytest.approx(expected, rel=1e-5)
    # and exactly what implicit's own function gives (applied as implicit's examples do, to items x users)
    from implicit.nearest_neighbours import bm25_weight

    direct = bm25_weight(data.to_csr().T.tocsr(), K1=k1, B=b).T.tocsr()
    assert _weights_by_cell(out) == pytest.approx({(u, i): direct[u, i] for u, i, _ in PLAYS}, rel=1e-6)
    # everything but the weights is kept
    np.testing.assert_array_equal(out.user_idx, data.user_idx)
    np.testing.assert_array_equal(out.item_idx, data.item_idx)
    assert out.users is data.users and out.items is data.items and out.n_users == 4 and out.n_items == 5


def test_tfidf_matches_the_formula_and_implicit():
    data = make_dataset(PLAYS, n_items=5)
    out = Preprocess(weight="tfidf").model_input(data)
    items_of_user = {u: sum(1 for uu, _, _ in PLAYS if uu == u) for u in range(4)}
    expected = {(u, i): np.sqrt(x) * (np.log(5) - np.log1p(items_of_user[u])) for u, i, x in PLAYS}
    assert _weights_by_cell(out) == pytest.approx(expected, rel=1e-6)
    from implicit.nearest_neighbours import tfidf_weight

    direct = tfidf_weight(data.to_csr().T.tocsr()).T.tocsr()
    assert _weights_by_cell(out) == pytest.approx({(u, i): direct[u, i] for u, i, _ in PLAYS}, rel=1e-6)


def test_model_input_splits_a_repeated_pair_so_the_model_sums_to_the_cell():
    rows = [*PLAYS, (0, 0, 2.0)]  # (0, 0) twice: the cell holds 1 + 2 = 3
    data = make_dataset(rows, n_items=5)
    out = Preprocess(weight="tfidf").model_input(data)
    assert out.weight[0] == pytest.approx(out.weight[-1])
    cell = np.sqrt(3.0) * (np.log(5) - np.log1p(2))
    assert out.to_csr()[0, 0] == pytest.approx(cell, rel=1e-6)


def test_model_input_uses_only_the_data_it_is_given():
    """Computed on the training data: removing another user's rows changes the weights (BM25 normalises by
    each item's total), which is why a run weighs the *treated* training split, not everything."""
    data = make_dataset(PLAYS, n_items=5)
    pre = Preprocess(weight="bm25")
    without_3 = data.subset(data.user_idx != 3)
    full, part = _weights_by_cell(pre.model_input(data)), _weights_by_cell(pre.model_input(without_3))
    assert set(part) == {c for c in full if c[0] != 3}
    assert part[(0, 0)] != pytest.approx(full[(0, 0)])


def test_digest_changes_with_the_weighting():
    data = make_dataset(PLAYS, n_items=5)
    digests = {}
    for kwargs in ({"weight": "binary"}, {"weight": "rating"}, {"weight": "log"}, {"weight": "bm25"},
                   {"weight": "bm25", "bm25_k1": 1.2}, {"weight": "bm25", "bm25_b": 0.75}, {"weight": "tfidf"}):
        pre = Preprocess(**kwargs)
        out, _ = pre.apply(data)
        digests[repr(kwargs)] = pre.digest(out)
    assert len(set(digests.values())) == len(digests)
    rating = Preprocess(weight="rating")
    assert rating.digest(rating.apply(data)[0]) == rating.apply(data)[0].checksum()  # unchanged for per-row weights
