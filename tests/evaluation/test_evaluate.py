"""evaluate(), Evaluation and attribute_segments with a fake model whose answers are known."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from privrec import evaluation
from privrec.data.dataset import Dataset, Vocabulary
from privrec.errors import ConfigError, DataValidationError, DataWarning
from privrec.evaluation import Evaluation, attribute_segments, evaluate, metric_key, ranking_metrics
from privrec.models.base import Recommendations

# MLflow 3.x (POSIX) metric-name rule, copied from mlflow.utils.validation (only tracking/ imports mlflow)
MLFLOW_NAME = re.compile(r"^[/\w.\- :]*$")


class FakeModel:
    """Ranks items by a fixed score table; users without training rows are 'fallback' users."""

    def __init__(self, scores: np.ndarray, train: Dataset) -> None:
        self.scores = scores.astype(np.float32)
        self.seen = train.to_csr(binary=True)
        self.calls: list[int] = []

    def fit(self, train, *, rng):  # pragma: no cover - the protocol's shape only
        return self

    def recommend(self, users, *, n, exclude_seen=True):
        users = np.asarray(users)
        self.calls.append(users.size)
        s = self.scores[users].astype(np.float64)
        if exclude_seen:
            s[self.seen[users].toarray() > 0] = -np.inf
        order = np.argsort(-s, axis=1, kind="stable")[:, :n]
        top_scores = np.take_along_axis(s, order, axis=1)
        items = np.where(np.isfinite(top_scores), order, -1)
        fallback = np.diff(self.seen.indptr)[users] == 0
        return Recommendations(users=users.astype(np.int64), items=items, scores=top_scores, fallback=fallback)

    def score(self, users):
        return self.scores[np.asarray(users)]


def make_dataset(pairs: list[tuple[int, int]], n_users: int = 6, n_items: int = 6) -> Dataset:
    u, i = (np.array(x, dtype=np.int32) for x in zip(*pairs, strict=True)) if pairs else (np.array([]),) * 2
    gender = pd.array((["F", "M", "F", None, "M", "F"] * n_users)[:n_users], dtype="string")
    age = ([20, 30, 20, 40, np.nan, 30] * n_users)[:n_users]
    return Dataset(
        users=Vocabulary(np.array([f"u{j}" for j in range(n_users)])),
        items=Vocabulary(np.array([f"i{j}" for j in range(n_items)])),
        user_idx=u,
        item_idx=i,
        weight=np.ones(len(u), np.float32),
        user_attributes=pd.DataFrame({"gender": gender, "age": age}),
    )


# Scores: item 0 best for everyone, then 1, 2, ... (the same table for every user).
SCORES = np.tile(np.arange(6, 0, -1, dtype=float), (6, 1))
TRAIN = make_dataset([(0, 0), (1, 0), (1, 1), (2, 2), (4, 0), (5, 5)])  # user 3 has no training rows
TEST = make_dataset([(0, 1), (1, 5), (2, 0), (2, 4), (3, 3)])  # users 4 and 5 have no test rows


@pytest.fixture
def result() -> Evaluation:
    return evaluate(FakeModel(SCORES, TRAIN), TRAIN, TEST, cutoffs=(2, 1))


def test_per_user_rows_are_evaluated_users(result: Evaluation) -> None:
    assert list(result.per_user.index) == [0, 1, 2, 3]
    assert result.per_user.index.name == "user_idx"
    assert result.overall["n_users"] == 4
    assert result.overall["fallback_users"] == 1  # user 3: test data but no training rows


def test_hand_computed_values(result: Evaluation) -> None:
    pu = result.per_user
    # user 0: train {0}, list [1, 2]; test {1}: hit at rank 1 -> P@2 = 1/2, nDCG = 1, RR = 1
    # user 1: train {0, 1}, list [2, 3]; test {5}: miss
    # user 2: train {2}, list [0, 1]; test {0, 4}: hit at rank 1 -> P@2 = 1/2, R@2 = 1/2,
    #         nDCG@2 = 1 / (1 + 1/log2(3)) = 0.613147, AP@2 = 1 / min(2, 2) = 1/2
    # user 3: no train, list [0, 1]; test {3}: miss
    np.testing.assert_allclose(pu["precision_at_2"], [0.5, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(pu["recall_at_2"], [1.0, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(pu["ndcg_at_2"], [1.0, 0.0, 0.613147, 0.0], atol=1e-6)
    np.testing.assert_allclose(pu["map_at_2"], [1.0, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(pu["mrr_at_1"], [1.0, 0.0, 1.0, 0.0])
    # AUC (scores fall with the item index; training items left out):
    # user 0: candidates 1..5, positive 1 beats 2,3,4,5 -> 4/4 = 1
    # user 1: candidates 2..5, positive 5 beats none -> 0/3 = 0
    # user 2: candidates 0,1,3,4,5; positives 0 (beats 1,3,5 -> 3), 4 (beats 5 -> 1) -> 4 / (2*3) = 2/3
    # user 3: candidates 0..5, positive 3 beats 4, 5 -> 2/5
    np.testing.assert_allclose(pu["auc"], [1.0, 0.0, 2 / 3, 2 / 5])
    # overall = mean over the 4 evaluated users
    assert result.overall["precision_at_2"] == pytest.approx(0.25)
    assert result.overall["auc"] == pytest.approx((1 + 0 + 2 / 3 + 2 / 5) / 4)


def test_beyond_accuracy(result: Evaluation) -> None:
    # popularity = share of the 5 users with training rows: item 0 -> 3/5, 1 -> 1/5, 2 -> 1/5, 5 -> 1/5
    # lists@2: [1, 2], [2, 3], [0, 1], [0, 1] -> per user (0.2+0.2)/2, (0.2+0)/2, (0.6+0.2)/2, (0.6+0.2)/2
    np.testing.assert_allclose(result.per_user["mean_popularity_at_2"], [0.2, 0.1, 0.4, 0.4])
    # coverage@2: {0, 1, 2, 3} of 6 items; @1: {1, 2, 0} of 6
    assert result.overall["item_coverage_at_2"] == pytest.approx(4 / 6)
    assert result.overall["item_coverage_at_1"] == pytest.approx(3 / 6)
    # exposure@1: item 0 x2, 1 x1, 2 x1, others 0 -> sorted (0,0,0,1,1,2), n = 6, total 4
    # sum (2i - 7) x_i = 1*1 + 3*1 + 5*2 = 14 -> G = 14 / (6 * 4) = 0.583333
    assert result.overall["gini_exposure_at_1"] == pytest.approx(14 / 24)


def test_overall_is_mean_of_per_user(result: Evaluation) -> None:
    for col in result.per_user:
        assert result.overall[col] == pytest.approx(result.per_user[col].mean()), col


def test_segments_average_over_evaluated_users_inside() -> None:
    segments = attribute_segments(TRAIN, ["gender"])
    assert list(segments) == ["gender=F", "gender=M"]
    res = evaluate(FakeModel(SCORES, TRAIN), TRAIN, TEST, cutoffs=[2], segments=segments)
    # gender=F: users 0, 2, 5 -> evaluated 0, 2 (5 has no test data); gender=M: users 1, 4 -> evaluated 1
    f, m = res.segments["gender=F"], res.segments["gender=M"]
    assert (f["n_users"], m["n_users"]) == (2, 1)
    assert f["precision_at_2"] == pytest.approx((0.5 + 0.5) / 2)
    assert m["precision_at_2"] == 0.0
    assert f["fallback_users"] == 0
    # set-level metrics on the segment's own lists: F lists@2 [1, 2], [0, 1] -> {0, 1, 2} of 6
    assert f["item_coverage_at_2"] == pytest.approx(3 / 6)
    assert res.segments["gender=F"].keys() == res.overall.keys()


def test_empty_segment_warns_once_with_its_name_and_gives_nan() -> None:
    masks = {"consented": np.array([True] * 6), "opted_out": np.array([False, False, False, False, True, True])}
    with pytest.warns(DataWarning) as record:
        res = evaluate(FakeModel(SCORES, TRAIN), TRAIN, TEST, cutoffs=[2], segments=masks)
    messages = [str(w.message) for w in record if issubclass(w.category, DataWarning)]
    assert len(messages) == 1
    assert "'opted_out'" in messages[0]
    assert not re.search(r"\bu\d\b|\b[45]\b", messages[0])  # no user id or index
    empty = res.segments["opted_out"]
    assert empty["n_users"] == 0 and empty["fallback_users"] == 0
    assert all(np.isnan(v) for k, v in empty.items() if k not in ("n_users", "fallback_users"))
    assert res.segments["consented"]["n_users"] == 4


def test_batching_does_not_change_results() -> None:
    model = FakeModel(SCORES, TRAIN)
    small = evaluate(model, TRAIN, TEST, cutoffs=[1, 3], batch_size=1)
    assert model.calls == [1, 1, 1, 1]
    big = evaluate(FakeModel(SCORES, TRAIN), TRAIN, TEST, cutoffs=[1, 3], batch_size=100)
    pd.testing.assert_frame_equal(small.per_user, big.per_user)
    assert small.overall == pytest.approx(big.overall)


def test_matches_ranking_metrics_on_random_data() -> None:
    rng = np.random.default_rng(1)
    n_users, n_items = 40, 25
    full = rng.random((n_users, n_items)) < 0.3
    in_test = full & (rng.random((n_users, n_items)) < 0.3)
    train = make_dataset(list(zip(*np.nonzero(full & ~in_test), strict=True)), n_users, n_items)
    test = make_dataset(list(zip(*np.nonzero(in_test), strict=True)), n_users, n_items)
    scores = rng.normal(size=(n_users, n_items))
    model = FakeModel(scores, train)
    res = evaluate(model, train, test, cutoffs=(5, 10), batch_size=7)
    users = np.flatnonzero(in_test.any(axis=1))
    top = model.recommend(users, n=10).items
    expected = ranking_metrics(top, test.to_csr()[users], cutoffs=(5, 10))
    for name, values in expected.items():
        np.testing.assert_allclose(res.per_user[name].to_numpy(), values, err_msg=name)


def test_item_popularity_override_and_validation() -> None:
    pop = np.linspace(0, 1, 6)
    res = evaluate(FakeModel(SCORES, TRAIN), TRAIN, TEST, cutoffs=[1], item_popularity=pop)
    # lists@1: items 1, 2, 0, 0 -> popularity 0.2, 0.4, 0.0, 0.0
    np.testing.assert_allclose(res.per_user["mean_popularity_at_1"], [0.2, 0.4, 0.0, 0.0])
    with pytest.raises(DataValidationError, match="one value per item"):
        evaluate(FakeModel(SCORES, TRAIN), TRAIN, TEST, cutoffs=[1], item_popularity=pop[:3])


def test_cutoff_longer_than_catalogue_is_padded() -> None:
    res = evaluate(FakeModel(SCORES, TRAIN), TRAIN, TEST, cutoffs=[8])
    # lists have at most 6 - |train| items; missing places are misses: user 0 hits 1 of 8
    assert res.per_user.loc[0, "precision_at_8"] == pytest.approx(1 / 8)
    assert res.per_user.loc[0, "recall_at_8"] == 1.0


def test_input_validation() -> None:
    model = FakeModel(SCORES, TRAIN)
    other_items = make_dataset([(0, 1)], n_items=7)
    with pytest.raises(DataValidationError, match="share user and item indices"):
        evaluate(model, TRAIN, other_items)
    with pytest.raises(ConfigError, match=r"evaluation.cutoffs must be .*; got \[0\]"):
        evaluate(model, TRAIN, TEST, cutoffs=[0])
    with pytest.raises(ConfigError, match="batch_size"):
        evaluate(model, TRAIN, TEST, batch_size=0)
    with pytest.raises(DataValidationError, match="boolean mask over all 6 users"):
        evaluate(model, TRAIN, TEST, segments={"x": np.array([0, 1])})
    with pytest.raises(ConfigError, match="other than 'overall'"):
        evaluate(model, TRAIN, TEST, segments={"overall": np.ones(6, bool)})
    with pytest.raises(DataValidationError, match="at least one interaction"):
        evaluate(model, TRAIN, make_dataset([]))


def test_overlap_between_train_and_test_warns_with_a_count() -> None:
    test = make_dataset([(0, 0), (0, 1)])  # (0, 0) is also a training pair
    with pytest.warns(DataWarning, match="^1 test interactions also appear in train"):
        res = evaluate(FakeModel(SCORES, TRAIN), TRAIN, test, cutoffs=[2])
    # user 0 can only hit item 1 of |T| = 2: recall 1/2; AUC over candidates 1..5 with positive 1 -> 1
    assert res.per_user.loc[0, "recall_at_2"] == 0.5
    assert res.per_user.loc[0, "auc"] == 1.0


# ---------------------------------------------------------------------------------------------- outputs
def test_to_metrics_keys_are_mlflow_safe() -> None:
    res = evaluate(
        FakeModel(SCORES, TRAIN), TRAIN, TEST, cutoffs=[10, 20], segments=attribute_segments(TRAIN, ["gender", "age"])
    )
    metrics = res.to_metrics()
    assert metrics["eval/ndcg_at_10"] == res.overall["ndcg_at_10"]
    assert metrics["eval/gender/F/recall_at_20"] == res.segments["gender=F"]["recall_at_20"]
    assert metrics["eval/age/20.0/n_users"] == 2  # float column with a NaN: values print as floats
    for key, value in metrics.items():
        assert "@" not in key and "=" not in key
        assert MLFLOW_NAME.match(key), key
        assert isinstance(value, float)
    assert len(metrics) == len(res.overall) * (1 + len(res.segments))
    assert set(res.to_metrics("test")) == {"test" + k[len("eval") :] for k in metrics}
    assert "eval/valid/gender/F/n_users" in res.to_metrics("eval/valid")


def test_metric_key() -> None:
    assert metric_key("eval", "gender=F", "ndcg_at_10") == "eval/gender/F/ndcg_at_10"
    assert metric_key("eval", "zip/prefix:98", "x") == "eval/zip_prefix_98/x"
    for bad in ("", ".", ".."):
        with pytest.raises(ConfigError):
            metric_key("eval", bad, "x")


def test_to_metrics_rejects_colliding_segment_names() -> None:
    clash = Evaluation(overall={"a": 1.0}, segments={"g=F+": {"a": 1.0}, "g=F_": {"a": 2.0}}, per_user=pd.DataFrame())
    with pytest.raises(ConfigError, match="distinct as MLflow keys"):
        clash.to_metrics()


def test_table() -> None:
    res = evaluate(FakeModel(SCORES, TRAIN), TRAIN, TEST, cutoffs=[2], segments=attribute_segments(TRAIN, ["gender"]))
    table = res.table()
    assert list(table.index) == ["overall", "gender=F", "gender=M"]
    assert table.index.name == "segment"
    assert list(table.columns) == list(res.overall)
    assert table.loc["gender=F", "precision_at_2"] == res.segments["gender=F"]["precision_at_2"]
    assert table["n_users"].dtype == np.int64


def test_repr_never_shows_per_user(result: Evaluation) -> None:
    assert "per_user" not in repr(result)
    assert "user_idx" not in repr(result)


# ---------------------------------------------------------------------------------------------- segments
def test_attribute_segments_values_and_missing() -> None:
    seg = attribute_segments(TRAIN, ["gender", "age"])
    assert list(seg) == ["gender=F", "gender=M", "age=20.0", "age=30.0", "age=40.0"]
    np.testing.assert_array_equal(seg["gender=F"], [True, False, True, False, False, True])
    np.testing.assert_array_equal(seg["gender=M"], [False, True, False, False, True, False])
    # user 3 (missing gender) and user 4 (missing age) are in no segment of that attribute
    assert not any(m[3] for name, m in seg.items() if name.startswith("gender="))
    assert not any(m[4] for name, m in seg.items() if name.startswith("age="))
    assert all(m.dtype == np.bool_ and m.shape == (6,) for m in seg.values())


def test_attribute_segments_unknown_attribute() -> None:
    with pytest.raises(ConfigError) as info:
        attribute_segments(TRAIN, ["gender", "zip"])
    assert str(info.value) == "evaluation.segment_by names unknown attribute 'zip'; columns are ['age', 'gender']."


# ---------------------------------------------------------------------------------------------- package
def test_all_is_sorted_and_complete() -> None:
    assert evaluation.__all__ == sorted(evaluation.__all__)
    for name in evaluation.__all__:
        assert hasattr(evaluation, name), name


def test_evaluate_does_not_warn_on_clean_data() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(FakeModel(SCORES, TRAIN), TRAIN, TEST, cutoffs=[2], segments=attribute_segments(TRAIN, ["gender"]))
