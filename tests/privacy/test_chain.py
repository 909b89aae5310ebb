"""Chain: steps in order, every report measured on the chain's final output, broken guarantees refused."""

import numpy as np
import pytest

from privrec.errors import ConfigError, PrivacyGuaranteeError
from privrec.privacy import (
    Chain,
    ConsentDrop,
    KAnonymity,
    Minimization,
    ProfileKAnonymity,
    Pseudonymization,
    RandomizedResponse,
)
from privrec.testing.data import tiny_dataset
from privrec.testing.privacy import TransformConformance


class TestConsentThenRandomizedResponse(TransformConformance):
    def make_transform(self):
        return Chain(steps={"consent": ConsentDrop(rate=0.3), "rr": RandomizedResponse(epsilon=1.0)})


class TestConsentThenKAnonymity(TransformConformance):
    def make_transform(self):
        return Chain(steps={"consent": ConsentDrop(rate=0.5), "kanon": KAnonymity(k=4)})


def test_opted_out_users_stay_out_of_later_steps():
    """Randomized response flips empty cells to 1 for everyone; an opted-out user's flips are not released."""
    data = tiny_dataset(n_users=40)
    res = Chain(steps={"consent": ConsentDrop(rate=0.5), "rr": RandomizedResponse(epsilon=0.5)}).apply(
        data, rng=np.random.default_rng(0))
    assert res.withheld.sum() == 20 and not np.any(res.data.user_counts[res.withheld])
    assert np.all(res.data.user_counts[~res.withheld] > 0)  # eps=0.5: every consenting user gets flips
    m = res.report.metrics
    assert m["consent/users_withheld"] == 20 and m["rr/output_interactions"] == res.data.n_interactions


def test_reports_are_measured_on_the_final_output():
    data = tiny_dataset(n_users=40)
    chain = Chain(steps={"minimize": Minimization(n=3, strategy="random"), "consent": ConsentDrop(rate=0.25)})
    res = chain.apply(data, rng=np.random.default_rng(0))
    m = res.report.metrics
    # minimization compares its input with the published output: the opted-out users' rows are gone too
    assert m["minimize/interactions_removed"] == data.n_interactions - res.data.n_interactions
    assert m["minimize/max_interactions_per_user"] == res.data.user_counts.max() <= 3
    # consent counts the users it withheld (its mask), with the interactions they had in its input
    assert m["consent/users_withheld"] == 10 and m["consent/interactions_withheld"] == 10 * 3 - sum(
        max(0, 3 - c) for c in data.user_counts[res.withheld])


def test_chain_of_consent_and_k_anonymity_reports_the_standalone_numbers():
    data = tiny_dataset(n_users=40)
    rng = np.random.default_rng(3)
    res = Chain(steps={"consent": ConsentDrop(rate=0.5), "kanon": KAnonymity(k=4)}).apply(data, rng=rng)
    consent_rng = np.random.default_rng(3).spawn(2)[0]
    alone = ConsentDrop(rate=0.5).apply(data, rng=consent_rng)
    assert {k.removeprefix("consent/"): v for k, v in res.report.metrics.items() if k.startswith("consent/")} == (
        alone.report.metrics)
    assert {k.removeprefix("kanon/"): v for k, v in res.report.metrics.items() if k.startswith("kanon/")} == (
        KAnonymity(k=4).apply(data, rng=rng).report.metrics)  # every user's attribute row is partitioned


def test_a_later_step_that_breaks_a_guarantee_raises_one_line_naming_the_step():
    data = tiny_dataset(n_users=40, density=0.5)
    chain = Chain(steps={"profile": ProfileKAnonymity(k=4, dim=2), "rr": RandomizedResponse(epsilon=1.0)})
    with pytest.raises(PrivacyGuaranteeError) as info:
        chain.apply(data, rng=np.random.default_rng(0))
    message = str(info.value)
    assert message.startswith("chain.steps.profile: profile_k_anonymity output must have k_achieved >= 4; got 1 ")
    assert "after the later steps (rr)" in message and "\n" not in message
    chain = Chain(steps={"minimize": Minimization(n=2, strategy="random"), "rr": RandomizedResponse(epsilon=1.0)})
    with pytest.raises(PrivacyGuaranteeError, match=r"^chain\.steps\.minimize: minimization output must hold no "):
        chain.apply(data, rng=np.random.default_rng(0))
    # the other order holds: randomized response is post-processed, profiles are measured on the output
    res = Chain(steps={"rr": RandomizedResponse(epsilon=1.0), "profile": ProfileKAnonymity(k=4, dim=2)}).apply(
        data, rng=np.random.default_rng(0))
    assert res.report.metrics["profile/k_achieved"] >= 4


def test_last_step_keeps_its_own_report():
    res = Chain(steps={"consent": ConsentDrop(rate=0.2), "pseudo": Pseudonymization()}).apply(
        tiny_dataset(), rng=np.random.default_rng(0))
    assert res.report.groups["pseudo/key_source"] == {"random": {"users_pseudonymized": 30.0,
                                                                 "items_pseudonymized": 0.0}}


def test_bad_steps_are_refused():
    with pytest.raises(ConfigError, match="must name at least one"):
        Chain(steps={})
    with pytest.raises(ConfigError, match=r"^chain\.steps\.inner must be a single treatment; got a chain"):
        Chain(steps={"inner": Chain(steps={"c": ConsentDrop()})})
    with pytest.raises(ConfigError, match=r"^chain\.steps\.x must be a privacy transform"):
        Chain(steps={"x": 3})

    class NoMeasure:
        def apply(self, data, *, rng):  # pragma: no cover - never called
            raise AssertionError

    with pytest.raises(ConfigError, match=r"^chain\.steps\.x must be a transform with a measure"):
        Chain(steps={"x": NoMeasure()})
