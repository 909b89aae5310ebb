"""published_segments: small segments are merged into ``other`` or dropped, never published on their own."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from privrec.data.dataset import Dataset, Vocabulary
from privrec.errors import ConfigError, DataWarning
from privrec.evaluation import (
    MIN_SEGMENT_USERS,
    attribute_segments,
    check_min_segment_users,
    evaluate,
    published_segments,
)
from privrec.models.base import Recommendations

# value -> number of users; the small values have distinctive names, to search for them in every output
BIG_A, BIG_B = "Avalon", "Brightwater"
SMALL = ("Qx7Crest", "Qx7Dunmore", "Qx7Elmfield")


def people(counts: dict[str, int], *, missing: int = 0, n_items: int = 4, attr: str = "town") -> Dataset:
    """One user per entry of ``counts`` (repeated), then ``missing`` users without a value; each user has
    one interaction with item ``idx % n_items``."""
    values = [v for v, n in counts.items() for _ in range(n)] + [None] * missing
    n = len(values)
    return Dataset(
        users=Vocabulary(np.arange(n)),
        items=Vocabulary(np.arange(n_items)),
        user_idx=np.arange(n, dtype=np.int32),
        item_idx=(np.arange(n) % n_items).astype(np.int32),
        weight=np.ones(n, np.float32),
        user_attributes=pd.DataFrame({attr: pd.array(values, dtype="string")}),
    )


class SameList:
    """Recommends items 0, 1, 2, ... to everyone (enough of a model to produce metrics)."""

    def __init__(self, n_items: int) -> None:
        self.n_items = n_items

    def recommend(self, users, *, n, exclude_seen=True):
        users = np.asarray(users, dtype=np.int64)
        items = np.tile(np.arange(min(n, self.n_items)), (users.size, 1))
        return Recommendations(users=users, items=items, scores=-items.astype(float),
                               fallback=np.zeros(users.size, dtype=bool))

    def score(self, users):
        return np.tile(-np.arange(self.n_items, dtype=float), (len(users), 1))


def published(data, attrs=("town",), **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        segments = published_segments(data, list(attrs), **kw)
    return segments, [w for w in caught if issubclass(w.category, DataWarning)]


def sizes(segments):
    return {name: int(mask.sum()) for name, mask in segments.items()}


def test_default_threshold_is_20():
    assert MIN_SEGMENT_USERS == 20
    data = people({BIG_A: 20, BIG_B: 19}, missing=20)  # B dropped; 19 + 20 left out of every segment
    segments, _ = published(data)
    assert list(segments) == ["town=Avalon"]


def test_small_values_merge_into_other_and_users_without_a_value_join_it():
    # A 25, B 12, three small values (5 + 4 + 3 = 12 >= 10), one user without a value (a remainder of 1)
    data = people({BIG_A: 25, BIG_B: 12, SMALL[0]: 5, SMALL[1]: 4, SMALL[2]: 3}, missing=1)
    segments, caught = published(data, min_users=10)
    assert sizes(segments) == {"town=Avalon": 25, "town=Brightwater": 12, "town=other": 13}
    other = segments["town=other"]
    assert other[-1] and not other[:37].any() and other[37:49].all()  # the small values and the missing user
    (w,) = caught
    assert str(w.message) == (
        "3 segments with fewer than 10 evaluated users (evaluation.min_segment_users) are not published on their "
        "own (12 users): 3 merged into 1 'other' segments, 0 dropped.")


def test_other_below_the_threshold_takes_the_smallest_large_value_against_subtraction():
    # other = 3 + 2 < 10; publishing A and B would give those 5 users' mean as overall - A - B
    data = people({BIG_A: 30, BIG_B: 15, SMALL[0]: 3, SMALL[1]: 2})
    segments, caught = published(data, min_users=10)
    assert sizes(segments) == {"town=Avalon": 30, "town=other": 20}
    (w,) = caught
    assert "2 merged into 1 'other' segments, 0 dropped. 1 larger segments were merged or dropped too" in str(
        w.message)


def test_other_below_the_threshold_is_dropped_when_what_is_left_out_is_large():
    # other = 5 < 10 dropped; 12 users without a value + those 5 = 17 >= 10 may stay unpublished
    data = people({BIG_A: 30, SMALL[0]: 3, SMALL[1]: 2}, missing=12)
    segments, caught = published(data, min_users=10)
    assert sizes(segments) == {"town=Avalon": 30}
    (w,) = caught
    assert "2 segments with fewer than 10" in str(w.message) and "0 merged into 0 'other' segments, 2 dropped" in str(
        w.message)


def test_all_small_and_other_too_small_publishes_nothing():
    segments, caught = published(people({SMALL[0]: 3, SMALL[1]: 2}), min_users=10)
    assert segments == {} and len(caught) == 1


def test_counted_users_decide_not_the_mask_size():
    data = people({BIG_A: 30, BIG_B: 30})
    counted = np.ones(60, dtype=bool)
    counted[30:55] = False  # only 5 of B's users were evaluated
    segments, _ = published(data, min_users=10, counted=counted)
    # B (5 counted) has nowhere to merge: other = 5 < 10, the remainder 5 takes A along into other
    assert list(segments) == ["town=other"] and segments["town=other"].sum() == 60


def test_consent_groups_small_one_dropped_and_its_complement_too():
    data = people({BIG_A: 50})
    opted_out = np.zeros(50, dtype=bool)
    opted_out[:5] = True
    groups = {"consented": ~opted_out, "opted_out": opted_out}
    segments, caught = published(data, attrs=(), groups=groups, min_users=10)
    assert segments == {}  # consented alone would give the 5 opted-out users' mean as overall - consented
    (w,) = caught
    assert "1 segments with fewer than 10" in str(w.message) and "1 larger segments" in str(w.message)
    # an empty group exposes nobody: kept (a sweep over opt-out rates keeps its metric names at rate 0)
    segments, caught = published(data, attrs=(), groups={"consented": np.ones(50, bool),
                                                         "opted_out": np.zeros(50, bool)}, min_users=10)
    assert list(segments) == ["consented", "opted_out"] and not caught


def test_zero_publishes_every_segment_without_warning():
    data = people({BIG_A: 3, SMALL[0]: 1}, missing=1)
    segments, caught = published(data, min_users=0)
    assert segments.keys() == attribute_segments(data, ["town"]).keys() and not caught


def test_other_label_never_collides_with_a_published_value():
    data = people({"other": 12, BIG_A: 11, SMALL[0]: 6, SMALL[1]: 6})
    segments, _ = published(data, min_users=10)
    assert sizes(segments) == {"town=Avalon": 11, "town=other": 12, "town=other_merged": 12}


@pytest.mark.parametrize("bad", [-1, True, "abc", 2.5, None])
def test_bad_threshold(bad):
    with pytest.raises(ConfigError, match=r"^evaluation\.min_segment_users must be a non-negative integer; got "):
        check_min_segment_users(bad)
    with pytest.raises(ConfigError):
        published_segments(people({BIG_A: 3}), ["town"], min_users=bad)


def test_small_values_never_reach_names_metrics_table_or_warnings():
    data = people({BIG_A: 25, BIG_B: 12, SMALL[0]: 5, SMALL[1]: 4, SMALL[2]: 3}, missing=1, n_items=6)
    segments, caught = published(data, min_users=10)
    model = SameList(6)
    empty = Dataset(users=data.users, items=data.items, user_idx=np.array([], np.int32),
                    item_idx=np.array([], np.int32), weight=np.array([], np.float32),
                    user_attributes=data.user_attributes)
    with warnings.catch_warnings(record=True) as more:
        warnings.simplefilter("always")
        result = evaluate(model, empty, data, cutoffs=[2], segments=segments)
    published_text = " ".join([*result.to_metrics(), result.table().to_csv(),
                               *(str(w.message) for w in [*caught, *more])])
    assert "town/Avalon/ndcg_at_2" in published_text and "town/other/ndcg_at_2" in published_text
    for value in SMALL:
        assert value not in published_text
    assert result.segments["town=other"]["n_users"] == 13


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(1, 30), min_size=1, max_size=8), missing=st.integers(0, 25),
       min_users=st.integers(1, 25), not_counted=st.sets(st.integers(0, 300), max_size=40))
def test_published_segments_are_large_and_leave_no_small_remainder(counts, missing, min_users, not_counted):
    data = people({f"v{j}": n for j, n in enumerate(counts)}, missing=missing)
    counted = np.ones(data.n_users, dtype=bool)
    counted[[i for i in not_counted if i < data.n_users]] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        segments = published_segments(data, ["town"], counted=counted, min_users=min_users)
    masks = list(segments.values())
    for mask in masks:
        assert (mask & counted).sum() >= min_users  # every published segment
    if masks:
        stacked = np.vstack(masks)
        assert (stacked.sum(axis=0) <= 1).all()  # disjoint
        left_out = int((counted & ~stacked.any(axis=0)).sum())
        assert left_out == 0 or left_out >= min_users  # nothing small recoverable by subtraction
    codes = data.user_attributes["town"]
    for name, mask in segments.items():
        value = name.split("=", 1)[1]
        if value != "other":
            assert ((codes == value).fillna(False).to_numpy() == mask).all()  # a real value: exactly its users
    assert not any(re.fullmatch(r"town=v\d+", n) and segments[n].sum() < min_users for n in segments)


def test_evaluate_counts_empty_attribute_segments_without_naming_them():
    data = people({BIG_A: 4, SMALL[0]: 2}, n_items=6)
    test = Dataset(users=data.users, items=data.items, user_idx=np.arange(4, dtype=np.int32),
                   item_idx=np.zeros(4, np.int32), weight=np.ones(4, np.float32), user_attributes=data.user_attributes)
    train = Dataset(users=data.users, items=data.items, user_idx=np.array([], np.int32),
                    item_idx=np.array([], np.int32), weight=np.array([], np.float32))
    opted_out = np.zeros(6, dtype=bool)
    opted_out[5] = True  # a member without test data
    masks = {**attribute_segments(data, ["town"]), "opted_out": opted_out, "nobody": np.zeros(6, dtype=bool)}
    with pytest.warns(DataWarning) as caught:
        result = evaluate(SameList(6), train, test, cutoffs=[2], segments=masks)
    (message,) = [str(w.message) for w in caught if "no evaluated user" in str(w.message)]
    # a group nobody is in (opted_out of a run where nobody opted out) is not worth a warning; it is still NaN
    assert message == ("2 segments have no evaluated user (none with test data); their metrics are NaN: "
                       "'opted_out', 1 attribute values.")
    assert result.segments["nobody"]["n_users"] == 0.0
