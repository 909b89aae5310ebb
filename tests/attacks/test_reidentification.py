import warnings

import numpy as np
import pandas as pd
import pytest
from attack_helpers import SECRET, empty_like, make_dataset, random_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privrec.attacks import AttackTarget, ReIdentification
from privrec.attacks._quasi import QuasiMatch, cover_pairs
from privrec.attacks.reidentification import _Release
from privrec.data.dataset import Schema
from privrec.errors import ConfigError, DataValidationError
from privrec.testing.attacks import AttackConformance


class TestReIdentificationConformance(AttackConformance):
    def make_attack(self):
        return ReIdentification(m=(1, 2, 4), demographics=True, max_targets=30)

    def bad_configs(self):
        return [{"m": 0}, {"m": ()}, {"known": "all"}, {"eccentricity": -1.0}, {"max_targets": 0}]


def target_of(original, released=None):
    return AttackTarget(original=original, released=original if released is None else released,
                        test=empty_like(original))


def disjoint(n_users=20, per_user=3, *, shift_days=0):
    """Every user has ``per_user`` items nobody else has."""
    u = np.repeat(np.arange(n_users), per_user)
    i = np.arange(n_users * per_user)
    ts = 1_000_000_000 + i * 3_600
    original = make_dataset(u, i, n_users, n_users * per_user, timestamp=ts)
    released = make_dataset(u, i, n_users, n_users * per_user, timestamp=ts + shift_days * 86_400)
    return original, released


# ---------------------------------------------------------------------- known answers
def test_unique_items_reidentify_everyone_at_m1(rng):
    original, _ = disjoint()
    res = ReIdentification(m=(1, 2, 3)).run(target_of(original), rng=rng)
    for m in (1, 2, 3):
        assert res.metrics[f"reid_rate_m{m}"] == 1.0
        assert res.metrics[f"reid_rate_released_m{m}"] == 1.0
        assert res.metrics[f"unicity_m{m}"] == 1.0
        assert res.metrics[f"targets_m{m}"] == 20
    assert res.missing == {}


