import warnings

import numpy as np
import pytest
from attack_helpers import SECRET, FakeModel, random_dataset

from privrec.attacks import AttackTarget, MembershipInference
from privrec.errors import ConfigError
from privrec.models import Popularity
from privrec.testing.attacks import AttackConformance


class TestMembershipInferenceConformance(AttackConformance):
    model_metrics = ("mia_auc_test", "mia_tpr_at_1fpr_test", "mia_auc_random", "mia_tpr_at_1fpr_random",
                     "mia_auc_original", "mia_tpr_at_1fpr_original", "mia_auc_original_random",
                     "mia_tpr_at_1fpr_original_random", "mia_user_auc", "mia_user_tpr_at_1fpr")

    def make_attack(self):
        return MembershipInference(negatives=2)

    def bad_configs(self):
        return [{"negatives": 0}, {"max_users": 0}, {"negatives": 1.5}]


def split(seed=0, n_users=80, n_items=60):
    """An 80/20 random split of a random dataset (every user with training and test rows)."""
    data = random_dataset(n_users=n_users, n_items=n_items, density=0.2, seed=seed, min_items=5)
    rng = np.random.default_rng(seed)
    is_test = rng.random(data.n_interactions) < 0.2
    return data.subset(~is_test), data.subset(is_test)


def memorizer(train, *, withheld=None):
    """Scores 1 for the user's training items, 0 elsewhere; withheld users get random scores (a fallback)."""
    scores = train.to_csr(binary=True).toarray()
    if withheld is not None:
        scores[withheld] = np.random.default_rng(0).random((int(withheld.sum()), train.n_items))
    return FakeModel(scores)


def test_a_memorizing_model_is_fully_exposed(rng):
    train, test = split()
    target = AttackTarget(original=train, released=train, test=test, model=memorizer(train))
    res = MembershipInference(negatives=3).run(target, rng=rng)
    assert res.metrics["mia_auc_test"] == 1.0
    assert res.metrics["mia_auc_random"] == 1.0
    assert res.metrics["mia_tpr_at_1fpr_test"] == 1.0
    assert res.metrics["mia_tpr_at_1fpr_random"] == 1.0
    assert res.metrics["mia_users"] == 80
    assert set(res.missing) == {"mia_user_auc", "mia_user_tpr_at_1fpr"}  # nobody withheld


def test_random_scores_are_at_chance(rng):
    train, test = split(seed=1, n_users=150, n_items=80)
    model = FakeModel(np.random.default_rng(7).random((train.n_users, train.n_items)))
    res = MembershipInference(negatives=2).run(AttackTarget(original=train, released=train, test=test, model=model),
                                               rng=rng)
    # a few thousand pairs on each side: the null AUC sd is below 0.01; 0.05 is > 5 sd
    assert abs(res.metrics["mia_auc_test"] - 0.5) < 0.05
    assert abs(res.metrics["mia_auc_random"] - 0.5) < 0.05
    assert res.metrics["mia_tpr_at_1fpr_random"] < 0.05


def test_user_level_membership_of_opted_out_users(rng):
    train, test = split(seed=2)
    withheld = np.arange(train.n_users) % 4 == 0
    released = train.subset(~withheld[train.user_idx])
    target = AttackTarget(original=train, released=released, test=test, model=memorizer(released, withheld=withheld),
                          withheld=withheld)
    res = MembershipInference().run(target, rng=rng)
    assert res.metrics["mia_user_auc"] == 1.0  # members' own items score 1, non-members' at random
    assert res.metrics["mia_user_members"] == 60 and res.metrics["mia_user_nonmembers"] == 20
    assert res.metrics["mia_users"] == 60  # interaction level: users with released rows only
    assert res.missing == {}


