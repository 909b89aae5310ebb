import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import privrec.privacy.randomized_response as rr_module
from privrec.data.dataset import Dataset, Vocabulary
from privrec.errors import ConfigError
from privrec.privacy.randomized_response import RandomizedResponse
from privrec.testing.data import tiny_dataset
from privrec.testing.privacy import TransformConformance


class TestOUE(TransformConformance):
    def make_transform(self):
        return RandomizedResponse(epsilon=2.0)

    def bad_configs(self):
        return [{"epsilon": 0}, {"epsilon": -1.0}, {"epsilon": float("nan")}, {"epsilon": "nan"}, {"epsilon": "abc"},
                {"epsilon": True}, {"epsilon": None}, {"epsilon": float("-inf")}, {"variant": "nope"},
                {"reweight": "maybe"}, {"reweight": 1.5}, {"max_output_interactions": 0},
                {"max_output_interactions": 2.5}, {"max_output_interactions": True}]


class TestSUE(TransformConformance):
    def make_transform(self):
        return RandomizedResponse(epsilon=3.0, variant="symmetric", reweight=True)


class TestPosterior(TransformConformance):
    def make_transform(self):
        return RandomizedResponse(epsilon=1.0, reweight="posterior")


class TestInfinite(TransformConformance):
    def make_transform(self):
        return RandomizedResponse(epsilon="inf")


def canonical_keys(data: Dataset) -> np.ndarray:
    return data.user_idx.astype(np.int64) * data.n_items + data.item_idx


def dense(data: Dataset) -> np.ndarray:
    return data.to_csr(binary=True).toarray() > 0


def test_epsilon_message_is_one_line():
    with pytest.raises(ConfigError, match=r"^randomized_response.epsilon must be a number > 0 or 'inf'; got 0.$"):
        RandomizedResponse(epsilon=0)


@pytest.mark.parametrize("eps", [float("inf"), "inf", "Infinity"])
def test_infinite_epsilon_is_exact_identity(eps):
    data = tiny_dataset()
    res = RandomizedResponse(epsilon=eps).apply(data, rng=np.random.default_rng(0))
    assert res.data.checksum() == data.checksum()  # weights and timestamps too
    m = res.report.metrics
    assert m["epsilon"] == math.inf and m["actual_flips_0_to_1"] == 0 and m["actual_kept_1"] == data.n_interactions


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), variant=st.sampled_from(["optimized", "symmetric"]))
def test_property_infinite_epsilon_identity(seed, variant):
    data = shuffled_with_duplicates(tiny_dataset(n_users=10, n_items=8, seed=seed % 13), seed)
    res = RandomizedResponse(epsilon=math.inf, variant=variant).apply(data, rng=np.random.default_rng(seed))
    assert res.data.checksum() == data.checksum()


def shuffled_with_duplicates(data: Dataset, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(data.n_interactions), rng.integers(0, data.n_interactions, 5)])
    return data.with_interactions(data.user_idx[order], data.item_idx[order], data.weight[order] * 3,
                                  data.timestamp[order])


def test_probabilities_and_epsilon_per_item():
    for eps in (0.5, 1.0, 4.0):
        p, q = RandomizedResponse(epsilon=eps, variant="symmetric").probabilities
        assert p == pytest.approx(math.exp(eps / 2) / (math.exp(eps / 2) + 1)) and q == pytest.approx(1 - p)
        assert RandomizedResponse(epsilon=eps, variant="symmetric").epsilon_per_item == pytest.approx(eps / 2)
        p, q = RandomizedResponse(epsilon=eps).probabilities
        assert p == 0.5 and q == pytest.approx(1 / (math.exp(eps) + 1))
        per_item = RandomizedResponse(epsilon=eps).epsilon_per_item
        assert per_item == pytest.approx(max(math.log(p / q), math.log((1 - q) / (1 - p))))
        # replacing one item (one 1 -> 0 and one 0 -> 1) costs exactly epsilon
        assert math.log(p / q) + math.log((1 - q) / (1 - p)) == pytest.approx(eps)


@pytest.mark.parametrize(("variant", "eps"), [("optimized", 1.0), ("optimized", 3.0), ("symmetric", 1.0),
                                              ("symmetric", 4.0)])
def test_kept_and_flip_rates(variant, eps):
    data = tiny_dataset(n_users=1500, n_items=60, density=0.1, seed=4)
    transform = RandomizedResponse(epsilon=eps, variant=variant)
    p, q = transform.probabilities
    res = transform.apply(data, rng=np.random.default_rng(11))
    m = res.report.metrics
    ones, zeros = m["input_ones"], data.n_users * data.n_items - m["input_ones"]
    # four binomial standard deviations
    assert abs(m["actual_kept_1"] - p * ones) <= 4 * math.sqrt(ones * p * (1 - p))
    assert abs(m["actual_flips_0_to_1"] - q * zeros) <= 4 * math.sqrt(zeros * q * (1 - q))
    # the report's counts are the truth, re-derived densely
    before, after = dense(data), dense(res.data)
    assert m["actual_kept_1"] == (before & after).sum() and m["actual_flips_0_to_1"] == (~before & after).sum()
    assert m["output_interactions"] == res.data.n_interactions == after.sum()


