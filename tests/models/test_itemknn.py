import numpy as np
import pytest

from privrec.errors import ConfigError
from privrec.models import ItemKNN
from privrec.testing.models import ModelConformance, check_well_formed, model_dataset


class TestItemKNNCosine(ModelConformance):
    def make_model(self):
        return ItemKNN(similarity="cosine", K=10)

    def bad_configs(self):
        return [{"similarity": "jaccard"}, {"K": 0}, {"K1": -1.0}, {"B": 1.5}, {"num_threads": -2}]


class TestItemKNNBM25(ModelConformance):
    def make_model(self):
        return ItemKNN(similarity="bm25", K=10, K1=1.2, B=0.75)


def test_similarity_message():
    with pytest.raises(ConfigError, match=r"^model\.similarity must be one of \['cosine', 'bm25'\]; got 'tfidf'\.$"):
        ItemKNN(similarity="tfidf")


def test_seen_items_never_leak():
    # implicit's scorer "filters" seen items by zeroing their score, so they come back after the
    # positive scores; with a heavy user and n larger than the neighbourhood they would be listed.
    data = model_dataset(n_users=30, n_items=12, density=0.8, seed=2)
    model = ItemKNN(K=3).fit(data, rng=np.random.default_rng(0))
    users = np.arange(data.n_users)
    recs = model.recommend(users, n=12)
    check_well_formed(recs, users, 12, data.n_items)
    m = data.to_csr()
    for u in users:
        seen = set(m.indices[m.indptr[u] : m.indptr[u + 1]].tolist())
        assert not seen & set(recs.items[u][recs.items[u] >= 0].tolist())
    raw, _ = model.model_.recommend(users[:5], model.user_items_[users[:5]], N=12)
    assert any(set(raw[i][raw[i] >= 0].tolist()) & set(m.indices[m.indptr[u] : m.indptr[u + 1]].tolist())
               for i, u in enumerate(users[:5]) if data.user_counts[u] > 0), "quirk no longer reproduces"


def test_bm25_and_cosine_differ():
    data = model_dataset()
    users = np.arange(data.n_users)
    a = ItemKNN(similarity="cosine").fit(data, rng=np.random.default_rng(0)).score(users)
    b = ItemKNN(similarity="bm25").fit(data, rng=np.random.default_rng(0)).score(users)
    assert not np.allclose(a, b)


def test_chunking_does_not_change_lists(monkeypatch):
    data = model_dataset()
    model = ItemKNN(K=5).fit(data, rng=np.random.default_rng(0))
    users = np.arange(data.n_users)
    expected = model.recommend(users, n=6)
    monkeypatch.setattr(ItemKNN, "block_elements", 7)
    got = model.recommend(users, n=6)
    np.testing.assert_array_equal(got.items, expected.items)
    np.testing.assert_array_equal(got.scores, expected.scores)
