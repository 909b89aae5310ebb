import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
from attack_helpers import SECRET, FakeModel, random_dataset
from scipy.stats import beta, binom

from privrec.attacks import AttackTarget, DPAudit
from privrec.attacks.dp_audit import (
    clopper_pearson,
    one_run_epsilon_lower_bound,
    one_run_p_value,
    rating_epsilon_lower_bound,
)
from privrec.errors import ConfigError, DataValidationError
from privrec.models import ALS, DPALS, DPItemKNN, Popularity
from privrec.privacy import ConsentDrop, PrivacyReport, RandomizedResponse
from privrec.testing.attacks import AttackConformance, attack_target

MODEL_METRICS = ("epsilon_lower_bound", "epsilon_claimed", "dp_bound_violated")
TREATMENT_METRICS = ("epsilon_lower_bound_treatment", "epsilon_claimed_treatment", "dp_bound_violated_treatment")
_DEFAULT = object()


class BrokenDPALS(DPALS):
    """A planted bug: the noise is 1000x too small (the sensitivity it scales by is divided by 1000), while
    the accountant still reports the epsilon of the configured noise multiplier."""

    def sensitivity(self) -> float:
        return super().sensitivity() / 1000


class BrokenDPItemKNN(DPItemKNN):
    def sensitivity(self) -> float:
        return super().sensitivity() / 1000


class TestDPAuditConformance(AttackConformance):
    model_metrics = MODEL_METRICS

    def make_attack(self):
        return DPAudit(canaries=12)

    def make_target(self, *, model=_DEFAULT):
        # a DP model, so the checks (input untouched, same seed same result, pickling) cover the canary game
        return attack_target(model=DPALS(factors=4, epsilon=2.0) if model is _DEFAULT else model)

    def bad_configs(self):
        return [{"canaries": 1}, {"canaries": 2.5}, {"guess_share": 0}, {"guess_share": 0.6},
                {"confidence": 1.0}, {"confidence": 0}, {"design": "real"}]


# ---------------------------------------------------------------------- data
def population(seed=0, n_users=150, n_items=160):
    """Skewed random profiles with a long tail of rarely held items (room for crafted canaries)."""
    return random_dataset(n_users=n_users, n_items=n_items, density=0.08, seed=seed, min_items=3)


def target_for(model, data=None, seed=0, report=None):
    data = population(seed) if data is None else data
    model = model.fit(data, rng=np.random.default_rng(seed + 1))
    return AttackTarget(original=data, released=data, test=data.subset(np.zeros(data.n_interactions, bool)),
                        model=model, report=report)


# ---------------------------------------------------------------------- the planted violation
@pytest.mark.parametrize("unit", ["user", "interaction"])
def test_a_broken_dp_als_is_flagged(unit):
    res = DPAudit(canaries=60).run(target_for(BrokenDPALS(factors=4, epsilon=1.0, unit=unit)),
                                   rng=np.random.default_rng(0))
    assert res.metrics["epsilon_claimed"] == pytest.approx(1.0, abs=1e-3)
    assert res.metrics["dp_bound_violated"] == 1.0
    assert res.metrics["epsilon_lower_bound"] > 1.0
    assert res.metrics["dp_audit_guesses"] == 30 and res.metrics["dp_audit_canaries"] == 60


@pytest.mark.parametrize("unit", ["user", "interaction"])
def test_an_honest_dp_als_is_not_flagged(unit):
    res = DPAudit(canaries=60).run(target_for(DPALS(factors=4, epsilon=1.0, unit=unit)), rng=np.random.default_rng(0))
    assert res.metrics["dp_bound_violated"] == 0.0
    assert res.metrics["epsilon_lower_bound"] <= res.metrics["epsilon_claimed"]


def test_a_broken_dp_itemknn_is_flagged_and_an_honest_one_is_not():
    broken = DPAudit(canaries=60).run(target_for(BrokenDPItemKNN(epsilon=1.0)), rng=np.random.default_rng(0))
    honest = DPAudit(canaries=60).run(target_for(DPItemKNN(epsilon=1.0)), rng=np.random.default_rng(0))
    assert broken.metrics["dp_bound_violated"] == 1.0
    assert honest.metrics["dp_bound_violated"] == 0.0


