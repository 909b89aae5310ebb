"""attack.<name>.max_targets: exact below the cap, estimates with honest 95% intervals above it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from attack_helpers import FakeModel, empty_like, random_dataset

from privrec.attacks import AttackTarget, AttributeInference, MembershipInference, ReIdentification
from privrec.attacks.base import auc_interval, proportion_interval, sample_targets
from privrec.errors import ConfigError

Z = 1.959963984540054


# ---------------------------------------------------------------------- the statistics, by hand
def test_wilson_interval_by_hand():
    # 30 of 100, infinite population: the textbook Wilson interval [0.2189, 0.3958]
    low, high = proportion_interval(30, 100, 10**12)
    assert low == pytest.approx(0.21886, abs=1e-4) and high == pytest.approx(0.39585, abs=1e-4)
    assert proportion_interval(30, 100, 100) == (0.3, 0.3)  # every unit measured
    narrow = proportion_interval(30, 100, 200)  # half the population: effective n = 100 * 199 / 100
    assert high - low > narrow[1] - narrow[0]
    assert all(math.isnan(v) for v in proportion_interval(0, 0, 10))


def _delong_by_hand(pos, neg):
    """DeLong's variance with the O(m n) kernel written out."""
    psi = np.array([[1.0 if p > q else 0.5 if p == q else 0.0 for q in neg] for p in pos])
    a = psi.mean()
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    var = v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)
    return a, var


def test_auc_interval_is_delong_without_clusters():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1.0, 1.0, 40).round(1), rng.normal(0.0, 1.0, 50).round(1)  # rounded: ties
    a, var = _delong_by_hand(pos, neg)
    low, high = auc_interval(pos, neg)
    # the cluster-robust form with one score per unit is DeLong's, up to the K/(K-1) vs per-sample ddof factors
    assert (low + high) / 2 == pytest.approx(a, abs=1e-12)
    assert (high - low) / 2 == pytest.approx(Z * math.sqrt(var), rel=0.03)


def test_auc_interval_clusters_widen_when_units_repeat():
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(0.5, 1.0, 60), rng.normal(0.0, 1.0, 60)
    free = auc_interval(pos, neg)
    # the same scores from only 6 units (10 each), a unit's members low when its non-members are high (users
    # that are hard or easy to attack): far fewer independent units, a wider interval
    unit_p, unit_n = np.repeat(np.arange(6), 10), np.repeat(np.arange(6), 10)
    shared = auc_interval(np.sort(pos), np.sort(neg)[::-1], positive_unit=unit_p, negative_unit=unit_n)
    assert shared[1] - shared[0] > free[1] - free[0]


def test_sample_targets_draws_nothing_below_the_cap():
    pool = np.arange(10)
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert sample_targets(pool, 10, rng) is pool and sample_targets(pool, None, rng) is pool
    assert rng.bit_generator.state == state
    picked = sample_targets(pool, 4, rng)
    assert len(picked) == 4 and np.all(np.diff(picked) > 0) and set(picked) <= set(pool)


# ---------------------------------------------------------------------- membership inference
def _split(seed=0, n_users=400, n_items=80):
    data = random_dataset(n_users=n_users, n_items=n_items, density=0.15, seed=seed, min_items=5)
    is_test = np.random.default_rng(seed).random(data.n_interactions) < 0.2
    return data.subset(~is_test), data.subset(is_test)


def _noisy_memorizer(train, seed=0):
    """Training items score 1 + noise, others noise: an imperfect attack (AUC well inside (0.5, 1))."""
    noise = np.random.default_rng(seed).normal(0.0, 1.0, (train.n_users, train.n_items))
    return FakeModel(train.to_csr(binary=True).toarray() * 1.0 + noise)


def _withheld(n_users, share=0.3, seed=2):
    return np.random.default_rng(seed).random(n_users) < share


def test_membership_cap_above_population_is_the_unsampled_attack():
    train, test = _split()
    withheld = _withheld(train.n_users)
    released = train.subset(~withheld[train.user_idx])
    target = AttackTarget(original=train, released=released, test=test, model=_noisy_memorizer(train),
                          withheld=withheld)
    plain = MembershipInference().run(target, rng=np.random.default_rng(5))
    capped = MembershipInference(max_targets=10_000).run(target, rng=np.random.default_rng(5))
    assert plain.metrics == capped.metrics and plain.missing == capped.missing
    assert not any(k.endswith(("_ci_low", "_ci_high", "_population")) for k in plain.metrics)


