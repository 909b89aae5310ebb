"""evaluation.exclude (released | none) and data/test_in_release_share on a tiny case with a known answer."""

import math
import warnings

import numpy as np
import pytest

from privrec import experiment
from privrec.data.dataset import Dataset, Vocabulary
from privrec.errors import ConfigError, DataWarning
from privrec.evaluation import evaluate
from privrec.models import Popularity
from privrec.models.base import Recommendations


def _data(pairs, n_users=2, n_items=4):
    u, i = (np.array(x, dtype=np.int32) for x in zip(*pairs, strict=True))
    return Dataset(users=Vocabulary(np.arange(n_users)), items=Vocabulary(np.arange(n_items)), user_idx=u,
                   item_idx=i, weight=np.ones(len(u), np.float32))


class Ranked:
    """Every user ranks item 0 > 1 > 2 > 3; ``exclude_seen`` drops the user's released items."""

    def __init__(self, released: Dataset) -> None:
        self.seen = released.to_csr(binary=True)
        self.scores = np.tile(np.array([4, 3, 2, 1], np.float32), (released.n_users, 1))

    def recommend(self, users, *, n, exclude_seen=True):
        users = np.asarray(users)
        s = self.scores[users].astype(np.float64)
        if exclude_seen:
            s[self.seen[users].toarray() > 0] = -np.inf
        order = np.argsort(-s, axis=1, kind="stable")[:, :n]
        top = np.take_along_axis(s, order, axis=1)
        return Recommendations(users=users.astype(np.int64), items=np.where(np.isfinite(top), order, -1),
                               scores=top, fallback=np.zeros(users.size, bool))

    def score(self, users):
        return self.scores[np.asarray(users)]


# user 0 released {0, 1}, test {1, 2}: item 1 is in both (a k-anonymised profile can hold a user's test item)
# user 1 released {3}, test {0}
RELEASED = _data([(0, 0), (0, 1), (1, 3)])
TEST = _data([(0, 1), (0, 2), (1, 0)])
IDCG2 = 1 + 1 / math.log2(3)


def test_released_removes_the_profile_and_counts_its_test_items_as_misses():
    with pytest.warns(DataWarning, match="1 test interactions also appear in train"):
        ev = evaluate(Ranked(RELEASED), RELEASED, TEST, cutoffs=(2,))
    pu = ev.per_user
    # user 0 gets [2, 3]: item 2 is a hit at rank 1; item 1 (released) can never be recommended
    assert pu.loc[0, "ndcg_at_2"] == pytest.approx(1 / IDCG2)
    assert pu.loc[0, "recall_at_2"] == 0.5
    assert pu.loc[0, "auc"] == 1.0  # candidates {2, 3}: the positive 2 beats 3
    assert pu.loc[1, "ndcg_at_2"] == 1.0  # user 1 gets [0, 1]


def test_none_keeps_every_item_a_candidate():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about: no item is taken away
        ev = evaluate(Ranked(RELEASED), RELEASED, TEST, cutoffs=(2,), exclude_seen=False)
    pu = ev.per_user
    # user 0 gets [0, 1]: the released item 0 is a miss, the released test item 1 a hit at rank 2
    assert pu.loc[0, "ndcg_at_2"] == pytest.approx((1 / math.log2(3)) / IDCG2)
    assert pu.loc[0, "recall_at_2"] == 0.5
    assert pu.loc[0, "auc"] == 0.5  # positives {1, 2} vs negatives {0, 3}: 2 of 4 pairs won
    assert pu.loc[1, "ndcg_at_2"] == 1.0


def test_test_in_release_share():
    assert experiment.share_of_test_in_release(RELEASED, TEST) == pytest.approx(1 / 3)
    doubled = _data([(0, 1), (0, 1), (1, 0)])  # a duplicated released row counts once
    assert experiment.share_of_test_in_release(doubled, TEST) == pytest.approx(2 / 3)
    assert experiment.share_of_test_in_release(TEST, TEST) == 1.0
    assert math.isnan(experiment.share_of_test_in_release(RELEASED, TEST.subset(np.zeros(3, bool))))


def test_a_real_model_passes_the_choice_through_to_its_fallback():
    model = Popularity().fit(RELEASED, rng=np.random.default_rng(0))
    with pytest.warns(DataWarning):
        kept = evaluate(model, RELEASED, TEST, cutoffs=(4,))
    everything = evaluate(model, RELEASED, TEST, cutoffs=(4,), exclude_seen=False)
    # with every item a candidate, user 0's released test item 1 can be found: recall@4 over all 4 items is 1
    assert everything.per_user.loc[0, "recall_at_4"] == 1.0
    assert kept.per_user.loc[0, "recall_at_4"] == 0.5


@pytest.mark.parametrize("value", ["original", None, True])
def test_a_bad_exclude_value_fails_before_any_work(value):
    cfg = {"seed": 0, "data_dir": "unused",
           "dataset": {"_target_": "privrec.data.loaders.Synthetic", "n_users": 50, "n_items": 30,
                       "n_interactions": 500},
           "split": {"_target_": "privrec.data.split.RandomHoldout"},
           "privacy": {"_target_": "privrec.privacy.NoPrivacy"},
           "model": {"_target_": "privrec.models.Popularity"},
           "evaluation": {"cutoffs": [10], "exclude": value}}
    with pytest.raises(ConfigError, match=r"evaluation.exclude must be one of \['released', 'none'\]"):
        experiment.plan(cfg)
