"""The attacks on real MovieLens 100K (raw data: released = original)."""

import numpy as np
import pytest

from privrec.attacks import AttackTarget, AttributeInference, DPAudit, MembershipInference, ReIdentification
from privrec.data.loaders import MovieLens100K
from privrec.models import ALS, DPALS


@pytest.fixture(scope="module")
def ml100k(shared_data_dir):
    data = MovieLens100K().load(shared_data_dir)
    rng = np.random.default_rng(0)
    is_test = rng.random(data.n_interactions) < 0.2
    return data.subset(~is_test), data.subset(is_test)


def test_gender_is_inferable_from_profiles(ml100k, rng):
    train, test = ml100k
    res = AttributeInference(sources=("released",)).run(AttackTarget(original=train, released=train, test=test),
                                                        rng=rng)
    # Weinsberg et al. report about 0.8 on ML-1M with far more ratings per user; 0.7-0.8 here
    assert 0.6 <= res.metrics["gender_auc_released"] <= 0.9
    assert res.metrics["gender_users_released"] == 943


def test_reidentification_rises_with_knowledge(ml100k, rng):
    train, test = ml100k
    res = ReIdentification(m=(1, 8)).run(AttackTarget(original=train, released=train, test=test), rng=rng)
    assert res.metrics["reid_rate_m8"] > res.metrics["reid_rate_m1"] + 0.1
    assert res.metrics["unicity_m8"] > 0.5  # most users are unique given 8 random movies


def test_membership_of_an_als_model(ml100k, rng):
    train, test = ml100k
    model = ALS(factors=32, regularization=0.05, iterations=10).fit(train, rng=np.random.default_rng(0))
    res = MembershipInference().run(AttackTarget(original=train, released=train, test=test, model=model), rng=rng)
    assert res.metrics["mia_auc_random"] > res.metrics["mia_auc_test"] > 0.5


class _BrokenDPALS(DPALS):
    """DP-ALS with its noise cut 1000x (the sensitivity it scales by), still claiming the configured epsilon."""

    def sensitivity(self) -> float:
        return super().sensitivity() / 1000


@pytest.mark.parametrize(("model", "flagged"), [(_BrokenDPALS(epsilon=1.0), True), (DPALS(epsilon=1.0), False)])
def test_dp_audit_flags_a_broken_dp_als_and_not_an_honest_one(ml100k, model, flagged):
    train, test = ml100k
    model = model.fit(train, rng=np.random.default_rng(0))
    res = DPAudit().run(AttackTarget(original=train, released=train, test=test, model=model),
                        rng=np.random.default_rng(0))
    assert res.metrics["dp_audit_canaries"] == 500 and res.metrics["dp_audit_guesses"] == 250
    assert res.metrics["dp_bound_violated"] == float(flagged)
    if flagged:  # every guess right: the largest bound 250 guesses can give
        assert res.metrics["epsilon_lower_bound"] > 4.0
    else:
        assert res.metrics["epsilon_lower_bound"] < 0.5
