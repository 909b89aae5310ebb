import numpy as np
import pytest

from privrec.data.dataset import Dataset, Vocabulary
from privrec.models import Popularity
from privrec.testing.models import ModelConformance, check_well_formed


class TestPopularity(ModelConformance):
    uses_fallback = False
    personalized = False

    def make_model(self):
        return Popularity()


def _hand_data() -> Dataset:
    # items:       0  1  2  3  4  5
    # user 0:      x  x  .  x  .  .
    # user 1:      x  .  .  x  x  .
    # user 2:      .  .  .  x  x  .    (item 3 twice: a duplicate row counts once)
    # user 3:      no rows
    # user 4:      .  x  .  .  .  .
    # counts:      2  2  0  3  2  0   -> order 3, 0, 1, 4, 2, 5 (ties by index)
    users = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 4])
    items = np.array([0, 1, 3, 0, 3, 4, 3, 4, 3, 1])
    return Dataset(
        users=Vocabulary(np.array(["a", "b", "c", "d", "e"], dtype=object)),
        items=Vocabulary(np.arange(6) * 10),
        user_idx=users,
        item_idx=items,
        weight=np.array([1, 1, 1, 5, 5, 5, 1, 1, 1, 1], dtype=np.float32),  # weights are ignored
    )


def test_exact_order_on_hand_data():
    model = Popularity().fit(_hand_data(), rng=np.random.default_rng(0))
    np.testing.assert_array_equal(model.item_counts_, [2, 2, 0, 3, 2, 0])
    recs = model.recommend(np.arange(5), n=6)
    check_well_formed(recs, np.arange(5), 6, 6)
    np.testing.assert_array_equal(
        recs.items,
        [[4, 2, 5, -1, -1, -1],
         [1, 2, 5, -1, -1, -1],
         [0, 1, 2, 5, -1, -1],
         [3, 0, 1, 4, 2, 5],
         [3, 0, 4, 2, 5, -1]],
    )
    np.testing.assert_array_equal(recs.scores[3], [3, 2, 2, 2, 0, 0])
    assert not recs.fallback.any()
    everything = model.recommend(np.arange(5), n=2, exclude_seen=False)
    np.testing.assert_array_equal(everything.items, np.tile([3, 0], (5, 1)))
    np.testing.assert_array_equal(model.score(np.array([2]))[0], [2, 2, 0, 3, 2, 0])


@pytest.mark.parametrize("block", [1, 7, 13, 1 << 22])
def test_batching_does_not_change_lists(monkeypatch, block):
    from privrec.testing.models import model_dataset

    data = model_dataset(n_users=50, n_items=13, seed=4)
    model = Popularity().fit(data, rng=np.random.default_rng(0))
    expected = model.recommend(np.arange(50), n=4)
    monkeypatch.setattr(Popularity, "block_elements", block)
    got = model.recommend(np.arange(50), n=4)
    np.testing.assert_array_equal(got.items, expected.items)
    np.testing.assert_array_equal(got.scores, expected.scores)
