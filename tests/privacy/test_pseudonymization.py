import hashlib
import hmac
import pickle

import numpy as np
import pytest

from privrec.data.dataset import Vocabulary
from privrec.errors import ConfigError, PrivacyGuaranteeError
from privrec.privacy import Chain
from privrec.privacy.pseudonymization import Pseudonymization
from privrec.testing.data import tiny_dataset
from privrec.testing.privacy import TransformConformance

ENV = "PRIVREC_PSEUDONYM_KEY"


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch):
    """Tests choose their key source explicitly; a key in the developer's environment must not leak in."""
    monkeypatch.delenv(ENV, raising=False)


def _fresh_labels_same_behaviour(conformance, vocabulary="users"):
    """Keys and permutations from the OS: same seed, same report and behaviour, different labels."""
    _, a = conformance._apply(seed=7)
    _, b = conformance._apply(seed=7)
    assert a.report == b.report
    for name in ("user_idx", "item_idx", "weight", "timestamp"):
        assert np.array_equal(getattr(a.data, name), getattr(b.data, name))
    assert not np.array_equal(getattr(a.data, vocabulary).ids, getattr(b.data, vocabulary).ids)


class TestKeyedHash(TransformConformance):
    def make_transform(self):
        return Pseudonymization()

    def bad_configs(self):
        return [{"method": "nope"}, {"key": "secret"}, {"key": ""}, {"key": 123}, {"key_env": ""},
                {"key_env": 3}, {"key_file": 3}, {"key_file": "/nonexistent/key"}, {"items": "yes"}]

    def test_same_seed_same_output(self):
        _fresh_labels_same_behaviour(self)


class TestKeyedHashWithKeyFileAndItems(TransformConformance):
    @pytest.fixture(autouse=True)
    def _key_file(self, tmp_path):
        self.key_file = tmp_path / "key"
        self.key_file.write_text("not-so-secret\n")

    def make_transform(self):
        return Pseudonymization(key_file=str(self.key_file), items=True)


class TestKeyedHashWithEnvKey(TransformConformance):
    @pytest.fixture(autouse=True)
    def _env_key(self, monkeypatch):
        monkeypatch.setenv(ENV, "from-the-environment")

    def make_transform(self):
        return Pseudonymization()


class TestPermutation(TransformConformance):
    def make_transform(self):
        return Pseudonymization(method="permutation")

    def bad_configs(self):
        return [{"method": "permutation", "key_file": __file__}]

    def test_same_seed_same_output(self):
        _fresh_labels_same_behaviour(self)


class TestPermutationItems(TransformConformance):
    def make_transform(self):
        return Pseudonymization(method="permutation", items=True)

    def test_same_seed_same_output(self):
        _fresh_labels_same_behaviour(self, "items")


@pytest.mark.parametrize("kind", ["random", "file", "permutation"])
def test_no_original_id_survives_and_behaviour_is_untouched(kind, tmp_path):
    (tmp_path / "key").write_text("k")
    transform = {"random": Pseudonymization(), "file": Pseudonymization(key_file=str(tmp_path / "key"), items=True),
                 "permutation": Pseudonymization(method="permutation", items=True)}[kind]
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


def test_keyed_hash_is_deterministic_for_a_key_and_is_hmac_sha256(tmp_path):
    data = tiny_dataset()
    (tmp_path / "key").write_text("  s3cret\n")  # the file's content, stripped, is the key
    (tmp_path / "other").write_text("other")
    a = Pseudonymization(key_file=str(tmp_path / "key")).apply(data, rng=np.random.default_rng(1))
    b = Pseudonymization(key_file=str(tmp_path / "key")).apply(data, rng=np.random.default_rng(2))
    c = Pseudonymization(key_file=str(tmp_path / "other")).apply(data, rng=np.random.default_rng(1))
    assert a.data.users == b.data.users
    assert not set(a.data.users.ids) & set(c.data.users.ids)
    assert a.data.users.ids[7] == hmac.new(b"s3cret", b"u7", hashlib.sha256).hexdigest()
    assert a.report.groups["key_source"] == {"file": {"users_pseudonymized": 30.0, "items_pseudonymized": 0.0}}


def test_key_from_the_environment(monkeypatch):
    data = tiny_dataset()
    monkeypatch.setenv(ENV, "s3cret\n")
    res = Pseudonymization().apply(data, rng=np.random.default_rng(0))
    assert res.data.users.ids[7] == hmac.new(b"s3cret", b"u7", hashlib.sha256).hexdigest()
    assert list(res.report.groups["key_source"]) == ["env"]
    monkeypatch.setenv("MY_KEY", "other")  # a variable of one's own
    res = Pseudonymization(key_env="MY_KEY").apply(data, rng=np.random.default_rng(0))
    assert res.data.users.ids[7] == hmac.new(b"other", b"u7", hashlib.sha256).hexdigest()


