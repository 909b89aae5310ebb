from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privrec.data.dataset import Dataset, Vocabulary
from privrec.errors import ConfigError, PrivacyGuaranteeError
from privrec.privacy import microaggregation
from privrec.privacy.microaggregation import ProfileKAnonymity, mdav
from privrec.testing.data import tiny_dataset
from privrec.testing.privacy import TransformConformance


class TestProfileKAnonymity(TransformConformance):
    def make_transform(self):
        return ProfileKAnonymity(k=4, dim=4)

    def bad_configs(self):
        return [{"k": 1}, {"k": 0}, {"k": 2.5}, {"k": True}, {"dim": 0}, {"dim": -3}, {"dim": 2.0},
                {"share": 0}, {"share": 0.0}, {"share": -0.5}, {"share": 1.01}, {"share": float("nan")},
                {"share": "half"}, {"weights": "median"}]


class TestProfileKAnonymityHoldersWithEmptyUsers(TransformConformance):
    def make_transform(self):
        return ProfileKAnonymity(k=3, dim=8, share=0.3, weights="holders")

    def make_data(self):
        data = tiny_dataset(n_users=40, n_items=25, seed=3)
        return data.subset(data.user_idx >= 6)  # users 0-5 have no data (e.g. opted out earlier)


def test_messages_are_one_line():
    with pytest.raises(ConfigError, match=r"^profile_k_anonymity.k must be >= 2; got 1.$"):
        ProfileKAnonymity(k=1)
    with pytest.raises(ConfigError, match=r"^profile_k_anonymity.dim must be >= 1; got 0.$"):
        ProfileKAnonymity(dim=0)
    with pytest.raises(ConfigError, match=r"^profile_k_anonymity.share must be in \(0, 1\]; got 1.5.$"):
        ProfileKAnonymity(share=1.5)


def test_k_larger_than_users_with_data_raises():
    data = tiny_dataset(n_users=12)
    data = data.subset(data.user_idx < 5)
    with pytest.raises(PrivacyGuaranteeError,
                       match=r"^profile_k_anonymity.k must be <= the number of users with data \(5\); got 6\."):
        ProfileKAnonymity(k=6).apply(data, rng=np.random.default_rng(0))


def test_measured_shortfall_raises(monkeypatch):
    # a broken grouping (singletons) must be caught by the measurement on the output, never pass quietly
    monkeypatch.setattr(microaggregation, "mdav", lambda points, *, k: np.arange(len(points)))
    with pytest.raises(PrivacyGuaranteeError, match="k_achieved >= 3"):
        ProfileKAnonymity(k=3).apply(tiny_dataset(n_users=20), rng=np.random.default_rng(0))


def test_measure_is_independent_of_the_grouping():
    data = tiny_dataset(n_users=30, seed=1)  # random profiles: all distinct
    report = ProfileKAnonymity(k=5).measure(data, data)
    assert report.metrics["k_achieved"] == 1
    assert report.metrics["spurious_cells"] == 0
    assert report.metrics["share_interactions_retained"] == 1


# ------------------------------------------------------------------ known answer
def _clusters(n_clusters: int, k: int, *, n_empty: int = 2, timestamps: bool = True) -> Dataset:
    """``n_clusters`` groups of exactly ``k`` users on disjoint blocks of 6 items; member j misses block
    item j % 6 and holds one private item of its own. Then ``n_empty`` users with no data."""
    users, items, times = [], [], []
    n_base = 6 * n_clusters
    for c in range(n_clusters):
        for j in range(k):
            u = c * k + j
            for b in range(6):
                if b != j % 6:
                    users.append(u), items.append(6 * c + b), times.append(1000 * (6 * c + b) + 7 * u)
            users.append(u), items.append(n_base + u), times.append(5)  # private item
    n_users = n_clusters * k + n_empty
    return Dataset(
        users=Vocabulary(np.array([f"user{i}" for i in range(n_users)], dtype=object)),
        items=Vocabulary(np.arange(n_base + n_clusters * k)),
        user_idx=np.array(users), item_idx=np.array(items), weight=np.ones(len(users), dtype=np.float32),
        timestamp=np.array(times) if timestamps else None,
    )


