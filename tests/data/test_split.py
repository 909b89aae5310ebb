"""Splitters: RandomHoldout, TemporalHoldout, GlobalTemporal and the Split container."""

from __future__ import annotations

import numpy as np
import pytest
from datahelpers import make_dataset, rows_of
from hypothesis import given, settings
from hypothesis import strategies as st

from privrec.data import GlobalTemporal, RandomHoldout, Split, TemporalHoldout
from privrec.errors import ConfigError, DataValidationError


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def history(counts: list[int], *, ties: bool = False):
    """User u has counts[u] interactions with items 0..n-1 at times 1000*u + t (t = item, or 0 with ties)."""
    rows = [(u, i, 1.0 + i, 1000 * u + (0 if ties else 10 * i)) for u, n in enumerate(counts) for i in range(n)]
    return make_dataset(rows, n_users=len(counts), n_items=max(counts))


def check_partition(data, split):
    assert split.train.users == data.users and split.test.users == data.users
    assert split.train.items == data.items and split.test.items == data.items
    assert split.train.n_interactions + split.test.n_interactions == data.n_interactions
    both = np.concatenate([rows_of(split.train), rows_of(split.test)])
    np.testing.assert_array_equal(both[np.lexsort(both.T[::-1])], rows_of(data))


# ---------------------------------------------------------------------- RandomHoldout
def test_random_holdout_per_user_counts():
    data = history([1, 2, 3, 5, 10, 11])
    split = RandomHoldout(fraction=0.2).split(data, rng=rng())
    check_partition(data, split)
    # round half up, >= 1 for users with 2+, never all: 1->0, 2->1 (0.4), 3->1 (0.6), 5->1, 10->2, 11->2 (2.2)
    np.testing.assert_array_equal(split.test.user_counts, [0, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(split.test_users, [1, 2, 3, 4, 5])
    assert split.summary() == {"train_interactions": 25, "test_interactions": 7, "train_users": 6, "test_users": 5}


def test_random_holdout_seeded():
    data = history([20] * 30)
    a = RandomHoldout(fraction=0.3).split(data, rng=rng(1))
    b = RandomHoldout(fraction=0.3).split(data, rng=rng(1))
    c = RandomHoldout(fraction=0.3).split(data, rng=rng(2))
    assert a.test.checksum() == b.test.checksum() and a.train.checksum() == b.train.checksum()
    assert a.test.checksum() != c.test.checksum()


def test_random_holdout_is_uniform_over_positions():
    # 400 users x 10 items, 2 test items each: each position goes to test with p = 0.2.
    # Over 400 users, the count per item is Binomial(400, 0.2): mean 80, sd 8; allow 4.5 sd.
    data = history([10] * 400)
    split = RandomHoldout(fraction=0.2).split(data, rng=rng(3))
    assert np.all(np.abs(split.test.item_counts - 80) < 36)


def test_random_holdout_no_test_users():
    with pytest.raises(DataValidationError, match=r"^split.fraction=0.2 leaves no test users"):
        RandomHoldout(fraction=0.2).split(history([1, 1, 1]), rng=rng())


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, "a", None, True])
def test_random_holdout_bad_fraction(fraction):
    with pytest.raises(ConfigError, match=r"split\.fraction must"):
        RandomHoldout(fraction=fraction)


@st.composite
def interaction_tables(draw):
    n_users = draw(st.integers(1, 12))
    n_items = draw(st.integers(1, 8))
    rows = draw(
        st.lists(
            st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1), st.sampled_from([1.0, 2.0, 5.0])),
            min_size=1,
            max_size=60,
        )
    )
    return make_dataset(rows, n_users=n_users, n_items=n_items)


@settings(max_examples=60, deadline=None)
@given(data=interaction_tables(), fraction=st.floats(0.01, 0.99), seed=st.integers(0, 2**32 - 1))
def test_random_holdout_invariants(data, fraction, seed):
    counts = data.user_counts
    if not (counts >= 2).any():
        with pytest.raises(DataValidationError):
            RandomHoldout(fraction=fraction).split(data, rng=rng(seed))
        return
    split = RandomHoldout(fraction=fraction).split(data, rng=rng(seed))
    check_partition(data, split)
    test = split.test.user_counts
    train = split.train.user_counts
    expected = np.where(counts >= 2, np.clip(np.floor(fraction * counts + 0.5), 1, counts - 1), 0)
    np.testing.assert_array_equal(test, expected)
    assert np.all(train[counts > 0] >= 1)  # nobody loses their whole history
    again = RandomHoldout(fraction=fraction).split(data, rng=rng(seed))
    assert again.test.checksum() == split.test.checksum()


