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
        ({"weight": "log"}, r"preprocess.weight must be one of 'binary', 'rating'; got 'log'."),
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