def test_every_empty_cell_flips_with_probability_q():
    """20,000 identical users: each item column's released share is p (their items) or q (the others)."""
    n_users, n_items, items = 20_000, 10, np.array([0, 3, 4])
    data = Dataset(
        users=Vocabulary(np.arange(n_users)), items=Vocabulary(np.arange(n_items)),
        user_idx=np.repeat(np.arange(n_users), len(items)), item_idx=np.tile(items, n_users),
        weight=np.ones(n_users * len(items), dtype=np.float32),
    )
    transform = RandomizedResponse(epsilon=1.0)
    p, q = transform.probabilities
    out = transform.apply(data, rng=np.random.default_rng(5)).data
    share = np.bincount(out.item_idx, minlength=n_items) / n_users
    expected = np.where(np.isin(np.arange(n_items), items), p, q)
    sd = np.sqrt(expected * (1 - expected) / n_users)
    assert np.all(np.abs(share - expected) <= 4 * sd)
    # two empty cells of one user flip independently
    both = np.bincount(out.user_idx[np.isin(out.item_idx, [1, 2])], minlength=n_users) == 2
    assert abs(both.mean() - q * q) <= 4 * math.sqrt(q * q * (1 - q * q) / n_users)


def test_flips_land_on_distinct_empty_cells_in_canonical_order():
    data = tiny_dataset(n_users=60, n_items=30, seed=1)
    res = RandomizedResponse(epsilon=0.5, variant="symmetric").apply(data, rng=np.random.default_rng(3))
    keys = canonical_keys(res.data)
    assert np.all(np.diff(keys) > 0)  # distinct cells, sorted by (user, item): order reveals nothing
    assert res.data.timestamp is None and np.all(res.data.weight == 1)
    assert res.data.users == data.users and res.data.items == data.items
    assert res.data.user_attributes.equals(data.user_attributes)


def test_chunk_and_block_boundaries(monkeypatch):
    """Tiny chunks and blocks exercise every boundary of the streaming walk and of the merge."""
    data = tiny_dataset(n_users=40, n_items=25, seed=2)
    before = dense(data)
    for chunk, block in [(3, 5), (7, 2), (64, 1)]:
        monkeypatch.setattr(rr_module, "_CHUNK", chunk)
        monkeypatch.setattr(rr_module, "_BLOCK", block)
        for variant in ("optimized", "symmetric"):
            res = RandomizedResponse(epsilon=1.5, variant=variant).apply(data, rng=np.random.default_rng(chunk))
            after = dense(res.data)
            assert np.all(np.diff(canonical_keys(res.data)) > 0)
            assert res.report.metrics["actual_kept_1"] == (before & after).sum()
            assert res.report.metrics["actual_flips_0_to_1"] == (~before & after).sum()


def test_order_and_duplicates_of_the_input_do_not_matter():
    data = tiny_dataset(n_users=30, n_items=20, seed=6)
    messy = shuffled_with_duplicates(data, 1)
    a = RandomizedResponse(epsilon=1.0).apply(data, rng=np.random.default_rng(9))
    b = RandomizedResponse(epsilon=1.0).apply(messy, rng=np.random.default_rng(9))
    assert a.data.checksum() == b.data.checksum()
    assert b.report.metrics["input_ones"] == data.n_interactions


def test_users_without_data_report_too():
    data = tiny_dataset(n_users=5, n_items=200, seed=0)
    data = Dataset(users=Vocabulary(np.arange(6)), items=data.items, user_idx=data.user_idx,
                   item_idx=data.item_idx, weight=data.weight)
    out = RandomizedResponse(epsilon=1.0).apply(data, rng=np.random.default_rng(0)).data
    assert out.user_counts[5] > 0


def test_reweighting():
    data = tiny_dataset(n_users=300, n_items=40, seed=8)
    base = RandomizedResponse(epsilon=2.0)
    p, q = base.probabilities
    plain = base.apply(data, rng=np.random.default_rng(0)).data
    unbiased = RandomizedResponse(epsilon=2.0, reweight=True).apply(data, rng=np.random.default_rng(0)).data
    assert np.array_equal(canonical_keys(plain), canonical_keys(unbiased))
    assert np.allclose(unbiased.weight, (1 - q) / (p - q))  # kept and flipped 1s alike: same released bit
    post = RandomizedResponse(epsilon=2.0, reweight="posterior").apply(data, rng=np.random.default_rng(0)).data
    count = np.bincount(post.item_idx, minlength=data.n_items)
    share = np.clip((count / data.n_users - q) / (p - q), 1 / data.n_users, 1)
    expected = p * share / (p * share + q * (1 - share))
    assert np.allclose(post.weight, expected[post.item_idx], rtol=1e-6)
    assert np.all(post.weight > 0) and np.all(post.weight <= 1)


def test_refuses_when_the_output_would_be_too_large():
    data = tiny_dataset(n_users=50, n_items=40)
    with pytest.raises(ConfigError, match=r"^randomized_response.max_output_interactions must cover the expected "
                                          r"output of [0-9.e+]+ interactions .*Raise epsilon") as info:
        RandomizedResponse(epsilon=0.5, max_output_interactions=100).apply(data, rng=np.random.default_rng(0))
    assert "\n" not in str(info.value)
    RandomizedResponse(epsilon=0.5, max_output_interactions=10_000).apply(data, rng=np.random.default_rng(0))


def test_report_states_the_guarantee():
    data = tiny_dataset()
    rep = RandomizedResponse(epsilon=2.0).apply(data, rng=np.random.default_rng(0)).report
    assert "unit: user" in rep.guarantee and "replaced item" in rep.guarantee and "OUE" in rep.guarantee
    deg_max = data.user_counts.max()
    assert rep.metrics["epsilon_user_history_max"] == pytest.approx(deg_max * rep.metrics["epsilon_per_item"])