def test_real_user_canaries_run_and_stay_sound():
    res = DPAudit(canaries=60, design="users").run(target_for(DPALS(factors=4, epsilon=1.0)),
                                                   rng=np.random.default_rng(0))
    assert res.metrics["dp_bound_violated"] == 0.0
    assert res.metrics["dp_audit_canaries"] == 60


def test_the_statistic_reads_only_released_state():
    """Scrambling the model's per-user factors (not protected by DP) changes nothing: the canaries are scored
    from the released item factors and their own rows only."""
    target = target_for(BrokenDPALS(factors=4, epsilon=1.0))
    a = DPAudit(canaries=40).run(target, rng=np.random.default_rng(2))
    target.model.user_factors_ = np.random.default_rng(9).normal(size=target.model.user_factors_.shape).astype(
        np.float32)
    b = DPAudit(canaries=40).run(target, rng=np.random.default_rng(2))
    assert a == b


def test_the_refit_is_a_fresh_copy_and_the_target_model_is_untouched():
    target = target_for(DPALS(factors=4, epsilon=1.0))
    before = target.model.item_embeddings().copy()
    DPAudit(canaries=30).run(target, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(target.model.item_embeddings(), before)
    assert dataclasses.replace(target.model).privacy_report() is None  # replace() is unfitted


# ---------------------------------------------------------------------- runs without a DP claim
@pytest.mark.parametrize("model", [None, ALS(factors=4, iterations=2), Popularity(), DPALS(factors=4, epsilon="inf"),
                                   DPItemKNN(epsilon="inf")])
def test_no_claim_means_missing_with_a_reason(model):
    target = attack_target(model=model)
    res = DPAudit().run(target, rng=np.random.default_rng(0))
    assert res.metrics == {}
    assert set(res.missing) == set(MODEL_METRICS + TREATMENT_METRICS)
    assert all(reason.strip() and "\n" not in reason for reason in res.missing.values())
    if model is not None and getattr(model, "epsilon", None) == math.inf:
        assert "epsilon = inf" in res.missing["epsilon_lower_bound"]


class _NeverFit:
    """A model without a DP claim whose fit, or any copy, would fail the test: the audit must not touch it."""

    def privacy_report(self):
        return None

    def fit(self, *args, **kwargs):  # pragma: no cover - must not be called
        raise AssertionError("the audit fitted a model without a DP claim")


def test_no_claim_costs_no_fit():
    data = population()
    target = AttackTarget(original=data, released=data, test=data, model=_NeverFit())
    res = DPAudit().run(target, rng=np.random.default_rng(0))
    assert "privacy_report() is None" in res.missing["epsilon_lower_bound"]


def test_a_model_the_audit_cannot_score_is_missing():
    class Claims(FakeModel):
        def privacy_report(self):
            return PrivacyReport(transform="fake", guarantee="(1, 0)-DP", metrics={"epsilon": 1.0, "delta": 0.0},
                                 groups={"unit": {"user": {"epsilon": 1.0}}})

    data = population()
    target = AttackTarget(original=data, released=data, test=data, model=Claims(np.zeros((150, 160))))
    res = DPAudit().run(target, rng=np.random.default_rng(0))
    assert "exposes no released state" in res.missing["epsilon_lower_bound"]


# ---------------------------------------------------------------------- the treatment: randomized response
def rr_target(rr, seed=0):
    data = population(seed)
    treated = rr.apply(data, rng=np.random.default_rng(seed))
    return AttackTarget(original=data, released=treated.data, test=data.subset(np.zeros(data.n_interactions, bool)),
                        report=treated.report)


@pytest.mark.parametrize("variant", ["optimized", "symmetric"])
def test_randomized_response_is_audited_at_unit_rating(variant):
    rr = RandomizedResponse(epsilon=2.0, variant=variant)
    res = DPAudit().run(rr_target(rr), rng=np.random.default_rng(0))
    assert res.metrics["epsilon_claimed_treatment"] == pytest.approx(rr.epsilon_per_item)
    assert res.metrics["dp_bound_violated_treatment"] == 0.0
    # a tight test: thousands of cells on each side, so the bound is within a few tenths of the claim
    assert rr.epsilon_per_item - 0.6 < res.metrics["epsilon_lower_bound_treatment"] <= rr.epsilon_per_item
    assert set(res.missing) == set(MODEL_METRICS)  # no model


@dataclasses.dataclass(frozen=True, kw_only=True)
class OverclaimingRR(RandomizedResponse):
    """Randomized response whose report claims a quarter of the per-item epsilon it spends."""

    def _measure(self, original, indptr, indices, released):
        report = super()._measure(original, indptr, indices, released)
        metrics = {**report.metrics, "epsilon_per_item": report.metrics["epsilon_per_item"] / 4}
        return dataclasses.replace(report, metrics=metrics)


def test_an_overclaiming_randomized_response_is_flagged():
    res = DPAudit().run(rr_target(OverclaimingRR(epsilon=2.0)), rng=np.random.default_rng(0))
    assert res.metrics["dp_bound_violated_treatment"] == 1.0
    assert res.metrics["epsilon_lower_bound_treatment"] > res.metrics["epsilon_claimed_treatment"]


def test_other_treatments_and_inf_are_missing():
    data = population()
    for report in (ConsentDrop(rate=0.3).apply(data, rng=np.random.default_rng(0)).report,
                   RandomizedResponse(epsilon=math.inf).apply(data, rng=np.random.default_rng(0)).report, None):
        res = DPAudit().run(AttackTarget(original=data, released=data, test=data, report=report),
                            rng=np.random.default_rng(0))
        assert set(res.missing) == set(MODEL_METRICS + TREATMENT_METRICS)


def test_target_report_must_be_a_privacy_report():
    data = population()
    with pytest.raises(DataValidationError, match=r"^AttackTarget\.report must be a privrec PrivacyReport"):
        AttackTarget(original=data, released=data, test=data, report={"epsilon": 1})


def test_run_attacks_hands_the_treatment_report_to_the_audit():
    from privrec.experiment import run_attacks

    data = population()
    treated = RandomizedResponse(epsilon=2.0).apply(data, rng=np.random.default_rng(0))
    split = SimpleNamespace(train=data, test=data.subset(np.zeros(data.n_interactions, bool)))
    metrics, missing = run_attacks({"dp_audit": DPAudit()}, split, treated, None, np.random.default_rng(0))
    assert metrics["attack/dp_bound_violated_treatment"] == 0.0
    assert "epsilon_lower_bound" in missing and SECRET not in repr(missing)


# ---------------------------------------------------------------------- the bounds (known answers)
def test_clopper_pearson_known_answers():
    assert clopper_pearson(10, 10, confidence=0.95, sided="lower") == (pytest.approx(0.05 ** 0.1), 1.0)
    assert clopper_pearson(0, 10, confidence=0.95, sided="upper") == (0.0, pytest.approx(1 - 0.05 ** 0.1))
    lo, hi = clopper_pearson(7, 20, confidence=0.9)
    assert lo == pytest.approx(beta.ppf(0.05, 7, 14)) and hi == pytest.approx(beta.ppf(0.95, 8, 13))
    # the defining property: P[Bin(n, lo) >= k] = alpha
    lo, _ = clopper_pearson(37, 50, confidence=0.95, sided="lower")
    assert binom.sf(36, 50, lo) == pytest.approx(0.05)


def test_one_run_bound_without_delta_is_the_logit_of_clopper_pearson():
    for v, r in ((100, 100), (60, 100), (19, 20), (130, 250)):
        p_lb = beta.ppf(0.05, v, r - v + 1)
        expected = max(0.0, math.log(p_lb / (1 - p_lb)))
        assert one_run_epsilon_lower_bound(v, r, m=2 * r, delta=0.0, confidence=0.95) == pytest.approx(expected)
    # all of 100 right: p_lb = 0.05^(1/100), eps_lb = logit(p_lb)
    assert one_run_epsilon_lower_bound(100, 100, m=200, delta=0.0, confidence=0.95) == pytest.approx(3.49297, abs=1e-5)
    assert one_run_epsilon_lower_bound(50, 100, m=200, delta=0.0, confidence=0.95) == 0.0


def test_one_run_bound_with_delta_is_smaller_and_inverts_the_p_value():
    for v, r in ((100, 100), (80, 100), (40, 50)):
        pure = one_run_epsilon_lower_bound(v, r, m=2 * r, delta=0.0, confidence=0.95)
        approx = one_run_epsilon_lower_bound(v, r, m=2 * r, delta=1e-4, confidence=0.95)
        assert approx <= pure
        assert approx > 0.9 * pure
        assert one_run_p_value(v, r, m=2 * r, epsilon=approx, delta=1e-4) == pytest.approx(0.05, abs=1e-6)
    # delta large enough that 2 m delta alone exceeds beta: nothing can be ruled out
    assert one_run_epsilon_lower_bound(100, 100, m=200, delta=0.01, confidence=0.95) == 0.0


def test_one_run_bound_false_alarm_rate_is_at_most_beta():
    """Guesses of an eps-DP mechanism at its limit (accuracy e^eps / (1 + e^eps)): the bound exceeds eps in at
    most 5% of runs (2000 simulated runs: the binomial sd of the rate is 0.005; tolerance 3 sd)."""
    rng = np.random.default_rng(0)
    eps, r = 1.0, 100
    v = rng.binomial(r, 1 / (1 + math.exp(-eps)), size=2000)
    flagged = np.mean([one_run_epsilon_lower_bound(int(x), r, m=200, delta=0.0, confidence=0.95) > eps for x in v])
    assert flagged <= 0.05 + 0.015


def test_rating_bound_known_answer():
    # TPR exactly 1/2 and FPR 1/(e+1) on a huge sample: the bound approaches log(p/q) = log((e + 1) / 2)
    n = 10**9
    bound = rating_epsilon_lower_bound(n // 2, n, round(n / (math.e + 1)), n, confidence=0.95)
    assert bound == pytest.approx(math.log((math.e + 1) / 2), abs=1e-3)
    assert bound < math.log((math.e + 1) / 2)
    assert rating_epsilon_lower_bound(5, 10, 5, 10, confidence=0.95) == 0.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"canaries": 1}, r"^dp_audit\.canaries must be an integer >= 2; got 1\.$"),
    ({"guess_share": 0.6}, r"^dp_audit\.guess_share must be in \(0, 0\.5\]"),
    ({"confidence": 1.0}, r"^dp_audit\.confidence must be in \(0, 1\); got 1\.0\.$"),
    ({"design": "real"}, r"^dp_audit\.design must be one of \['crafted', 'users'\]; got 'real'\.$"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DPAudit(**kwargs)


def test_default_config_lists_the_audit_last():
    """The audit is in the default attack list, last (the other attacks keep their child streams: bit-identical
    metrics), and its config group builds."""
    import yaml

    from privrec.cli import config_dir
    from privrec.config import build

    conf = config_dir()
    defaults = yaml.safe_load((conf / "config.yaml").read_text())["defaults"]
    attacks = next(d["attack"] for d in defaults if isinstance(d, dict) and "attack" in d)
    assert attacks[-1] == "dp_audit" and attacks[:-1] == ["reidentification", "attribute_inference",
                                                          "membership_inference"]
    node = yaml.safe_load((conf / "attack" / "dp_audit.yaml").read_text())
    # the file states the defaults, but for a stricter test in runs (an honest mechanism flagged in <= 1%)
    assert build(node, name="attack")["dp_audit"] == DPAudit(confidence=0.99)
