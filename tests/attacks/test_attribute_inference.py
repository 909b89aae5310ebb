import warnings

import numpy as np
import pandas as pd
import pytest
from attack_helpers import SECRET, FakeModel, empty_like, random_dataset

from privrec.attacks import AttackTarget, AttributeInference
from privrec.errors import ConfigError, DataWarning
from privrec.models import Popularity
from privrec.testing.attacks import AttackConformance

N_USERS = 300


class TestAttributeInferenceConformance(AttackConformance):
    model_metrics = embedding_metrics = ("gender_auc_factors", "gender_balanced_accuracy_factors")

    def make_attack(self):
        return AttributeInference(folds=3)

    def bad_configs(self):
        return [{"folds": 1}, {"sources": ("ratings",)}, {"C": 0.0}, {"attribute": ""}]


def key_items(data):
    """Three items held by about 40%, 30% and 25% of the users."""
    share = np.asarray(data.to_csr(binary=True).mean(axis=0)).ravel()
    return [int(np.argmin(np.abs(share - target))) for target in (0.4, 0.3, 0.25)]


def planted(seed=0, *, n_users=N_USERS):
    """Users holding item key_items[0] are "F", the others "M"; age_band is a function of two other items;
    noise is random; constant has one value."""
    base = random_dataset(n_users=n_users, n_items=40, density=0.15, seed=seed)
    holds = np.asarray(base.to_csr(binary=True)[:, key_items(base)].toarray(), dtype=bool)
    rng = np.random.default_rng(seed + 1)
    attrs = pd.DataFrame({
        "gender": np.where(holds[:, 0], "F", "M"),
        "age_band": np.select([holds[:, 1], holds[:, 2]], ["18-24", "25-34"], "35-44"),
        "noise": rng.choice(["a", "b"], n_users),
        "constant": "x",
    })
    return base.with_interactions(base.user_idx, base.item_idx, base.weight, base.timestamp, user_attributes=attrs)


def target_of(data, model=None, released=None):
    return AttackTarget(original=data, released=data if released is None else released, test=empty_like(data),
                        model=model)


def test_planted_attribute_is_recovered(rng):
    data = planted()
    assert 0.2 < (data.user_attributes["gender"] == "F").mean() < 0.8
    res = AttributeInference(sources=("released", "raw_to_released")).run(target_of(data), rng=rng)
    assert res.metrics["gender_auc_released"] >= 0.95
    assert res.metrics["gender_balanced_accuracy_released"] >= 0.9
    assert res.metrics["gender_auc_raw_to_released"] >= 0.95
    assert res.metrics["gender_users_released"] == N_USERS
    assert res.missing == {}


def test_random_attribute_is_at_chance(rng):
    data = planted(seed=3)
    res = AttributeInference(attribute="noise", sources=("released",)).run(target_of(data), rng=rng)
    # null AUC sd ~ sqrt((n+1) / (12 n1 n2)) ~ 0.033 for 300 users; 4 sd
    assert abs(res.metrics["noise_auc_released"] - 0.5) < 0.135
    assert abs(res.metrics["noise_balanced_accuracy_released"] - 0.5) < 0.135


def test_multiclass_uses_macro_one_vs_rest_auc(rng):
    data = planted(seed=5)
    res = AttributeInference(attribute="age_band", sources=("released",)).run(target_of(data), rng=rng)
    assert res.metrics["age_band_auc_released"] >= 0.9
    assert res.metrics["age_band_balanced_accuracy_released"] > 1 / 3 + 0.3


def test_user_factors(rng):
    data = planted(seed=2)
    holds = data.to_csr(binary=True)[:, key_items(data)[0]].toarray().ravel()
    noise = np.random.default_rng(0).normal(size=(data.n_users, 3))
    informative = FakeModel(np.zeros((data.n_users, data.n_items)),
                            factors=np.column_stack([holds + 0.1 * noise[:, 0], noise[:, 1:], np.ones(data.n_users)]))
    res = AttributeInference(sources=("factors",)).run(target_of(data, informative), rng=rng)
    assert res.metrics["gender_auc_factors"] >= 0.95
    # users without training data are left out of the factors source
    has_data = np.arange(data.n_users) % 3 > 0
    partial = FakeModel(np.zeros((data.n_users, data.n_items)), factors=informative.factors,
                        has_data=has_data)
    res = AttributeInference(sources=("factors",)).run(target_of(data, partial), rng=rng)
    assert res.metrics["gender_users_factors"] == has_data.sum()