# ---------------------------------------------------------------------- TemporalHoldout
def per_user_time_order_respected(split):
    for part in (split.train, split.test):
        assert part.timestamp is not None
    train_last = np.full(split.train.n_users, np.iinfo(np.int64).min)
    np.maximum.at(train_last, split.train.user_idx, split.train.timestamp)
    assert np.all(split.test.timestamp >= train_last[split.test.user_idx])


def test_temporal_last_n():
    data = history([1, 2, 4])
    split = TemporalHoldout(last_n=2).split(data, rng=rng())
    check_partition(data, split)
    np.testing.assert_array_equal(split.test.user_counts, [0, 1, 2])  # capped at n - 1
    per_user_time_order_respected(split)
    # the latest items go to test: user 2's items 2 and 3, user 1's item 1
    pairs = zip(split.test.user_idx.tolist(), split.test.item_idx.tolist(), strict=True)
    assert sorted(pairs) == [(1, 1), (2, 2), (2, 3)]


def test_temporal_last_fraction_and_row_order_independence():
    data = history([5, 10])
    shuffled = data.subset(np.random.default_rng(0).permutation(data.n_interactions))
    a = TemporalHoldout(last_fraction=0.2).split(data, rng=rng())
    b = TemporalHoldout(last_fraction=0.2).split(shuffled, rng=rng())
    np.testing.assert_array_equal(a.test.user_counts, [1, 2])
    np.testing.assert_array_equal(rows_of(a.test), rows_of(b.test))
    per_user_time_order_respected(b)


def test_temporal_ties_are_broken_by_item_index():
    data = history([4], ties=True)  # all four at the same time
    split = TemporalHoldout(last_n=1).split(data.subset([3, 1, 0, 2]), rng=rng())
    assert split.test.item_idx.tolist() == [3]
    per_user_time_order_respected(split)


def test_temporal_needs_timestamps_and_one_parameter():
    with pytest.raises(DataValidationError, match="needs a dataset with timestamps"):
        TemporalHoldout(last_n=1).split(make_dataset([(0, 0, 1.0), (0, 1, 1.0)]), rng=rng())
    with pytest.raises(ConfigError, match="exactly one"):
        TemporalHoldout()
    with pytest.raises(ConfigError, match="exactly one"):
        TemporalHoldout(last_n=1, last_fraction=0.1)
    with pytest.raises(ConfigError, match=r"split\.last_n must be >= 1; got 0\."):
        TemporalHoldout(last_n=0)
    with pytest.raises(DataValidationError, match=r"^split.last_n=3 leaves no test users"):
        TemporalHoldout(last_n=3).split(history([1, 1]), rng=rng())


# ---------------------------------------------------------------------- GlobalTemporal
def test_global_cut_quantile():
    data = history([10, 10])  # times 0..90 and 1000..1090
    split = GlobalTemporal(cut_quantile=0.5).split(data, rng=rng())
    check_partition(data, split)
    cut = GlobalTemporal(cut_quantile=0.5).cut(data)
    assert split.train.timestamp.max() <= cut < split.test.timestamp.min()
    assert split.test.n_interactions == 10 and np.all(split.test.user_idx == 1)


def test_global_cut_timestamp_overrides_quantile():
    data = history([10, 10])
    split = GlobalTemporal(cut_timestamp=1045).split(data, rng=rng())
    assert split.test.timestamp.min() > 1045 >= split.train.timestamp.max()
    assert split.test.n_interactions == 5  # 1050 ... 1090


def test_global_errors():
    data = history([3, 3])
    with pytest.raises(DataValidationError, match=r"^split.cut_timestamp=5000 leaves no test users"):
        GlobalTemporal(cut_timestamp=5000).split(data, rng=rng())
    with pytest.raises(DataValidationError, match="leaves no training data"):
        GlobalTemporal(cut_timestamp=-1).split(data, rng=rng())
    with pytest.raises(ConfigError, match=r"split\.cut_quantile must be in"):
        GlobalTemporal(cut_quantile=1.0)
    with pytest.raises(ConfigError, match="got neither"):
        GlobalTemporal(cut_quantile=None)
    with pytest.raises(DataValidationError, match="needs a dataset with timestamps"):
        GlobalTemporal().split(make_dataset([(0, 0, 1.0)]), rng=rng())


# ---------------------------------------------------------------------- Split
def test_split_requires_shared_vocabularies():
    a = history([2, 2])
    b = history([2, 2, 2])
    with pytest.raises(DataValidationError, match="share the user and item vocabularies"):
        Split(train=a, test=b)


def test_splitters_need_a_generator():
    with pytest.raises(ConfigError, match=r"needs rng=np\.random\.Generator"):
        RandomHoldout().split(history([3]), rng=0)  # type: ignore[arg-type]
