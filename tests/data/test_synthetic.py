"""The Synthetic generator: determinism, sizes, structure (popularity, taste-attribute signal, time)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from privrec.data import AGE_BANDS, Synthetic
from privrec.data.loaders import _guide_table, _inverse_cdf, _inverse_odd

SMALL = {"n_users": 3000, "n_items": 1000, "n_interactions": 60000}


@pytest.fixture(scope="module")
def small():
    return Synthetic(**SMALL, seed=7).load()


def popularity_slope(data) -> float:
    """Log-log slope of item interaction counts against popularity rank (ranks 1% .. 33%)."""
    counts = np.sort(data.item_counts)[::-1].astype(float)
    ranks = np.arange(1, len(counts) + 1)
    lo, hi = len(counts) // 100 + 1, len(counts) // 3
    return float(np.polyfit(np.log(ranks[lo:hi]), np.log(np.maximum(counts[lo:hi], 0.5)), 1)[0])


def attribute_auc(data, column: str, value: str) -> float:
    """AUC of a naive attack: score held-out users by the mean attribute rate of their items' raters."""
    y = (data.user_attributes[column] == value).to_numpy()
    known = data.user_idx % 2 == 0  # even users are the attacker's labelled data
    rate_num = np.bincount(data.item_idx[known], weights=y[data.user_idx[known]], minlength=data.n_items)
    rate_den = np.bincount(data.item_idx[known], minlength=data.n_items)
    rate = np.where(rate_den > 0, rate_num / np.maximum(rate_den, 1), y.mean())
    target = ~known
    score = np.bincount(data.user_idx[target], weights=rate[data.item_idx[target]], minlength=data.n_users)
    score = (score / np.maximum(data.user_counts, 1))[1::2]
    labels = y[1::2]
    ranks = rankdata(score)
    n1, n0 = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def test_seeded_determinism():
    a = Synthetic(n_users=300, n_items=100, n_interactions=4000, seed=3).load()
    b = Synthetic(n_users=300, n_items=100, n_interactions=4000, seed=3).load()
    c = Synthetic(n_users=300, n_items=100, n_interactions=4000, seed=4).load()
    assert a.checksum() == b.checksum()
    assert a.checksum() != c.checksum()


def test_sizes_and_shape(small):
    assert small.n_users == 3000 and small.n_items == 1000 and small.name == "synthetic"
    np.testing.assert_array_equal(small.users.ids, np.arange(1, 3001))
    # expected number of distinct pairs is n_interactions; the realised count is within 2%
    assert abs(small.n_interactions - 60000) < 0.02 * 60000
    assert small.user_counts.min() >= 1 and small.user_counts.max() <= 600  # targets capped at half the catalogue
    pairs = small.user_idx.astype(np.int64) * small.n_items + small.item_idx
    assert len(np.unique(pairs)) == small.n_interactions  # no repeated (user, item)
    assert np.all(small.weight == 1.0) and small.weight.dtype == np.float32
    assert np.all(np.diff(small.user_idx) >= 0)  # rows grouped by user


def test_activity_is_heavy_tailed(small):
    counts = small.user_counts
    assert counts.max() > 8 * np.median(counts)  # a long right tail
    assert np.mean(counts) > 1.3 * np.median(counts)


def test_popularity_is_roughly_power_law(small):
    slope = popularity_slope(small)
    assert -1.3 < slope < -0.5  # exponent 1 (merging repeats flattens the head a little)
    flat = Synthetic(**SMALL, popularity_exponent=0.0, seed=7).load()
    assert -0.2 < popularity_slope(flat) <= 0.05
    top = np.sort(small.item_counts)[::-1]
    assert top[:10].sum() > 5 * top[-10:].sum()  # the 1% head dwarfs the 1% tail


def test_timestamps_increase_within_each_user(small):
    same_user = np.diff(small.user_idx) == 0
    assert np.all(np.diff(small.timestamp)[same_user] >= 0)
    assert small.timestamp.min() >= 978_307_200 and small.timestamp.max() < 978_307_200 + 3 * 365 * 86_400
    # time order is unrelated to item index: users' first and last items look like all their items
    last = np.flatnonzero(np.append(~same_user, True))
    first = np.flatnonzero(np.append(True, ~same_user))
    overall = np.mean(small.item_idx) / small.n_items
    assert abs(np.mean(small.item_idx[last]) / small.n_items - overall) < 0.03
    assert abs(np.mean(small.item_idx[first]) / small.n_items - overall) < 0.03


def test_attributes_and_schema(small):
    attrs = small.user_attributes
    assert list(attrs.columns) == ["age", "gender", "age_band", "zip_code"]
    assert set(attrs["gender"]) == {"F", "M"} and set(attrs["age_band"]) <= set(AGE_BANDS)
    assert attrs["zip_code"].str.fullmatch(r"\d{5}").all()
    from privrec.data import age_band

    assert (age_band(attrs["age"]) == attrs["age_band"]).all()
    assert small.schema.sensitive == ("gender", "age_band")
    assert small.schema.numeric == ("age",)


def test_attributes_carry_taste_signal(small):
    # With attribute_signal = 0.8 a naive co-rating attack separates genders well; at 0 it is a coin flip.
    # AUC sd is about 0.016 for 1500 held-out users: 0.06 is almost 4 sd.
    assert attribute_auc(small, "gender", "F") > 0.8
    assert attribute_auc(small, "age_band", "25-34") > 0.6
    none = Synthetic(**SMALL, attribute_signal=0.0, seed=7).load()
    assert abs(attribute_auc(none, "gender", "F") - 0.5) < 0.06
    # the marginal without signal is the population's (30% F): Binomial(3000, 0.3) sd 0.008
    assert abs((none.user_attributes["gender"] == "F").mean() - 0.3) < 0.03


def test_edge_sizes():
    one = Synthetic(n_users=3, n_items=1, n_interactions=3, n_clusters=1).load()
    assert one.n_interactions == 3 and np.all(one.item_idx == 0)
    full = Synthetic(n_users=5, n_items=4, n_interactions=10, n_clusters=4).load()
    assert full.user_counts.min() >= 1 and full.user_counts.max() <= 4


def test_inverse_cdf_matches_searchsorted():
    rng = np.random.default_rng(0)
    for exponent in (0.0, 1.0, 3.0):
        mass = (rng.permutation(5000) + 1.0) ** -exponent
        cdf = np.cumsum(mass)
        cdf /= cdf[-1]
        y = np.concatenate([rng.random(20000), [0.0, np.nextafter(1.0, 0.0)], cdf[:-1][:50]])
        np.testing.assert_array_equal(_inverse_cdf(cdf, _guide_table(cdf), y), np.searchsorted(cdf, y, side="right"))


def test_inverse_odd_is_the_modular_inverse():
    rng = np.random.default_rng(1)
    for bits in (1, 7, 17, 31):
        odd = rng.integers(0, 1 << bits, size=1000, dtype=np.uint64) | np.uint64(1)
        inv = _inverse_odd(odd, bits)
        assert np.all((odd * inv) & np.uint64((1 << bits) - 1) == 1)