def test_profiles_shared_by_groups_of_ten_defeat_linkage(rng):
    original = random_dataset(n_users=100, n_items=60, density=0.2, seed=3, min_items=8)
    csr = original.to_csr(binary=True)
    # microaggregation-like release: every group of 10 users publishes the profile of its first member
    source = (np.arange(100) // 10) * 10
    rows = csr[source].tocoo()
    released = original.with_interactions(rows.row, rows.col, np.ones(rows.nnz, np.float32), None)
    res = ReIdentification(m=(1, 2, 4, 8)).run(target_of(original, released), rng=rng)
    for m in (1, 2, 4, 8):
        assert res.metrics[f"reid_rate_m{m}"] <= 1 / 10
        assert res.metrics[f"unicity_m{m}"] == 0.0  # ten identical profiles always match together


def test_unicity_grows_with_m_and_reid_is_bounded_by_it(rng):
    data = random_dataset(n_users=80, n_items=50, density=0.2, seed=1, min_items=8)
    res = ReIdentification(m=(1, 2, 4, 8)).run(target_of(data), rng=rng)
    unicity = [res.metrics[f"unicity_m{m}"] for m in (1, 2, 4, 8)]
    assert unicity == sorted(unicity)  # known sets are nested and every user is a target for every m
    assert unicity[-1] > unicity[0]
    for m in (1, 2, 4, 8):
        # a confident correct match of the full-score profile needs a unique full match here (released = original)
        assert res.metrics[f"reid_rate_m{m}"] <= res.metrics[f"unicity_m{m}"] + 1e-12


def test_rarest_knowledge_beats_random_knowledge(rng):
    data = random_dataset(n_users=150, n_items=80, density=0.12, seed=7, min_items=4)
    rates = {known: ReIdentification(m=2, known=known).run(target_of(data), rng=np.random.default_rng(0))
             .metrics["reid_rate_m2"] for known in ("random", "rarest")}
    assert rates["rarest"] > rates["random"]


def test_opted_out_users_count_as_not_reidentified(rng):
    original, _ = disjoint()
    keep = original.user_idx >= 5  # users 0-4 opted out: empty released rows
    released = original.subset(keep)
    res = ReIdentification(m=1).run(target_of(original, released), rng=rng)
    assert res.metrics["reid_rate_m1"] == pytest.approx(15 / 20)
    assert res.metrics["reid_rate_released_m1"] == 1.0
    assert res.metrics["unicity_m1"] == pytest.approx(15 / 20)


def test_nobody_released_is_recorded_as_missing(rng):
    original, _ = disjoint()
    res = ReIdentification(m=1).run(target_of(original, empty_like(original)), rng=rng)
    assert res.metrics["reid_rate_m1"] == 0.0
    assert "reid_rate_released_m1" in res.missing


def test_time_windows(rng):
    original, shifted = disjoint(shift_days=30)
    near = ReIdentification(m=1, days=14).run(target_of(original, shifted), rng=rng)
    far = ReIdentification(m=1, days=31).run(target_of(original, shifted), rng=rng)
    assert near.metrics["reid_rate_m1"] == 0.0 and near.metrics["unicity_m1"] == 0.0
    assert far.metrics["reid_rate_m1"] == 1.0


def test_time_windows_tell_identical_profiles_apart(rng):
    # two users with the same two items; timestamps a year apart
    original = make_dataset([0, 0, 1, 1, 2], [0, 1, 0, 1, 2], 3, 3,
                            timestamp=[0, 0, 400 * 86_400, 400 * 86_400, 0])
    without = ReIdentification(m=2).run(target_of(original), rng=rng)
    with_time = ReIdentification(m=2, days=3).run(target_of(original), rng=rng)
    assert without.metrics["reid_rate_m2"] == 0.0  # a perfect tie
    assert with_time.metrics["reid_rate_m2"] == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_window_covering_all_time_equals_no_window(seed):
    data = random_dataset(n_users=50, n_items=30, density=0.2, seed=seed)
    # every released record twice (a re-consumption a few days later): each pair still counts once
    doubled = data.with_interactions(np.tile(data.user_idx, 2), np.tile(data.item_idx, 2), np.tile(data.weight, 2),
                                     np.concatenate([data.timestamp, data.timestamp + 5 * 86_400]))
    ms = (1, 2, 3)
    plain = ReIdentification(m=ms).run(target_of(data, doubled), rng=np.random.default_rng(seed))
    timed = ReIdentification(m=ms, days=10_000).run(target_of(data, doubled), rng=np.random.default_rng(seed))
    assert timed.metrics == plain.metrics


def _twins(released_gender):
    """Users 0 and 1 have identical profiles and differ only in gender."""
    attrs = pd.DataFrame({"gender": ["F", "M", "F", "M"], "zip_code": ["02139", "02139", "10001", "10001"]})
    schema = Schema(quasi_identifiers=("gender", "zip_code"))
    u, i = [0, 0, 1, 1, 2, 3], [0, 1, 0, 1, 2, 3]
    original = make_dataset(u, i, 4, 4, attrs=attrs, schema=schema)
    rel_attrs = attrs.assign(gender=released_gender, zip_code=["021**", "021**", "100**", "100**"])
    released = make_dataset(u, i, 4, 4, attrs=rel_attrs, schema=schema)
    return target_of(original, released)


def test_demographics_break_ties(rng):
    target = _twins(["F", "M", "F", "M"])
    assert ReIdentification(m=2).run(target, rng=rng).metrics["reid_rate_m2"] == 0.0  # the twins tie
    res = ReIdentification(m=2, demographics=True).run(target, rng=rng)
    assert res.metrics["reid_rate_m2"] == 1.0
    assert res.metrics["unicity_m2"] == 1.0


def test_generalized_demographics_cover_the_original(rng):
    target = _twins(["F|M", "F|M", pd.NA, pd.NA])  # gender generalised away (set) or suppressed (missing)
    res = ReIdentification(m=2, demographics=True).run(target, rng=rng)
    assert res.metrics["reid_rate_m2"] == 0.0  # the twins tie again
    assert res.metrics["targets_m2"] == 2


def test_suppressed_demographics_change_nothing(rng):
    attrs = pd.DataFrame({"gender": np.where(np.arange(60) % 2, "F", "M"), "zip_code": ["02139"] * 60})
    schema = Schema(quasi_identifiers=("gender", "zip_code"))
    data = random_dataset(n_users=60, seed=5, attrs=attrs, schema=schema, min_items=4)
    suppressed = attrs.astype(object).where(np.zeros(attrs.shape, dtype=bool), pd.NA)
    released = data.with_interactions(data.user_idx, data.item_idx, data.weight, data.timestamp,
                                      user_attributes=suppressed)
    plain = ReIdentification(m=(1, 2, 4)).run(target_of(data, released), rng=np.random.default_rng(1))
    demo = ReIdentification(m=(1, 2, 4), demographics=True).run(target_of(data, released), rng=np.random.default_rng(1))
    assert demo.metrics == plain.metrics


def test_cover_rules():
    original = np.array(["24", "30", "31", "02139", "02141", "10001", "F", "M"])
    released = np.array(["[25-30]", "021**", "F|M", "31", "M"])
    o, r = cover_pairs(original, released)
    got = {(original[a], released[b]) for a, b in zip(o, r, strict=True)}
    assert got == {("30", "[25-30]"), ("02139", "021**"), ("02141", "021**"), ("F", "F|M"), ("M", "F|M"),
                   ("31", "31"), ("M", "M")}


def test_quasi_match_counts_compatible_released_rows():
    original = pd.DataFrame({"age": [20, 25, 40, 41], "gender": ["F", "F", "M", pd.NA]})
    released = pd.DataFrame({"age": ["[20-25]", "[20-25]", "[40-41]", pd.NA], "gender": ["F", "F", "M", "M"]})
    q = QuasiMatch(original, released, ("age", "gender"), np.array([True, True, True, True]))
    users = np.arange(4)
    # user 3: age 41 in [40-41] (row 2) and suppressed (row 3); gender unknown -> rows 2 and 3
    np.testing.assert_array_equal(q.n_candidates(users), [2, 2, 2, 2])
    assert q.compatible(np.array([0, 0, 2, 3]), np.array([1, 2, 3, 2])).tolist() == [True, False, True, True]


def test_max_targets_subsamples(rng):
    data = random_dataset(n_users=60, seed=2, min_items=2)
    res = ReIdentification(m=(1, 2), max_targets=25).run(target_of(data), rng=rng)
    assert res.metrics["targets_m1"] == 25 and res.metrics["eligible_m1"] == 60


# ---------------------------------------------------------------------- the two exact algorithms agree
class _Pruned(ReIdentification):
    popular_items = 6  # most items are "rare": exercises every branch of the threshold search
    pair_budget = 37  # many small batches


class _Counted(ReIdentification):
    pair_budget = 50  # every item popular: m <= 2 goes through the counting shortcut


class _Enumerated(ReIdentification):
    _force_enumeration = True


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_users=st.integers(3, 60), n_items=st.integers(4, 70),
       density=st.floats(0.03, 0.5), keep=st.floats(0.3, 1.0), ecc=st.sampled_from([0.0, 0.5, 1.5, 3.0]),
       known=st.sampled_from(["random", "rarest"]))