@pytest.mark.parametrize("n_clusters", [2, 3, 5])
@pytest.mark.parametrize("weights", ["mean", "holders"])
def test_separated_clusters_are_the_groups_and_release_the_majority(n_clusters, weights):
    k = 6
    data = _clusters(n_clusters, k)
    res = ProfileKAnonymity(k=k, dim=16, share=0.5, weights=weights).apply(data, rng=np.random.default_rng(0))
    out = res.data.to_frame()
    for c in range(n_clusters):
        block = np.arange(6 * c, 6 * c + 6)
        for u in range(c * k, (c + 1) * k):
            rows = out[out.user_idx == u].sort_values("item_idx")
            np.testing.assert_array_equal(rows.item_idx, block)  # every block item held by 5 of 6 members
            expected_weight = 5 / 6 if weights == "mean" else 1.0
            np.testing.assert_allclose(rows.weight, expected_weight, rtol=1e-6)
            for item, ts in zip(rows.item_idx, rows.timestamp, strict=True):
                holders = [v for v in range(c * k, (c + 1) * k) if v % k % 6 != item - 6 * c]
                assert ts == int(np.floor(np.median([1000 * item + 7 * v for v in holders])))
    assert not np.any(out.user_idx >= n_clusters * k)  # users without data stay empty
    m = res.report.metrics
    assert m["k_achieved"] == k and m["n_groups"] == n_clusters and m["mean_group_size"] == k
    assert m["users_with_data"] == n_clusters * k and m["users_empty_profile"] == 0
    assert m["cells_retained"] == n_clusters * k * 5  # the 5 block items each member had
    assert m["spurious_cells"] == n_clusters * k  # the one block item each member lacked
    assert m["interactions_before"] == n_clusters * k * 6 and m["interactions_after"] == n_clusters * k * 6
    assert res.withheld is None


def test_no_timestamps_and_share_one_can_empty_profiles():
    k = 6
    data = _clusters(2, k, timestamps=False)
    res = ProfileKAnonymity(k=k, share=1.0).apply(data, rng=np.random.default_rng(0))
    assert res.data.timestamp is None
    # no block item is held by every member: every profile is empty, and that is reported
    assert res.data.n_interactions == 0
    assert res.report.metrics["users_empty_profile"] == 2 * k
    assert res.report.metrics["n_groups"] == 0
    assert res.report.metrics["k_achieved"] == data.n_users  # everyone shares the empty profile


