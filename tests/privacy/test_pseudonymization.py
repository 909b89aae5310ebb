import hashlib
import hmac

import numpy as np
import pytest

from privrec.data.dataset import Vocabulary
from privrec.errors import ConfigError, PrivacyGuaranteeError
from privrec.privacy.pseudonymization import Pseudonymization
from privrec.testing.data import tiny_dataset
from privrec.testing.privacy import TransformConformance


class TestKeyedHash(TransformConformance):
    def make_transform(self):
        return Pseudonymization()

    def bad_configs(self):
        return [{"method": "nope"}, {"key": ""}, {"key": 123}, {"method": "permutation", "key": "secret"},
                {"items": "yes"}]


class TestKeyedHashWithKeyAndItems(TransformConformance):
    def make_transform(self):
        return Pseudonymization(key="not-so-secret", items=True)


class TestPermutation(TransformConformance):
    def make_transform(self):
        return Pseudonymization(method="permutation")


class TestPermutationItems(TransformConformance):
    def make_transform(self):
        return Pseudonymization(method="permutation", items=True)


@pytest.mark.parametrize("transform", [Pseudonymization(), Pseudonymization(key="k", items=True),
                                       Pseudonymization(method="permutation", items=True)])
def test_no_original_id_survives_and_behaviour_is_untouched(transform):
    data = tiny_dataset(n_users=50)
    res = transform.apply(data, rng=np.random.default_rng(0))
    out = res.data
    assert out.n_users == data.n_users and len(out.users) == len(data.users)
    assert not set(out.users.ids) & set(data.users.ids)
    if transform.items:
        assert not set(out.items.ids) & set(data.items.ids)
    else:
        assert out.items == data.items
    for name in ("user_idx", "item_idx", "weight", "timestamp"):
        assert np.array_equal(getattr(out, name), getattr(data, name))
    assert out.user_attributes.equals(data.user_attributes)
    m = res.report.metrics
    assert m["users_pseudonymized"] == data.n_users and m["ids_reused"] == 0 and m["interactions_changed"] == 0
    assert m["items_pseudonymized"] == (data.n_items if transform.items else 0)
    assert "linkage" in res.report.guarantee


def test_keyed_hash_is_deterministic_for_a_key_and_is_hmac_sha256():
    data = tiny_dataset()
    a = Pseudonymization(key="s3cret").apply(data, rng=np.random.default_rng(1)).data
    b = Pseudonymization(key="s3cret").apply(data, rng=np.random.default_rng(2)).data
    c = Pseudonymization(key="other").apply(data, rng=np.random.default_rng(1)).data
    assert a.users == b.users
    assert not set(a.users.ids) & set(c.users.ids)
    assert a.users.ids[7] == hmac.new(b"s3cret", b"u7", hashlib.sha256).hexdigest()


def test_drawn_key_follows_the_seed():
    data = tiny_dataset()
    a = Pseudonymization().apply(data, rng=np.random.default_rng(1)).data
    b = Pseudonymization().apply(data, rng=np.random.default_rng(2)).data
    assert not set(a.users.ids) & set(b.users.ids)


def test_permutation_is_a_bijection_onto_labels():
    data = tiny_dataset(n_users=30)
    a = Pseudonymization(method="permutation").apply(data, rng=np.random.default_rng(0)).data
    b = Pseudonymization(method="permutation").apply(data, rng=np.random.default_rng(1)).data
    labels = {f"p{i:06d}" for i in range(30)}
    assert set(a.users.ids) == labels and len(set(a.users.ids)) == 30
    assert set(b.users.ids) == labels and not np.array_equal(a.users.ids, b.users.ids)


def test_key_stays_out_of_repr_and_report():
    transform = Pseudonymization(key="hunter2")
    res = transform.apply(tiny_dataset(), rng=np.random.default_rng(0))
    assert "hunter2" not in repr(transform) and "hunter2" not in repr(res.report.to_dict())


def test_bad_key_message_does_not_show_the_key():
    with pytest.raises(ConfigError) as info:
        Pseudonymization(method="permutation", key="hunter2")
    assert "hunter2" not in str(info.value)


def test_labels_colliding_with_original_ids_raise():
    data = tiny_dataset(n_users=10)
    data = data.with_interactions(data.user_idx, data.item_idx, data.weight, data.timestamp,
                                  users=Vocabulary(np.array([f"p{i:06d}" for i in range(10)], dtype=object)))
    with pytest.raises(PrivacyGuaranteeError, match="no original id"):
        Pseudonymization(method="permutation").apply(data, rng=np.random.default_rng(0))
    Pseudonymization().apply(data, rng=np.random.default_rng(0))  # keyed hash is fine