def test_pruned_search_equals_full_enumeration(seed, n_users, n_items, density, keep, ecc, known):
    data = random_dataset(n_users=n_users, n_items=n_items, density=density, seed=seed)
    released = data.subset(np.random.default_rng(seed).random(data.n_interactions) < keep)
    target = target_of(data, released)
    ms = tuple(m for m in (1, 2, 3, 5) if m <= data.user_counts.max())
    results = [cls(m=ms, known=known, eccentricity=ecc).run(target, rng=np.random.default_rng(seed)).metrics
               for cls in (_Pruned, _Counted, _Enumerated)]
    for other in results[1:]:
        assert other == results[0]


def test_scores_match_a_dense_reference():
    """Scoreboard-RH written out densely, target by target, against both algorithms."""
    rng = np.random.default_rng(0)
    for trial in range(15):
        data = random_dataset(n_users=40, n_items=30, density=0.2, seed=trial, min_items=3)
        released = data.subset(rng.random(data.n_interactions) < 0.8)
        R = released.to_csr(binary=True).toarray()
        orig = data.to_csr(binary=True)
        users = np.flatnonzero(R.sum(1) > 0)
        m = 1 + trial % 3
        aux = np.array([rng.choice(orig.indices[orig.indptr[u]:orig.indptr[u + 1]], m, replace=False) for u in users])
        w = 1 / np.log(np.maximum(R.sum(0), 2))
        cand = np.flatnonzero(R.sum(1) > 0)
        expect_hit, expect_unique = [], []
        for k, t in enumerate(users):
            s = R[cand][:, aux[k]] @ w[aux[k]]
            order = np.argsort(-s, kind="stable")
            gap = s[order[0]] - s[order[1]]
            expect_hit.append(gap > 1e-9 and gap >= 1.5 * s.std() and cand[order[0]] == t)
            full = R[cand][:, aux[k]].sum(1) == m
            expect_unique.append(full.sum() == 1 and full[np.searchsorted(cand, t)])
        for cls, popular in ((_Pruned, True), (_Counted, True), (_Enumerated, False)):
            attack = cls(m=m)
            rel = _Release(released, popular=popular, cap_items=attack.popular_items, cap_bytes=attack.bitmap_bytes,
                           days=None)
            run = attack._prune if popular else lambda r, u, a, attack=attack: attack._enumerate(r, None, u, a, None)
            hit, unique = run(rel, users, aux)
            np.testing.assert_array_equal(hit, expect_hit)
            np.testing.assert_array_equal(unique, expect_unique)