def test_percentiles_are_per_user(rng):
    """A model whose raw scores differ by a per-user offset is as exposed as one without offsets."""
    train, test = split(seed=3)
    base = train.to_csr(binary=True).toarray() + 0.5 * np.random.default_rng(1).random((train.n_users, train.n_items))
    offset = 100 * np.arange(train.n_users)[:, None]
    targets = [AttackTarget(original=train, released=train, test=test, model=FakeModel(s))
               for s in (base, base + offset)]
    a, b = (MembershipInference().run(t, rng=np.random.default_rng(0)) for t in targets)
    assert a.metrics["mia_auc_test"] == pytest.approx(b.metrics["mia_auc_test"])
    assert a.metrics["mia_auc_test"] > 0.9


def test_negatives_avoid_every_known_item(rng):
    train, test = split(seed=4)
    attack = MembershipInference(negatives=5)
    users = np.arange(train.n_users)
    known = ((train.to_csr(binary=True) + test.to_csr(binary=True)) > 0).astype(np.float32).tocsr()
    owners = np.repeat(users, 5)
    u, i = attack._negatives(owners, known, users, train.n_items, rng)
    assert len(u) == len(owners)
    assert not np.asarray(known[u, i]).any()


def test_max_users_subsamples(rng):
    train, test = split(seed=5)
    res = MembershipInference(max_users=10).run(
        AttackTarget(original=train, released=train, test=test, model=memorizer(train)), rng=rng)
    assert res.metrics["mia_users"] == 10


def test_without_a_model_everything_is_missing(rng):
    train, test = split()
    res = MembershipInference().run(AttackTarget(original=train, released=train, test=test), rng=rng)
    assert res.metrics == {}
    assert set(res.missing) == set(TestMembershipInferenceConformance.model_metrics)