def test_key_file_wins_over_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV, "from-env")
    (tmp_path / "key").write_text("from-file")
    res = Pseudonymization(key_file=str(tmp_path / "key")).apply(tiny_dataset(), rng=np.random.default_rng(0))
    assert res.data.users.ids[0] == hmac.new(b"from-file", b"u0", hashlib.sha256).hexdigest()
    assert list(res.report.groups["key_source"]) == ["file"]


def test_empty_environment_variable_means_no_key(monkeypatch):
    monkeypatch.setenv(ENV, "  ")
    res = Pseudonymization().apply(tiny_dataset(), rng=np.random.default_rng(0))
    assert list(res.report.groups["key_source"]) == ["random"]
    res = Pseudonymization(key_env=None).apply(tiny_dataset(), rng=np.random.default_rng(0))
    assert list(res.report.groups["key_source"]) == ["random"]


def test_empty_or_vanished_key_file_is_refused(tmp_path):
    key = tmp_path / "key"
    key.write_text(" \n")
    with pytest.raises(ConfigError, match=r"^pseudonymization.key_file must hold a non-empty key; got .*\.$"):
        Pseudonymization(key_file=str(key)).apply(tiny_dataset(), rng=np.random.default_rng(0))
    transform = Pseudonymization(key_file=str(key))
    key.unlink()
    with pytest.raises(ConfigError, match="must be a readable file"):
        transform.apply(tiny_dataset(), rng=np.random.default_rng(0))


@pytest.mark.parametrize("value", ["hunter2", "", 123])
def test_inline_key_is_refused_with_one_line_that_does_not_show_it(value):
    with pytest.raises(ConfigError) as info:
        Pseudonymization(key=value)
    message = str(info.value)
    assert "\n" not in message and "hunter2" not in message and "123" not in message
    assert message.startswith("pseudonymization.key must not be given in the configuration")
    assert "privacy.key_file=PATH" in message and ENV in message


def test_inline_key_is_refused_through_the_config_builder():
    from privrec.config import build

    with pytest.raises(ConfigError) as info:
        build({"_target_": "privrec.privacy.Pseudonymization", "key": "hunter2"}, name="privacy")
    assert "hunter2" not in str(info.value) and "key_file" in str(info.value)


def test_random_keys_differ_between_applies_with_the_same_seed():
    data = tiny_dataset()
    a = Pseudonymization().apply(data, rng=np.random.default_rng(0))
    b = Pseudonymization().apply(data, rng=np.random.default_rng(0))
    assert not set(a.data.users.ids) & set(b.data.users.ids)  # never derived from the seed
    assert a.report == b.report and list(a.report.groups["key_source"]) == ["random"]
    assert "not reproducible" in a.report.guarantee


@pytest.mark.parametrize("source", ["file", "env"])
def test_no_key_material_in_repr_report_or_pickle(source, tmp_path, monkeypatch):
    secret = "hunter2-" + "x" * 24
    (tmp_path / "key").write_text(secret)
    if source == "env":
        monkeypatch.setenv(ENV, secret)
    transform = Pseudonymization(key_file=str(tmp_path / "key")) if source == "file" else Pseudonymization()
    data = tiny_dataset()
    res = transform.apply(data, rng=np.random.default_rng(0))
    chained = Chain(steps={"pseudo": transform}).apply(data, rng=np.random.default_rng(0))
    for blob in (repr(transform).encode(), repr(res.report.to_dict()).encode(), pickle.dumps(transform),
                 pickle.dumps(res.report), pickle.dumps(res), repr(chained.report.to_dict()).encode()):
        assert b"hunter2" not in blob
    assert vars(transform).keys() == {"method", "key_file", "key_env", "items", "key"}
    assert transform.key is None  # the key is read at apply time and kept nowhere


def test_permutation_is_a_bijection_onto_labels():
    data = tiny_dataset(n_users=30)
    a = Pseudonymization(method="permutation").apply(data, rng=np.random.default_rng(0)).data
    b = Pseudonymization(method="permutation").apply(data, rng=np.random.default_rng(0)).data
    labels = {f"p{i:06d}" for i in range(30)}
    assert set(a.users.ids) == labels and len(set(a.users.ids)) == 30
    assert set(b.users.ids) == labels and not np.array_equal(a.users.ids, b.users.ids)  # not from the seed


def test_labels_colliding_with_original_ids_raise():
    data = tiny_dataset(n_users=10)
    data = data.with_interactions(data.user_idx, data.item_idx, data.weight, data.timestamp,
                                  users=Vocabulary(np.array([f"p{i:06d}" for i in range(10)], dtype=object)))
    with pytest.raises(PrivacyGuaranteeError, match="no original id"):
        Pseudonymization(method="permutation").apply(data, rng=np.random.default_rng(0))
    Pseudonymization().apply(data, rng=np.random.default_rng(0))  # keyed hash is fine