# ---------------------------------------------------------------------- contract
def test_deterministic_and_input_untouched():
    data = random_dataset(seed=4, min_items=3)
    before = data.checksum()
    a = ReIdentification(m=(1, 3), known="rarest").run(target_of(data), rng=np.random.default_rng(9))
    b = ReIdentification(m=(1, 3), known="rarest").run(target_of(data), rng=np.random.default_rng(9))
    assert a == b
    assert data.checksum() == before


def test_results_hold_no_ids(rng):
    original, _ = disjoint()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = ReIdentification(m=(1, 2)).run(target_of(original, empty_like(original)), rng=rng)
    text = repr(res.to_dict()) + " ".join(str(w.message) for w in caught)
    assert SECRET not in text
    assert all(isinstance(v, float) for v in res.metrics.values())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"m": 0}, r"^reidentification\.m must be positive integers; got \[0\]\.$"),
    ({"m": (1, -2, 0)}, r"^reidentification\.m must be positive integers; got \[-2, 0\]\.$"),
    ({"m": ()}, r"^reidentification\.m must be positive integers; got \[\]\.$"),
    ({"m": 1.5}, r"^reidentification\.m must be positive integers"),
    ({"m": True}, r"^reidentification\.m must be positive integers"),
    ({"known": "popular"}, r"^reidentification\.known must be one of \['random', 'rarest'\]; got 'popular'\.$"),
    ({"days": -1}, r"^reidentification\.days must be a finite number >= 0; got -1\.$"),
    ({"eccentricity": float("nan")}, r"^reidentification\.eccentricity must be a finite number"),
    ({"max_targets": 0}, r"^reidentification\.max_targets must be an integer >= 1 or null; got 0\.$"),
    ({"demographics": "yes"}, r"^reidentification\.demographics must be true or false"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ReIdentification(**kwargs)


def test_m_longer_than_every_history(rng):
    original, _ = disjoint(per_user=3)
    with pytest.raises(ConfigError, match=r"^reidentification\.m must not exceed the longest original history "
                                          r"\(3 items\); got \[4, 8\]\.$"):
        ReIdentification(m=(1, 4, 8)).run(target_of(original), rng=rng)


def test_missing_timestamps_and_quasi_identifiers(rng):
    data = random_dataset(seed=0, min_items=2)
    no_time = data.with_interactions(data.user_idx, data.item_idx, data.weight, None)
    with pytest.raises(DataValidationError, match=r"^reidentification\.days needs timestamps"):
        ReIdentification(m=1, days=3).run(target_of(data, no_time), rng=rng)
    with pytest.raises(DataValidationError, match=r"^reidentification\.demographics needs quasi-identifiers"):
        ReIdentification(m=1, demographics=True).run(target_of(data), rng=rng)


def test_run_checks_its_arguments():
    data = random_dataset(seed=0)
    with pytest.raises(DataValidationError, match="must be an AttackTarget"):
        ReIdentification(m=1).run(data, rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"must be a numpy\.random\.Generator"):
        ReIdentification(m=1).run(target_of(data), rng=0)