def test_raw_to_released_sees_through_a_release_trained_on_clean_data(rng):
    data = planted(seed=4)
    # the release swaps the telling item for another one: a classifier trained on the release learns the
    # swap, one trained on raw profiles does not
    key = key_items(data)[0]
    other = int(np.argmin(np.abs(np.asarray(data.to_csr(binary=True).mean(axis=0)).ravel() - 0.1)))
    item = np.where(data.item_idx == key, other, np.where(data.item_idx == other, key, data.item_idx))
    released = data.with_interactions(data.user_idx, item, data.weight, data.timestamp)
    res = AttributeInference(sources=("released", "raw_to_released")).run(target_of(data, released=released), rng=rng)
    assert res.metrics["gender_auc_released"] >= 0.95
    assert res.metrics["gender_auc_raw_to_released"] < 0.8


def test_missing_model_or_factors_is_recorded(rng):
    data = planted()
    res = AttributeInference(sources=("factors",)).run(target_of(data), rng=rng)
    assert set(res.missing) == {"gender_auc_factors", "gender_balanced_accuracy_factors"}
    assert res.missing["gender_auc_factors"] == "no model was given."
    pop = Popularity().fit(data, rng=np.random.default_rng(0))
    res = AttributeInference(sources=("released", "factors")).run(target_of(data, pop), rng=rng)
    assert "has no user factors" in res.missing["gender_auc_factors"]
    assert "gender_auc_released" in res.metrics


def test_single_class_and_tiny_classes_are_missing_with_a_warning(rng):
    data = planted()
    with pytest.warns(DataWarning, match="1 class"):
        res = AttributeInference(attribute="constant", sources=("released",)).run(target_of(data), rng=rng)
    assert "1 class(es)" in res.missing["constant_auc_released"]
    assert "constant_auc_released" not in res.metrics
    attrs = data.user_attributes.copy()
    attrs["rare"] = np.where(np.arange(data.n_users) < 3, "y", "n")  # 3 members < 5 folds
    rare = data.with_interactions(data.user_idx, data.item_idx, data.weight, data.timestamp, user_attributes=attrs)
    with pytest.warns(DataWarning, match="fewer than folds=5"):
        res = AttributeInference(attribute="rare", sources=("released",)).run(target_of(rare), rng=rng)
    assert "a class with 3 users" in res.missing["rare_auc_released"]
    res = AttributeInference(attribute="rare", folds=3, sources=("released",)).run(target_of(rare), rng=rng)
    assert "rare_auc_released" in res.metrics


def test_missing_labels_are_left_out(rng):
    data = planted()
    attrs = data.user_attributes.copy()
    attrs.loc[:49, "gender"] = pd.NA
    masked = data.with_interactions(data.user_idx, data.item_idx, data.weight, data.timestamp, user_attributes=attrs)
    res = AttributeInference(sources=("released",)).run(target_of(masked), rng=rng)
    assert res.metrics["gender_users_released"] == N_USERS - 50


def test_opted_out_users_are_left_out(rng):
    data = planted()
    released = data.subset(data.user_idx >= 100)
    res = AttributeInference(sources=("released",)).run(target_of(data, released=released), rng=rng)
    assert res.metrics["gender_users_released"] == N_USERS - 100


def test_unknown_attribute_is_missing_with_the_columns(rng):
    """An attribute the data lacks (a log without demographics) is recorded as missing, never an error."""
    attack = AttributeInference(attribute="income", sources=("released", "factors"))
    res = attack.run(target_of(planted()), rng=rng)
    reason = "the data has no user attribute 'income'; columns are ['age_band', 'constant', 'gender', 'noise']."
    assert res.metrics == {}
    assert res.missing == {f"income_{m}_{s}": reason for m in ("auc", "balanced_accuracy")
                           for s in ("released", "factors")}
    assert attack.missing_metrics(["gender", "income"]) == {}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"attribute": ""}, r"^attribute_inference\.attribute must be a column name"),
    ({"folds": 1}, r"^attribute_inference\.folds must be an integer >= 2; got 1\.$"),
    ({"sources": ("released", "ratings")}, r"^attribute_inference\.sources must be distinct names from"),
    ({"sources": ()}, r"^attribute_inference\.sources must be distinct names from"),
    ({"sources": ("released", "released")}, r"^attribute_inference\.sources must be distinct names from"),
    ({"max_iter": 0}, r"^attribute_inference\.max_iter must be an integer >= 1; got 0\.$"),
    ({"C": 0.0}, r"^attribute_inference\.C must be a finite number > 0; got 0\.0\.$"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        AttributeInference(**kwargs)


def test_deterministic_and_no_ids(rng):
    data = planted()
    before = data.checksum()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = AttributeInference(sources=("released",)).run(target_of(data), rng=np.random.default_rng(1))
        AttributeInference(attribute="constant", sources=("released",)).run(target_of(data), rng=rng)
    b = AttributeInference(sources=("released",)).run(target_of(data), rng=np.random.default_rng(1))
    assert a == b
    assert data.checksum() == before
    text = repr(a.to_dict()) + " ".join(str(w.message) for w in caught)
    assert SECRET not in text and "'F'" not in text and "'x'" not in text  # no ids, no class labels