def test_works_with_a_real_model(rng):
    train, test = split(seed=6)
    model = Popularity().fit(train, rng=np.random.default_rng(0))
    res = MembershipInference().run(AttackTarget(original=train, released=train, test=test, model=model), rng=rng)
    assert 0.0 <= res.metrics["mia_auc_test"] <= 1.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"negatives": 0}, r"^membership_inference\.negatives must be an integer >= 1; got 0\.$"),
    ({"max_users": 0}, r"^membership_inference\.max_users must be an integer >= 1 or null; got 0\.$"),
    ({"negatives": 1.5}, r"^membership_inference\.negatives must be an integer >= 1"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        MembershipInference(**kwargs)


def test_deterministic_and_no_ids():
    train, test = split(seed=8)
    withheld = np.arange(train.n_users) % 5 == 0
    released = train.subset(~withheld[train.user_idx])
    target = AttackTarget(original=train, released=released, test=test, model=memorizer(released, withheld=withheld),
                          withheld=withheld)
    before = (train.checksum(), released.checksum(), test.checksum())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = MembershipInference(negatives=2).run(target, rng=np.random.default_rng(3))
    b = MembershipInference(negatives=2).run(target, rng=np.random.default_rng(3))
    assert a == b
    assert (train.checksum(), released.checksum(), test.checksum()) == before
    assert SECRET not in repr(a.to_dict()) + " ".join(str(w.message) for w in caught)


def test_average_rank_matches_scipy_rankdata():
    from scipy.stats import rankdata

    from privrec.attacks.membership_inference import _average_rank

    rng = np.random.default_rng(0)
    for trial in range(30):
        rows = rng.integers(0, 5, (7, 13)).astype(float) * rng.choice([1, 0.001, 1000]) + rng.normal(0, 1, (7, 1))
        if trial % 5 == 0:
            rows[0, 3], rows[1, 2] = np.inf, -np.inf
        r, c = rng.integers(0, 7, 40), rng.integers(0, 13, 40)
        np.testing.assert_allclose(_average_rank(rows, r, c), rankdata(rows, method="average", axis=1)[r, c])


# ---------------------------------------------------------------------- membership on the truth
def test_on_the_truth_equals_the_released_variant_when_nothing_changed(rng):
    train, test = split(seed=9)
    model = FakeModel(train.to_csr(binary=True).toarray() + np.random.default_rng(2).random((80, 60)))
    res = MembershipInference(negatives=2).run(AttackTarget(original=train, released=train, test=test, model=model),
                                               rng=rng)
    assert res.metrics["mia_auc_original"] == res.metrics["mia_auc_test"]
    assert res.metrics["mia_tpr_at_1fpr_original"] == res.metrics["mia_tpr_at_1fpr_test"]
    assert abs(res.metrics["mia_auc_original_random"] - res.metrics["mia_auc_random"]) < 0.05  # fresh draws


def test_on_the_truth_a_release_holding_the_test_items_leaks_no_history(rng):
    """A treatment that puts every held-out item into the release (as microaggregation can): a model that
    memorises the release scores members and held-out items alike -- the released variant has no held-out
    non-members left; on the truth the held-out items are non-members and the AUC is about 0.5 (within a user,
    members and held-out items tie; pooled over users of different profile sizes the tied percentiles differ
    a little), while items in neither set still score 0 (AUC 1)."""
    train, test = split(seed=10)
    both = train.with_interactions(np.concatenate([train.user_idx, test.user_idx]),
                                   np.concatenate([train.item_idx, test.item_idx]),
                                   np.ones(train.n_interactions + test.n_interactions, dtype=np.float32), None)
    res = MembershipInference().run(AttackTarget(original=train, released=both, test=test, model=memorizer(both)),
                                    rng=rng)
    assert "mia_auc_test" in res.missing
    assert abs(res.metrics["mia_auc_original"] - 0.5) < 0.05
    assert res.metrics["mia_auc_original_random"] == 1.0


def test_on_the_truth_members_are_the_original_pairs(rng):
    """A release with half of every profile replaced by noise: the released variant sees a perfect fit of the
    treated data; on the truth only the kept half scores high."""
    train, test = split(seed=11)
    r = np.random.default_rng(0)
    keep = r.random(train.n_interactions) < 0.5
    noise_u = r.integers(0, train.n_users, 2000)
    noise_i = r.integers(0, train.n_items, 2000)
    released = train.with_interactions(np.concatenate([train.user_idx[keep], noise_u]),
                                       np.concatenate([train.item_idx[keep], noise_i]),
                                       np.ones(int(keep.sum()) + 2000, dtype=np.float32), None)
    res = MembershipInference().run(AttackTarget(original=train, released=released, test=test,
                                                 model=memorizer(released)), rng=rng)
    assert res.metrics["mia_auc_test"] == 1.0
    assert 0.6 < res.metrics["mia_auc_original"] < 0.9


def test_released_variant_is_unchanged_by_the_truth_variant():
    """Known values from the implementation before ``mia_auc_original`` existed (same target, same seed)."""
    data = random_dataset(n_users=80, n_items=60, density=0.2, seed=11, min_items=5)
    r = np.random.default_rng(11)
    is_test = r.random(data.n_interactions) < 0.2
    train, test = data.subset(~is_test), data.subset(is_test)
    withheld = np.arange(80) % 4 == 0
    released = train.subset(~withheld[train.user_idx] & (r.random(train.n_interactions) < 0.7))
    scores = released.to_csr(binary=True).toarray() + np.random.default_rng(5).random((80, 60))
    target = AttackTarget(original=train, released=released, test=test, model=FakeModel(scores), withheld=withheld)
    res = MembershipInference(negatives=2).run(target, rng=np.random.default_rng(4))
    before = {"mia_users": 60.0, "mia_user_members": 60.0, "mia_user_nonmembers": 20.0,
              "mia_auc_test": 0.9928051823926087, "mia_tpr_at_1fpr_test": 0.8408644400785854,
              "mia_auc_random": 0.9954560542841815, "mia_tpr_at_1fpr_random": 0.8408644400785854,
              "mia_user_auc": 0.9958333333333333, "mia_user_tpr_at_1fpr": 0.95}
    assert {k: res.metrics[k] for k in before} == before
