"""Loaders: ML-100K on the shared copy, ML-1M and Delimited on small files written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from privrec.data import AGE_BANDS, Delimited, MovieLens1M, MovieLens100K, Synthetic, age_band, loaders
from privrec.errors import ConfigError, DataValidationError

SECRET = "s3cr3t-value"  # planted in bad records: must never appear in an error message


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    assert SECRET not in msg
    return msg


# ---------------------------------------------------------------------- age bands
def test_age_band_edges():
    got = age_band([1, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 90, None])
    assert got[:14].tolist() == [
        "under 18", "under 18", "18-24", "18-24", "25-34", "25-34", "35-44", "35-44",
        "45-49", "45-49", "50-55", "50-55", "56+", "56+",
    ]  # fmt: skip
    assert pd.isna(got.iloc[14])
    assert set(got.dropna()) <= set(AGE_BANDS)


# ---------------------------------------------------------------------- MovieLens 100K (shared copy)
def test_movielens_100k_real_copy(datasets_dir, monkeypatch):
    monkeypatch.setattr(loaders, "fetch_movielens_100k", lambda *_: pytest.fail("fetched although files exist"))
    data = MovieLens100K().load(datasets_dir)
    assert (data.n_users, data.n_items, data.n_interactions) == (943, 1682, 100000)
    assert data.name == "ml-100k"
    np.testing.assert_array_equal(data.users.ids, np.arange(1, 944))
    np.testing.assert_array_equal(data.items.ids, np.arange(1, 1683))
    assert data.weight.dtype == np.float32 and data.timestamp.dtype == np.int64
    assert set(np.unique(data.weight)) == {1, 2, 3, 4, 5}
    # first line of u.data: 196 242 3 881250949
    assert (data.users.id_of(data.user_idx[0]), data.items.id_of(data.item_idx[0])) == (196, 242)
    assert (data.weight[0], data.timestamp[0]) == (3.0, 881250949)
    attrs = data.user_attributes
    assert list(attrs.columns) == ["age", "gender", "occupation", "zip_code", "age_band"]
    assert attrs["age"].dtype == np.int64
    assert set(attrs["gender"]) == {"F", "M"}
    assert attrs.loc[0].tolist() == [24, "M", "technician", "85711", "18-24"]  # user 1
    zips = attrs["zip_code"]
    assert zips.str.startswith("0").any()  # leading zeros kept
    assert (~zips.str.fullmatch(r"\d{5}")).any()  # non-numeric zip codes kept as given
    assert (attrs["age_band"] == age_band(attrs["age"])).all()
    assert data.schema.quasi_identifiers == ("age", "gender", "occupation", "zip_code", "age_band")
    assert data.schema.sensitive == ("gender", "age_band")
    assert data.schema.numeric == ("age",)
    assert dict(data.schema.hierarchies) == {"zip_code": "prefix"}


def _write_ml100k(root: Path, data_lines: list[str], user_lines: list[str]) -> None:
    (root / "ml-100k").mkdir(parents=True, exist_ok=True)
    (root / "ml-100k" / "u.data").write_text("".join(line + "\n" for line in data_lines))
    (root / "ml-100k" / "u.user").write_text("".join(line + "\n" for line in user_lines))


def test_movielens_100k_fetches_when_missing(tmp_path, monkeypatch):
    calls = []

    def fake_fetch(data_dir):
        calls.append(Path(data_dir))
        _write_ml100k(Path(data_dir), ["2\t10\t4\t5", "1\t10\t3\t7"], ["1|30|F|none|02134", "2|17|M|student|T8H1N"])
        return Path(data_dir) / "ml-100k"

    monkeypatch.setattr(loaders, "fetch_movielens_100k", fake_fetch)
    data = MovieLens100K().load(tmp_path)
    assert calls == [tmp_path]
    assert data.user_attributes["occupation"].tolist() == ["none", "student"]  # "none" is not a missing value
    assert data.user_attributes["zip_code"].tolist() == ["02134", "T8H1N"]
    assert data.user_attributes["age_band"].tolist() == ["25-34", "under 18"]


def test_movielens_100k_fetch_failure_is_one_line(tmp_path, monkeypatch):
    from privrec.data import fetch

    def down(_timeout):
        raise fetch._SourceError("offline")

    monkeypatch.setattr(fetch, "_from_grouplens", down)
    monkeypatch.setattr(fetch, "_from_recbole", down)
    with pytest.raises(DataValidationError) as exc:
        MovieLens100K().load(tmp_path)
    msg = one_line(exc)
    assert "by hand" in msg and str(tmp_path / "ml-100k") in msg


def test_movielens_100k_bad_rating_counts_rows_without_values(tmp_path, monkeypatch):
    _write_ml100k(tmp_path, ["1\t10\t4\t5", f"1\t11\t{SECRET}\t6"], ["1|30|F|none|02134"])
    with pytest.raises(DataValidationError, match="1 of 2 rows") as exc:
        MovieLens100K().load(tmp_path)
    one_line(exc)


# ---------------------------------------------------------------------- MovieLens 1M (small files)
def _write_ml1m(root: Path, ratings: list[str], users: list[str]) -> Path:
    (root / "ml-1m").mkdir(parents=True)
    (root / "ml-1m" / "ratings.dat").write_text("".join(r + "\n" for r in ratings))
    (root / "ml-1m" / "users.dat").write_text("".join(u + "\n" for u in users))
    return root


def test_movielens_1m_small_files(tmp_path):
    root = _write_ml1m(
        tmp_path,
        ["10::1193::5::978300760", "2::661::3::978302109", "10::914::3::978301968", "2::1193::4::978300275"],
        ["2::M::56::16::70072", "10::F::1::10::01234", "7::M::25::0::98107-2117"],
    )
    data = MovieLens1M().load(root)
    assert data.name == "ml-1m"
    np.testing.assert_array_equal(data.users.ids, [2, 7, 10])  # numeric order, attribute-only user kept
    np.testing.assert_array_equal(data.items.ids, [661, 914, 1193])
    assert data.n_interactions == 4
    np.testing.assert_array_equal(data.user_counts, [2, 0, 2])
    np.testing.assert_array_equal(data.users.id_of(data.user_idx), [10, 2, 10, 2])
    np.testing.assert_array_equal(data.items.id_of(data.item_idx), [1193, 661, 914, 1193])
    np.testing.assert_array_equal(data.weight, [5, 3, 3, 4])
    np.testing.assert_array_equal(data.timestamp, [978300760, 978302109, 978301968, 978300275])
    attrs = data.user_attributes
    assert attrs["age"].tolist() == [56, 25, 1]
    assert attrs["age_band"].tolist() == ["56+", "25-34", "under 18"]
    assert attrs["gender"].tolist() == ["M", "M", "F"]
    assert attrs["occupation"].tolist() == ["self-employed", "other", "K-12 student"]
    assert attrs["zip_code"].tolist() == ["70072", "98107-2117", "01234"]
    assert data.schema.quasi_identifiers == ("age", "gender", "occupation", "zip_code", "age_band")
    assert data.schema.sensitive == ("gender", "age_band")


def test_movielens_1m_bad_age_code(tmp_path):
    root = _write_ml1m(tmp_path, ["1::1::5::978300760"], ["1::F::33::10::48067"])
    with pytest.raises(DataValidationError, match="got 1 rows with other values") as exc:
        MovieLens1M().load(root)
    assert "33" not in one_line(exc)


def test_movielens_1m_missing_files(tmp_path):
    with pytest.raises(DataValidationError, match=r"ratings\.dat and users\.dat") as exc:
        MovieLens1M().load(tmp_path)
    assert "unzip" in one_line(exc)


def test_movielens_1m_wrong_layout(tmp_path):
    root = _write_ml1m(tmp_path, ["1\t1\t5\t978300760"], ["1::F::1::10::48067"])
    with pytest.raises(DataValidationError, match="'::'-separated"):
        MovieLens1M().load(root)


# ---------------------------------------------------------------------- Delimited
def test_delimited_positional_tsv(tmp_path):
    (tmp_path / "log.tsv").write_text("u2\ti9\t4.5\nu1\ti9\t2\nu2\ti1\t1\n")
    data = Delimited(path="log.tsv").load(tmp_path)  # relative to data_dir
    assert data.users.ids.tolist() == ["u1", "u2"] and data.items.ids.tolist() == ["i1", "i9"]
    np.testing.assert_array_equal(data.user_idx, [1, 0, 1])
    np.testing.assert_array_equal(data.item_idx, [1, 1, 0])
    np.testing.assert_array_equal(data.weight, np.array([4.5, 2, 1], dtype=np.float32))
    assert data.timestamp is None and data.name == "delimited"


def test_delimited_named_columns_attributes_and_lists(tmp_path):
    (tmp_path / "log.csv").write_text("ts,item,user,score\n30,5,12,1\n10,7,3,0\n20,5,3,1\n")
    (tmp_path / "users.csv").write_text("age,uid,region\n41,12,02\n19,3,\n55,99,10\n")
    cfg = Delimited(
        path=str(tmp_path / "log.csv"), sep=",", header=True, user_col="user", item_col="item",
        rating_col=None, timestamp_col="ts", user_attributes_path="users.csv", user_attributes_id_col="uid",
        quasi_identifiers=["age", "region"], sensitive=["region"], numeric=["age"],
        hierarchies={"region": "prefix"}, name="mine",
    )  # fmt: skip
    assert cfg.quasi_identifiers == ("age", "region") and cfg.hierarchies == (("region", "prefix"),)
    data = cfg.load(tmp_path)
    assert data.users.ids.tolist() == [3, 12, 99]  # canonical integer ids become int64, numeric order
    assert data.users.ids.dtype == np.int64
    np.testing.assert_array_equal(data.weight, [1, 1, 1])
    np.testing.assert_array_equal(data.timestamp, [30, 10, 20])
    np.testing.assert_array_equal(data.users.id_of(data.user_idx), [12, 3, 3])
    attrs = data.user_attributes
    assert attrs["age"].tolist() == [19, 41, 55] and attrs["age"].dtype == np.int64
    assert attrs["region"].iloc[1] == "02" and pd.isna(attrs["region"].iloc[0])
    assert data.schema.numeric == ("age",) and data.name == "mine"


def test_delimited_keeps_non_canonical_ids_as_strings(tmp_path):
    (tmp_path / "log.tsv").write_text("007\t1\t1\n7\t1\t1\n")
    data = Delimited(path="log.tsv").load(tmp_path)
    assert data.users.ids.tolist() == ["007", "7"] and data.n_users == 2


def test_delimited_users_missing_from_attributes_get_missing_values(tmp_path):
    (tmp_path / "log.tsv").write_text("1\t1\t1\n2\t1\t1\n")
    (tmp_path / "a.csv").write_text("id,age\n2,30\n")
    data = Delimited(path="log.tsv", user_attributes_path="a.csv", numeric=["age"]).load(tmp_path)
    assert pd.isna(data.user_attributes["age"].iloc[0]) and data.user_attributes["age"].iloc[1] == 30
    assert str(data.user_attributes["age"].dtype) == "Int64"


@pytest.mark.parametrize(
    ("kwargs", "content", "pattern"),
    [
        ({"rating_col": 2}, f"1\t1\t{SECRET}\n2\t1\t3\n", r"dataset.rating_col must hold numbers; got 1 of 2 rows"),
        ({"timestamp_col": 3}, f"1\t1\t1\t{SECRET}\n", r"dataset.timestamp_col must hold numbers; got 1 of 1 rows"),
        ({"rating_col": 5}, "1\t1\t1\n", r"dataset.rating_col must be a column position < 3"),
        ({"header": True, "user_col": "who"}, "user\titem\tr\n1\t1\t1\n", r"dataset.user_col must name a column"),
        ({}, "\t1\t1\n", r"dataset.user_col must not be empty; got 1 of 1 rows"),
    ],
)
def test_delimited_data_errors_name_parameter_and_count(tmp_path, kwargs, content, pattern):
    (tmp_path / "log.tsv").write_text(content)
    with pytest.raises(DataValidationError, match=pattern) as exc:
        Delimited(path="log.tsv", **kwargs).load(tmp_path)
    one_line(exc)


def test_delimited_missing_file(tmp_path):
    with pytest.raises(DataValidationError, match=r"dataset\.path must be an existing file"):
        Delimited(path="nope.tsv").load(tmp_path)


def test_delimited_duplicate_attribute_rows(tmp_path):
    (tmp_path / "log.tsv").write_text("1\t1\t1\n")
    (tmp_path / "a.csv").write_text("id,g\n1,F\n1,M\n")
    with pytest.raises(DataValidationError, match="one row per user; got 1 repeated"):
        Delimited(path="log.tsv", user_attributes_path="a.csv").load(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"user_col": "user"}, r"dataset.user_col names a column, which needs a header row"),
        ({"item_col": -1}, r"dataset.item_col must be a column position"),
        ({"rating_col": 0}, r"must be different columns"),
        ({"sensitive": ["gender"]}, r"need dataset.user_attributes_path"),
        ({"header": "yes"}, r"dataset.header must be true or false"),
        ({"quasi_identifiers": [1]}, r"dataset.quasi_identifiers must be a list of non-empty column names"),
    ],
)
def test_delimited_config_errors(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        Delimited(path="x.tsv", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_users": 0}, "dataset.n_users must be >= 1; got 0."),
        ({"n_items": 2.5}, "dataset.n_items must be an integer >= 1; got 2.5."),
        ({"attribute_signal": 1.5}, "dataset.attribute_signal must be in [0, 1]; got 1.5."),
        ({"n_interactions": 10, "n_users": 20}, "dataset.n_interactions must be >= dataset.n_users"),
        ({"n_clusters": 600}, "dataset.n_clusters must be <= dataset.n_items"),
        ({"seed": True}, "dataset.seed must be an integer >= 0; got True."),
    ],
)
def test_synthetic_config_errors(kwargs, message):
    with pytest.raises(ConfigError) as exc:
        Synthetic(**kwargs)
    assert str(exc.value).startswith(message)


def test_loaders_are_frozen_keyword_only():
    with pytest.raises(TypeError):
        Synthetic(10)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Synthetic().n_users = 5  # type: ignore[misc]