# ------------------------------------------------------------------ property
def _random_dataset(n_users: int, n_items: int, density: float, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[rng.random(n_users) < 0.15] = False  # some users without data
    mask[:2, 0] = True  # at least two users with data
    users, items = np.nonzero(mask)
    extra = rng.integers(0, len(users), len(users) // 10)  # a few duplicate (user, item) rows
    users, items = np.r_[users, users[extra]], np.r_[items, items[extra]]
    return Dataset(
        users=Vocabulary(np.arange(n_users)), items=Vocabulary(np.arange(n_items)),
        user_idx=users, item_idx=items, weight=rng.integers(1, 6, len(users)).astype(np.float32),
        timestamp=rng.integers(0, 10_000, len(users)),
    )


def _profiles(data: Dataset) -> dict[int, frozenset]:
    out: dict[int, set] = {}
    ts = data.timestamp if data.timestamp is not None else np.zeros(data.n_interactions, dtype=np.int64)
    for u, i, w, t in zip(data.user_idx.tolist(), data.item_idx.tolist(), data.weight.tolist(), ts.tolist(),
                          strict=True):
        out.setdefault(u, set()).add((i, w, t))
    return {u: frozenset(p) for u, p in out.items()}


@settings(max_examples=40, deadline=None)
@given(n_users=st.integers(10, 60), n_items=st.integers(2, 30), density=st.floats(0.05, 0.9),
       seed=st.integers(0, 10_000), share=st.floats(0.01, 1.0), weights=st.sampled_from(["mean", "holders"]),
       dim=st.integers(1, 20), draw=st.data())
def test_property_every_released_profile_shared_by_k(n_users, n_items, density, seed, share, weights, dim, draw):
    data = _random_dataset(n_users, n_items, density, seed)
    had = data.user_counts > 0
    k = draw.draw(st.integers(2, int(had.sum())), label="k")
    res = ProfileKAnonymity(k=k, dim=dim, share=share, weights=weights).apply(data, rng=np.random.default_rng(seed))
    released = _profiles(res.data)
    classes = Counter(released.values())
    assert all(size >= k for size in classes.values())
    assert all(had[u] for u in released)  # users without data stay empty
    m = res.report.metrics
    assert m["k_achieved"] >= k
    if classes:
        assert m["k_achieved"] == min(classes.values()) and m["n_groups"] == len(classes)
    assert m["users_empty_profile"] == had.sum() - len(released)
    # retained / spurious, recounted on distinct (user, item) cells
    before = set(zip(data.user_idx.tolist(), data.item_idx.tolist(), strict=True))
    after = set(zip(res.data.user_idx.tolist(), res.data.item_idx.tolist(), strict=True))
    assert len(after) == res.data.n_interactions  # one row per released cell
    assert m["cells_retained"] == len(after & before)
    assert m["spurious_cells"] == len(after - before)
    assert m["cells_retained"] + m["spurious_cells"] == m["interactions_after"]
    assert m["share_interactions_retained"] == pytest.approx(len(after & before) / len(before))


# ------------------------------------------------------------------ MDAV
def _reference_mdav(x: np.ndarray, k: int) -> list[frozenset]:
    """Plain MDAV (Domingo-Ferrer & Torra 2005), float64, boolean masks: the slow textbook version."""
    remaining = np.arange(len(x))
    groups = []

    def sq(a, b):
        return ((x[a] - b) ** 2).sum(axis=1)

    def take(center, pool):
        d = sq(pool, x[center])
        d[pool == center] = -1
        return pool[np.argsort(d)[:k]]

    while len(remaining) >= 3 * k:
        r = remaining[np.argmax(sq(remaining, x[remaining].mean(axis=0)))]
        g_r = take(r, remaining)
        rest = np.setdiff1d(remaining, g_r)
        s = rest[np.argmax(sq(rest, x[r]))]
        g_s = take(s, rest)
        groups += [frozenset(g_r.tolist()), frozenset(g_s.tolist())]
        remaining = np.setdiff1d(rest, g_s)
    if len(remaining) >= 2 * k:
        r = remaining[np.argmax(sq(remaining, x[remaining].mean(axis=0)))]
        g_r = take(r, remaining)
        groups += [frozenset(g_r.tolist()), frozenset(np.setdiff1d(remaining, g_r).tolist())]
    elif len(remaining):
        groups.append(frozenset(remaining.tolist()))
    return groups


def _groups(labels: np.ndarray) -> set[frozenset]:
    return {frozenset(np.flatnonzero(labels == g).tolist()) for g in np.unique(labels)}


@pytest.mark.parametrize(("n", "k", "d"), [(7, 3, 2), (29, 5, 3), (150, 4, 5), (400, 3, 2), (1000, 7, 4)])
def test_mdav_matches_textbook_version(n, k, d):
    x = np.random.default_rng(n).standard_normal((n, d)) * np.arange(1, d + 1)
    labels = mdav(x, k=k)
    assert _groups(labels) == set(_reference_mdav(x, k))


@pytest.mark.parametrize("k", [1, 2, 3, 10])
def test_mdav_group_sizes(k):
    rng = np.random.default_rng(k)
    for n in range(k, 6 * k + 2):
        sizes = np.bincount(mdav(rng.standard_normal((n, 3)), k=k))
        assert sizes.min() >= k and sizes.max() <= max(k, 2 * k - 1) and sizes.sum() == n
    sizes = np.bincount(mdav(np.zeros((50, 3)), k=4))  # all ties
    assert sizes.min() >= 4 and sizes.max() <= 7


def test_mdav_rejects_k_above_n():
    with pytest.raises(ConfigError, match="mdav k must be"):
        mdav(np.zeros((3, 2)), k=4)


# ------------------------------------------------------------------ real data
def test_movielens_100k_k10(shared_data_dir):
    frame = pd.read_csv(shared_data_dir / "ml-100k" / "u.data", sep="\t",
                        names=["user_id", "item_id", "rating", "timestamp"])
    users, items = Vocabulary(np.sort(frame.user_id.unique())), Vocabulary(np.sort(frame.item_id.unique()))
    data = Dataset(users=users, items=items, user_idx=users.index_of(frame.user_id),
                   item_idx=items.index_of(frame.item_id), weight=frame.rating.to_numpy(np.float32),
                   timestamp=frame.timestamp.to_numpy(), name="ml-100k")
    res = ProfileKAnonymity(k=10).apply(data, rng=np.random.default_rng(0))
    m = res.report.metrics
    assert m["k_achieved"] >= 10
    assert res.data.n_users == data.n_users and res.data.n_items == data.n_items
    assert 0 < m["share_interactions_retained"] < 1
    assert m["n_groups"] <= data.n_users // 10
