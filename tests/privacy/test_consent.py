import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privrec.errors import ConfigError
from privrec.privacy import Chain, ConsentDrop, NoPrivacy
from privrec.testing.data import tiny_dataset
from privrec.testing.privacy import TransformConformance


class TestConsentRandom(TransformConformance):
    def make_transform(self):
        return ConsentDrop(rate=0.3)

    def bad_configs(self):
        return [{"rate": 1.0}, {"rate": -0.1}, {"rate": 1.5}, {"mechanism": "nope"},
                {"mechanism": "attribute"}, {"mechanism": "attribute", "attribute": "gender"},
                {"mechanism": "attribute", "attribute": "gender", "rates": {"F": 1.2}},
                {"strength": float("nan")}]


class TestConsentActivity(TransformConformance):
    def make_transform(self):
        return ConsentDrop(rate=0.4, mechanism="activity", strength=2.0)


class TestConsentAttribute(TransformConformance):
    def make_transform(self):
        return ConsentDrop(rate=0.0, mechanism="attribute", attribute="gender", rates={"F": 0.5, "M": 0.1})


class TestChain(TransformConformance):
    def make_transform(self):
        return Chain(steps={"a": ConsentDrop(rate=0.2), "b": ConsentDrop(rate=0.25)})


class TestNone(TransformConformance):
    def make_transform(self):
        return NoPrivacy()


def test_rate_message_is_one_line():
    with pytest.raises(ConfigError, match=r"^consent_drop.rate must be in \[0, 1\); got 1.5.$"):
        ConsentDrop(rate=1.5)


def test_exact_count_and_whole_users_withheld():
    data = tiny_dataset(n_users=40)
    res = ConsentDrop(rate=0.25).apply(data, rng=np.random.default_rng(1))
    assert res.withheld.sum() == 10
    assert res.report.metrics["users_withheld"] == 10
    kept = ~res.withheld
    # consenting users keep every interaction; withheld ones keep none
    np.testing.assert_array_equal(res.data.user_counts[kept], data.user_counts[kept])
    assert res.report.metrics["interactions_withheld"] == data.user_counts[res.withheld].sum()


def test_attribute_rates_per_group():
    data = tiny_dataset(n_users=200, seed=5)
    res = ConsentDrop(mechanism="attribute", attribute="gender", rates={"F": 0.5, "M": 0.0}, rate=0.0).apply(
        data, rng=np.random.default_rng(0))
    g = data.user_attributes["gender"].to_numpy()
    assert res.withheld[g == "M"].sum() == 0
    assert res.withheld[g == "F"].sum() == round(0.5 * (g == "F").sum())
    assert res.report.groups["gender"]["F"]["share_withheld"] == pytest.approx(0.5, abs=0.01)


def test_attribute_unknown_value_raises():
    with pytest.raises(ConfigError, match="never takes"):
        ConsentDrop(mechanism="attribute", attribute="gender", rates={"X": 0.5}).apply(
            tiny_dataset(), rng=np.random.default_rng(0))


def test_activity_strength_direction():
    data = tiny_dataset(n_users=400, density=0.2, seed=2)
    act = data.user_counts
    heavy = ConsentDrop(rate=0.3, mechanism="activity", strength=3.0).apply(data, rng=np.random.default_rng(0))
    light = ConsentDrop(rate=0.3, mechanism="activity", strength=-3.0).apply(data, rng=np.random.default_rng(0))
    assert act[heavy.withheld].mean() > act.mean() > act[light.withheld].mean()


@settings(max_examples=30, deadline=None)
@given(rate=st.floats(0, 0.99), seed=st.integers(0, 1000))
def test_property_no_opted_out_user_in_output(rate, seed):
    data = tiny_dataset(n_users=25, seed=seed % 7)
    res = ConsentDrop(rate=rate).apply(data, rng=np.random.default_rng(seed))
    assert not np.any(res.data.user_counts[res.withheld])
    assert res.withheld.sum() == round(rate * 25)
    assert res.data.n_users == data.n_users


def test_rate_zero_is_identity():
    data = tiny_dataset()
    res = ConsentDrop(rate=0.0).apply(data, rng=np.random.default_rng(0))
    assert res.data.checksum() == data.checksum()


class TestConsentAttributeOdds(TransformConformance):
    def make_transform(self):
        return ConsentDrop(rate=0.3, mechanism="attribute", attribute="gender", odds={"F": 3.0})

    def bad_configs(self):
        return [{"mechanism": "attribute", "attribute": "gender", "odds": {"F": 0.0}},
                {"mechanism": "attribute", "attribute": "gender", "odds": {"F": 2.0}, "rates": {"F": 0.2}}]


def test_attribute_odds_keep_overall_rate_and_skew_groups():
    data = tiny_dataset(n_users=400, seed=4)
    res = ConsentDrop(rate=0.3, mechanism="attribute", attribute="gender", odds={"F": 4.0}).apply(
        data, rng=np.random.default_rng(0))
    g = data.user_attributes["gender"].to_numpy()
    assert res.withheld.sum() == 120
    assert res.withheld[g == "F"].mean() > 2 * res.withheld[g == "M"].mean()