def test_membership_sample_interval_covers_the_full_value():
    train, test = _split(seed=3, n_users=600)
    target = AttackTarget(original=train, released=train, test=test, model=_noisy_memorizer(train, seed=3))
    full = MembershipInference().run(target, rng=np.random.default_rng(0)).metrics
    part = MembershipInference(max_targets=150).run(target, rng=np.random.default_rng(0)).metrics
    assert part["mia_users"] == 150 and part["mia_users_population"] == 600
    for name in ("mia_auc_test", "mia_auc_random", "mia_auc_original"):
        low, high = part[f"{name}_ci_low"], part[f"{name}_ci_high"]
        assert 0.5 < low < part[name] < high < 1.0
        assert low <= full[name] <= high, name


def test_membership_old_and_new_names():
    assert MembershipInference(max_users=5).run is not None
    with pytest.raises(ConfigError, match=r"max_users \(the older name of max_targets\) must equal"):
        MembershipInference(max_users=5, max_targets=6)
    with pytest.raises(ConfigError, match=r"^membership_inference\.max_targets must be an integer >= 1 or null"):
        MembershipInference(max_targets=0)


# ---------------------------------------------------------------------- re-identification
def _reid_target(n_users=500, seed=0):
    data = random_dataset(n_users=n_users, n_items=300, density=0.01, seed=seed, min_items=2)
    return AttackTarget(original=data, released=data, test=empty_like(data))


def test_reidentification_cap_above_population_is_exact():
    target = _reid_target()
    plain = ReIdentification(m=(1, 2)).run(target, rng=np.random.default_rng(1))
    capped = ReIdentification(m=(1, 2), max_targets=500).run(target, rng=np.random.default_rng(1))
    assert plain.metrics == capped.metrics
    assert not any(k.endswith("_ci_low") for k in plain.metrics)


def test_reidentification_sample_interval_covers_the_full_rate():
    target = _reid_target(n_users=800, seed=4)
    full = ReIdentification(m=(1, 2)).run(target, rng=np.random.default_rng(2)).metrics
    part = ReIdentification(m=(1, 2), max_targets=200).run(target, rng=np.random.default_rng(2)).metrics
    for m in (1, 2):
        assert part[f"targets_m{m}"] == 200 and part[f"eligible_m{m}"] == full[f"eligible_m{m}"]
        for name in (f"reid_rate_m{m}", f"unicity_m{m}"):
            low, high = part[f"{name}_ci_low"], part[f"{name}_ci_high"]
            assert low <= part[name] <= high
            assert low <= full[name] <= high, name
    assert 0.2 < full["reid_rate_m2"] < 0.8 and part["reid_rate_m2_ci_low"] > 0.0  # m=2: a rate inside (0, 1)
    assert part["reid_rate_m1"] == part["reid_rate_m1_ci_low"] == 0.0  # m=1 re-identifies nobody here


# ---------------------------------------------------------------------- attribute inference
def _labelled(n_users=900, seed=0):
    base = random_dataset(n_users=n_users, n_items=40, density=0.15, seed=seed)
    csr = base.to_csr(binary=True)
    key = int(np.argmin(np.abs(np.asarray(csr.mean(axis=0)).ravel() - 0.4)))
    holds = np.asarray(csr[:, key].toarray()).ravel() > 0
    flip = np.random.default_rng(seed).random(n_users) < 0.2  # a noisy signal: AUC inside (0.5, 1)
    attrs = pd.DataFrame({"gender": np.where(holds ^ flip, "F", "M")})
    data = random_dataset(n_users=n_users, n_items=40, density=0.15, seed=seed, attrs=attrs)
    return AttackTarget(original=data, released=data, test=empty_like(data))


def test_attribute_cap_above_population_is_exact():
    target = _labelled(n_users=300)
    attack = {"folds": 3, "sources": ("released",)}
    plain = AttributeInference(**attack).run(target, rng=np.random.default_rng(0))
    capped = AttributeInference(**attack, max_targets=300).run(target, rng=np.random.default_rng(0))
    assert plain.metrics == capped.metrics


def test_attribute_sample_reports_size_and_interval():
    target = _labelled()
    attack = {"folds": 3, "sources": ("released", "raw_to_released")}
    full = AttributeInference(**attack).run(target, rng=np.random.default_rng(0)).metrics
    part = AttributeInference(**attack, max_targets=400).run(target, rng=np.random.default_rng(0)).metrics
    assert part["gender_targets"] == 400 and part["gender_population"] == 900
    assert part["gender_users_released"] == 400
    low, high = part["gender_auc_released_ci_low"], part["gender_auc_released_ci_high"]
    assert low < part["gender_auc_released"] < high
    assert low <= full["gender_auc_released"] <= high
    # raw_to_released copies released (consent-drop-like: nothing changed), intervals included
    assert part["gender_auc_raw_to_released_ci_low"] == low
