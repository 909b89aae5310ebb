from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privrec.data.dataset import Dataset, Vocabulary
from privrec.errors import ConfigError
from privrec.privacy.minimization import Minimization
from privrec.testing.data import tiny_dataset
from privrec.testing.privacy import TransformConformance

DAY = 86_400


class TestMinimizationRecent(TransformConformance):
    def make_transform(self):
        return Minimization(n=3)

    def bad_configs(self):
        return [{}, {"n": 0}, {"n": -2}, {"n": 2.5}, {"n": True}, {"n": 3, "days": 7},
                {"days": 0}, {"days": -1.0}, {"days": float("nan")}, {"days": float("inf")}, {"days": "7"},
                {"n": 3, "strategy": "nope"}, {"days": 7, "strategy": "random"}]


class TestMinimizationRandom(TransformConformance):
    def make_transform(self):
        return Minimization(n=2, strategy="random")


class TestMinimizationMostPopular(TransformConformance):
    def make_transform(self):
        return Minimization(n=4, strategy="most_popular")


class TestMinimizationLeastPopular(TransformConformance):
    def make_transform(self):
        return Minimization(n=1, strategy="least_popular")


class TestMinimizationDays(TransformConformance):
    def make_transform(self):
        return Minimization(days=0.2)


def hand_dataset(timestamps=True) -> Dataset:
    """u0: 5 rows on days 0..4 (items 0..4); u1: 4 rows on days 10, 12, 15, 20; u2: none.

    Item popularity: item 0 appears 3 times, item 1 twice, the others once.
    """
    user = [0, 0, 0, 0, 0, 1, 1, 1, 1]
    item = [3, 0, 4, 1, 2, 0, 1, 5, 0]
    day = [3, 0, 4, 1, 2, 10, 20, 15, 12]
    return Dataset(
        users=Vocabulary(np.array(["a", "b", "c"], dtype=object)),
        items=Vocabulary(np.array([f"i{i}" for i in range(6)], dtype=object)),
        user_idx=user, item_idx=item, weight=np.arange(1, 10, dtype=np.float32),
        timestamp=np.array(day, dtype=np.int64) * DAY if timestamps else None,
    )


def rows(data: Dataset) -> list[tuple]:
    ts = data.timestamp if data.timestamp is not None else np.zeros(data.n_interactions, dtype=np.int64)
    return list(zip(data.user_idx.tolist(), data.item_idx.tolist(), data.weight.tolist(), ts.tolist(), strict=True))


def test_n_message_is_one_line():
    with pytest.raises(ConfigError, match=r"^minimization.n must be >= 1; got 0.$"):
        Minimization(n=0)


def test_recent_keeps_latest_n():
    data = hand_dataset()
    res = Minimization(n=2).apply(data, rng=np.random.default_rng(0))
    out = res.data
    assert sorted(out.timestamp[out.user_idx == 0] // DAY) == [3, 4]
    assert sorted(out.timestamp[out.user_idx == 1] // DAY) == [15, 20]
    m = res.report.metrics
    assert m["interactions_removed"] == 5 and m["users_affected"] == 2 and m["max_interactions_per_user"] == 2
    assert m["share_interactions_removed"] == pytest.approx(5 / 9)
    assert out.n_users == 3 and out.user_counts[2] == 0
    # subset keeps the input order and every field of the kept rows
    assert rows(out) == [r for r in rows(data) if (r[0], r[3] // DAY) in {(0, 3), (0, 4), (1, 15), (1, 20)}]


def test_days_window_relative_to_each_users_latest():
    data = hand_dataset()
    res = Minimization(days=2).apply(data, rng=np.random.default_rng(0))
    out = res.data
    assert sorted(out.timestamp[out.user_idx == 0] // DAY) == [2, 3, 4]  # latest 4: ages 0, 1, 2 days
    assert sorted(out.timestamp[out.user_idx == 1] // DAY) == [20]
    assert res.report.metrics["days_kept"] == 2.0
    assert res.report.metrics["users_affected"] == 2


def test_popularity_strategies():
    data = hand_dataset()
    most = Minimization(n=1, strategy="most_popular").apply(data, rng=np.random.default_rng(0)).data
    assert most.item_idx.tolist() == [0, 0]  # item 0 has 3 rows, both users have it
    least = Minimization(n=2, strategy="least_popular").apply(data, rng=np.random.default_rng(0)).data
    assert set(least.item_idx[least.user_idx == 1].tolist()) == {5, 1}  # counts 1 and 2 (item 0: 3)


def test_ties_are_broken_at_random():
    data = hand_dataset()
    flat = data.with_interactions(data.user_idx, data.item_idx, data.weight, np.zeros(9, dtype=np.int64))
    chosen = Counter()
    for seed in range(60):
        out = Minimization(n=1).apply(flat, rng=np.random.default_rng(seed)).data
        chosen[int(out.item_idx[out.user_idx == 0][0])] += 1
    assert set(chosen) == {0, 1, 2, 3, 4}


def test_needs_timestamps():
    with pytest.raises(ConfigError, match="needs interaction timestamps"):
        Minimization(n=2).apply(hand_dataset(timestamps=False), rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match="needs interaction timestamps"):
        Minimization(days=3).apply(hand_dataset(timestamps=False), rng=np.random.default_rng(0))
    out = Minimization(n=2, strategy="random").apply(hand_dataset(timestamps=False), rng=np.random.default_rng(0))
    assert out.data.n_interactions == 4


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), seed=st.integers(0, 10_000),
       strategy=st.sampled_from(["recent", "random", "most_popular", "least_popular"]))
def test_property_at_most_n_and_subset(n, seed, strategy):
    data = tiny_dataset(n_users=15, n_items=12, density=0.4, seed=seed % 11)
    res = Minimization(n=n, strategy=strategy).apply(data, rng=np.random.default_rng(seed))
    out = res.data
    assert out.user_counts.max() <= n
    np.testing.assert_array_equal(out.user_counts, np.minimum(data.user_counts, n))
    assert not Counter(rows(out)) - Counter(rows(data))  # output is a sub-multiset of the input
    assert res.report.metrics["max_interactions_per_user"] <= n


@settings(max_examples=30, deadline=None)
@given(days=st.floats(0.01, 3), seed=st.integers(0, 100))
def test_property_days_window_exact(days, seed):
    data = tiny_dataset(n_users=12, n_items=15, seed=seed)
    out = Minimization(days=days).apply(data, rng=np.random.default_rng(seed)).data
    latest = np.zeros(data.n_users, dtype=np.int64)
    np.maximum.at(latest, data.user_idx, data.timestamp)
    inside = latest[data.user_idx] - data.timestamp <= days * DAY
    assert rows(out) == [r for r, k in zip(rows(data), inside, strict=True) if k]
    assert np.all(out.user_counts >= 1)  # everybody keeps their latest interaction


def test_recent_with_a_huge_time_span_uses_the_two_key_sort():
    data = hand_dataset()
    ts = data.timestamp.copy()
    ts[data.item_idx == 5] = 2**61  # n_users * span no longer fits one int64 key
    data = data.with_interactions(data.user_idx, data.item_idx, data.weight, ts)
    out = Minimization(n=2).apply(data, rng=np.random.default_rng(0)).data
    assert sorted(out.item_idx[out.user_idx == 1].tolist()) == [1, 5]  # 2**61 and day 20
