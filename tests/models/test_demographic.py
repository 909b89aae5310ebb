from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from privrec.data.dataset import Dataset, Schema, Vocabulary
from privrec.errors import ConfigError, DataWarning
from privrec.models.demographic import DemographicPopularity
from privrec.models.popularity import Popularity
from privrec.privacy.k_anonymity import KAnonymity
from privrec.testing.data import tiny_dataset
from privrec.testing.models import ModelConformance, check_well_formed, model_dataset


def with_demographics(data: Dataset, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    attrs = pd.DataFrame({
        "gender": rng.choice(np.array(["F", "M"]), data.n_users),
        "band": rng.choice(np.array(["young", "old"]), data.n_users),
    })
    attrs.loc[3, "band"] = None  # one user with a missing attribute backs off to global popularity
    return replace(data, user_attributes=attrs, schema=Schema(quasi_identifiers=("gender", "band")))


class TestDemographicPopularity(ModelConformance):
    uses_fallback = False  # it serves every user itself
    personalized = False  # by cell, not by behaviour

    def make_model(self):
        return DemographicPopularity(min_cell=3)

    def make_data(self):
        return with_demographics(model_dataset())

    def bad_configs(self):
        return [{"min_cell": 0}, {"min_cell": 2.5}, {"min_cell": True}, {"attributes": []},
                {"attributes": ["gender", "gender"]}, {"attributes": [""]}]


def two_cells() -> Dataset:
    # cell A (F): users 0-4 like items 0, 1, 2 (item 0 most); user 5 has no rows.
    # cell B (M): users 6-12 like items 3, 4 (all seven) and 5 (four) -- 3 and 4 beat A's items globally.
    # user 13 (F, missing band) and user 14 (X: a cell of one) have no rows.
    users, items = [], []
    for u in range(5):
        for i in (0, 1, 2) if u < 3 else (0, 1):
            users.append(u)
            items.append(i)
    for u in range(6, 13):
        for i in (3, 4, 5) if u < 10 else (3, 4):
            users.append(u)
            items.append(i)
    attrs = pd.DataFrame({
        "gender": ["F"] * 6 + ["M"] * 7 + ["F", "X"],
        "band": ["a"] * 13 + [None, "a"],
    })
    return Dataset(
        users=Vocabulary(np.array([f"u{i}" for i in range(15)], dtype=object)),
        items=Vocabulary(np.array([f"i{i}" for i in range(6)], dtype=object)),
        user_idx=np.array(users), item_idx=np.array(items), weight=np.ones(len(users)),
        user_attributes=attrs, schema=Schema(quasi_identifiers=("gender", "band")),
    )


def test_known_answer_empty_user_gets_their_cells_favourites():
    data = two_cells()
    model = DemographicPopularity(min_cell=3).fit(data, rng=np.random.default_rng(0))
    recs = model.recommend(np.array([5, 13, 14, 0]), n=6)
    check_well_formed(recs, np.array([5, 13, 14, 0]), 6, 6)
    np.testing.assert_array_equal(recs.items[0], [0, 1, 2, 3, 4, 5])  # cell A first, then global order
    np.testing.assert_array_equal(recs.scores[0, :3], [5 + 5 / 8, 5 + 5 / 8, 3 + 3 / 8])
    global_order = [3, 4, 0, 1, 5, 2]  # 7, 7, 5, 5, 4, 3 users (ties: lower index)
    np.testing.assert_array_equal(recs.items[1], global_order)  # missing attribute
    np.testing.assert_array_equal(recs.items[2], global_order)  # cell with fewer than min_cell users
    np.testing.assert_array_equal(recs.items[3, :3], [3, 4, 5])  # seen items excluded
    assert not recs.fallback.any()
    np.testing.assert_array_equal(recs.items[1], Popularity().fit(data, rng=np.random.default_rng(0))
                                  .recommend(np.array([13]), n=6).items[0])
    assert model.n_cells_ == 2 and model.n_backoff_users_ == 2
    np.testing.assert_array_equal(model.cell_users_, [5, 7])


def test_min_cell_backs_off_to_global():
    data = two_cells()
    model = DemographicPopularity(min_cell=6).fit(data, rng=np.random.default_rng(0))  # cell A has 5 users
    assert model.recommend(np.array([5]), n=3).items[0].tolist() == [3, 4, 0]


def test_explicit_attributes_and_missing_column():
    data = two_cells()
    model = DemographicPopularity(attributes=["gender"], min_cell=3).fit(data, rng=np.random.default_rng(0))
    assert model.attributes_ == ("gender",)
    assert model.recommend(np.array([13]), n=3).items[0].tolist() == [0, 1, 2]  # band is not used now
    with pytest.raises(ConfigError, match="must be user-attribute columns") as info:
        DemographicPopularity(attributes=["gender", "shoe_size"]).fit(data, rng=np.random.default_rng(0))
    assert "\n" not in str(info.value)


def test_no_attributes_warns_and_serves_global_popularity():
    data = model_dataset()
    with pytest.warns(DataWarning, match="no demographic attributes"):
        model = DemographicPopularity().fit(data, rng=np.random.default_rng(0))
    pop = Popularity().fit(data, rng=np.random.default_rng(0))
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(model.recommend(users, n=5).items, pop.recommend(users, n=5).items)
    np.testing.assert_array_equal(model.score(users), pop.score(users))


def test_on_k_anonymous_release():
    data = tiny_dataset(n_users=60, seed=5)
    released = KAnonymity(k=5).apply(data, rng=np.random.default_rng(0)).data
    model = DemographicPopularity(min_cell=5).fit(released, rng=np.random.default_rng(0))
    assert model.attributes_ == ("age", "gender", "occupation", "zip_code")
    assert model.n_cells_ >= 1 and model.n_backoff_users_ == 0  # every class holds >= k = min_cell users
    users = np.arange(data.n_users)
    check_well_formed(model.recommend(users, n=5), users, 5, data.n_items)
