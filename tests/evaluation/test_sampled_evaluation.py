"""evaluation.max_users: exact when nothing is sampled, honest intervals when users are sampled."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from privrec.data.dataset import Dataset, Vocabulary
from privrec.errors import ConfigError, DataValidationError
from privrec.evaluation import check_max_users, evaluate, mean_interval, sample_users
from privrec.models import ALS


def _data(n_users: int = 400, n_items: int = 60, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Two taste groups (even users like the first half of the items), train and test split by position."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u in range(n_users):
        pool = np.arange(n_items // 2) if u % 2 == 0 else np.arange(n_items // 2, n_items)
        chosen = rng.choice(pool, size=8, replace=False)
        if rng.random() < 0.2:  # some noise from the other half
            chosen[-1] = rng.integers(0, n_items)
        chosen = np.unique(chosen)
        users += [u] * len(chosen)
        items += chosen.tolist()
    users, items = np.array(users), np.array(items)
    rank = np.concatenate([np.arange(c) for c in np.bincount(users)])
    test_row = rank >= 6

    def make(mask: np.ndarray) -> Dataset:
        return Dataset(users=Vocabulary(np.arange(n_users)), items=Vocabulary(np.arange(n_items)),
                       user_idx=users[mask], item_idx=items[mask], weight=np.ones(int(mask.sum()), np.float32))

    return make(~test_row), make(test_row)


@pytest.fixture(scope="module")
def fitted():
    train, test = _data()
    model = ALS(factors=8, iterations=5, regularization=0.1).fit(train, rng=np.random.default_rng(0))
    return model, train, test


def test_all_users_given_is_the_unsampled_path(fitted):
    model, train, test = fitted
    plain = evaluate(model, train, test, cutoffs=(5, 10), threads=1)
    everyone = sample_users(test, max_users=None, rng=np.random.default_rng(1))
    capped_above = sample_users(test, max_users=10**6, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(everyone, capped_above)
    same = evaluate(model, train, test, cutoffs=(5, 10), users=everyone, threads=1)
    pd.testing.assert_frame_equal(plain.per_user, same.per_user)
    assert plain.overall == same.overall
    assert "n_users_evaluated" not in plain.overall and not any(k.endswith("_ci_low") for k in plain.overall)


def test_threads_and_batches_do_not_change_results(fitted):
    model, train, test = fitted
    a = evaluate(model, train, test, cutoffs=(5, 10), threads=1, batch_size=2048)
    b = evaluate(model, train, test, cutoffs=(5, 10), threads=2, batch_size=7)
    pd.testing.assert_frame_equal(a.per_user, b.per_user)
    assert a.overall == b.overall


def test_sample_is_users_and_carries_intervals(fitted):
    model, train, test = fitted
    full = evaluate(model, train, test, cutoffs=(5, 10), segments={"even": np.arange(400) % 2 == 0})
    users = sample_users(test, max_users=120, rng=np.random.default_rng(3))
    assert len(users) == 120 and np.all(np.diff(users) > 0)
    part = evaluate(model, train, test, cutoffs=(5, 10), users=users, segments={"even": np.arange(400) % 2 == 0})
    m = part.to_metrics()
    assert m["eval/n_users_evaluated"] == 120.0 and m["eval/n_users"] == 120.0
    assert m["eval/n_users_eligible"] == 400.0
    # every per-user metric of the sample is a subset of the full per-user table (users, never items, sampled)
    pd.testing.assert_frame_equal(part.per_user, full.per_user.loc[users])
    for name in ("ndcg_at_10", "recall_at_10", "auc", "precision_at_5"):
        low, high = m[f"eval/{name}_ci_low"], m[f"eval/{name}_ci_high"]
        assert low < m[f"eval/{name}"] < high
        assert low <= full.overall[name] <= high, name  # the seeded case: the interval covers the truth
    seg = part.segments["even"]
    assert seg["n_users_eligible"] == 200.0 and seg["n_users_evaluated"] == seg["n_users"]
    assert seg["ndcg_at_10_ci_low"] <= full.segments["even"]["ndcg_at_10"] <= seg["ndcg_at_10_ci_high"]


def test_interval_coverage_over_many_samples(fitted):
    """About 95% of the samples' intervals cover the full mean (binomial tolerance: 200 draws, >= 88%)."""
    model, train, test = fitted
    full = evaluate(model, train, test, cutoffs=(10,))
    truth = full.overall["ndcg_at_10"]
    values = full.per_user["ndcg_at_10"].to_numpy()
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(200):
        pick = rng.choice(len(values), size=60, replace=False)
        low, high = mean_interval(values[pick], len(values))
        covered += low <= truth <= high
    assert covered >= 176


def test_mean_interval_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0])  # mean 2.5, sd 1.2910
    low, high = mean_interval(x, population=10**12)
    half = 1.959963984540054 * np.std(x, ddof=1) / 2.0
    assert low == pytest.approx(2.5 - half) and high == pytest.approx(2.5 + half)
    low, high = mean_interval(x, population=8)  # finite-population factor sqrt(1 - 4/8)
    assert high - 2.5 == pytest.approx(half * math.sqrt(0.5))
    assert mean_interval(x, population=4) == (2.5, 2.5)  # everyone measured: no sampling error
    assert all(math.isnan(v) for v in mean_interval(np.array([np.nan, 1.0]), 5))


def test_bad_values_raise():
    with pytest.raises(ConfigError, match=r"^evaluation\.max_users must be a positive integer or null; got 0\.$"):
        check_max_users(0)
    train, test = _data(40)
    model = ALS(factors=4, iterations=2).fit(train, rng=np.random.default_rng(0))
    with pytest.raises(DataValidationError, match="users must be distinct ascending"):
        evaluate(model, train, test, users=np.array([3, 1]))
