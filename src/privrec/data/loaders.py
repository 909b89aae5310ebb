"""Dataset loaders: one frozen, keyword-only dataclass per source, each with ``load(data_dir) -> Dataset``.

There is no registry: a Hydra node names the class (``_target_: privrec.data.loaders.MovieLens100K``) and
its fields, which are plain YAML types (lists are accepted where tuples are declared). Fields are validated
when the object is built (:class:`~privrec.errors.ConfigError`); files are validated when read
(:class:`~privrec.errors.DataValidationError`). Messages carry counts, never a record value or a user id.

Every loader returns ``weight`` as the raw rating or count (float32) and ``timestamp`` as int64 seconds when
the source has one. Vocabularies are ordered by external id; users that appear only in the attribute file
are kept as empty rows. Everything is vectorised with numpy/pandas.

``read(data_dir) -> LoadResult`` also returns the SHA-256 of every input as it was parsed (the run's
``data.sha256``; :mod:`privrec.data.digest`), ``load(data_dir)`` only the dataset, and ``input_files(data_dir)``
the files ``read`` opens (a process-level cache keys on their size and modification time).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from privrec.data._checks import (
    check_bool,
    check_column,
    check_float,
    check_hierarchies,
    check_int,
    check_names,
    check_path,
    check_str,
)
from privrec.data.dataset import Dataset, Schema, Vocabulary
from privrec.data.digest import LoadResult, Source, _HashingReader
from privrec.data.fetch import fetch_movielens_100k
from privrec.errors import ConfigError, DataValidationError

__all__ = ["AGE_BANDS", "Delimited", "MovieLens1M", "MovieLens100K", "SEPARATORS", "Synthetic", "age_band",
           "dataset_from_ids"]

#: Age bands of MovieLens 1M, used for every dataset's ``age_band`` attribute.
AGE_BANDS: tuple[str, ...] = ("under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
_AGE_BAND_EDGES = np.array([18, 25, 35, 45, 50, 56])  # lower edge of every band but the first
_ML1M_AGE_CODES = np.array([1, 18, 25, 35, 45, 50, 56])
#: MovieLens 1M occupation codes (its README), 0..20.
_ML1M_OCCUPATIONS: tuple[str, ...] = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)  # fmt: skip

# age_band is derived from age, so it is a quasi-identifier too: releasing it raw beside a generalised age
# would undo the generalisation. gender and age_band are also the sensitive attributes that attacks infer.
_MOVIELENS_SCHEMA = Schema(
    quasi_identifiers=("age", "gender", "occupation", "zip_code", "age_band"),
    sensitive=("gender", "age_band"),
    numeric=("age",),
    hierarchies=(("zip_code", "prefix"),),
)


def _setter(obj: object) -> Callable[[str, object], None]:
    """``set_(name, value)`` for a frozen dataclass's ``__post_init__`` (normalising validated fields)."""

    def set_(name: str, value: object) -> None:
        object.__setattr__(obj, name, value)

    return set_


def age_band(age: ArrayLike) -> pd.Series:
    """MovieLens 1M age band of each age (years, or an ML-1M age code, which is a band's lower edge).

    Missing or non-numeric ages give a missing band.
    """
    years = pd.to_numeric(pd.Series(np.asarray(age, dtype=object)), errors="coerce").to_numpy(dtype=np.float64)
    codes = np.searchsorted(_AGE_BAND_EDGES, np.nan_to_num(years, nan=0.0), side="right")
    labels = np.asarray(AGE_BANDS, dtype=object)[codes]
    labels[np.isnan(years)] = None
    return pd.Series(labels, name="age_band")


# ====================================================================== MovieLens
@dataclass(frozen=True, kw_only=True)
class MovieLens100K:
    """GroupLens MovieLens 100K: ``<data_dir>/ml-100k/u.data`` and ``u.user``, fetched when missing.

    943 users, 1682 items, 100,000 ratings (1-5) with timestamps. Attributes: ``age`` (int), ``gender``
    (``"F"``/``"M"``), ``occupation``, ``zip_code`` (string as given), ``age_band`` (derived, ML-1M bands).
    """

    def load(self, data_dir: str | os.PathLike) -> Dataset:
        return self.read(data_dir).data

    def input_files(self, data_dir: str | os.PathLike) -> tuple[Path, ...]:
        return (Path(data_dir) / "ml-100k" / "u.data", Path(data_dir) / "ml-100k" / "u.user")

    def read(self, data_dir: str | os.PathLike) -> LoadResult:
        """The dataset and the digests of ``ml-100k/u.data`` and ``ml-100k/u.user`` (fetched when missing)."""
        root = Path(data_dir) / "ml-100k"
        if not ((root / "u.data").is_file() and (root / "u.user").is_file()):
            fetch_movielens_100k(data_dir)
        sources: list[Source] = []
        ratings = _read_table(
            root / "u.data", what="ml-100k/u.data", sep="\t", header=False,
            names=["user_id", "item_id", "rating", "timestamp"], sources=sources,
        )  # fmt: skip
        users = _read_table(
            root / "u.user", what="ml-100k/u.user", sep="|", header=False,
            names=["user_id", "age", "gender", "occupation", "zip_code"],
            dtype={"gender": str, "occupation": str, "zip_code": str}, strict_na=True, sources=sources,
        )  # fmt: skip
        attrs = pd.DataFrame(
            {
                "age": _whole(users["age"], "ml-100k/u.user age"),
                "gender": users["gender"].to_numpy(dtype=object),
                "occupation": users["occupation"].to_numpy(dtype=object),
                "zip_code": users["zip_code"].to_numpy(dtype=object),
            }
        )
        attrs["age_band"] = age_band(attrs["age"]).to_numpy(dtype=object)
        data = _movielens_dataset(ratings, users["user_id"], attrs, name="ml-100k", what="ml-100k")
        return LoadResult(data=data, sources=tuple(sources))


@dataclass(frozen=True, kw_only=True)
class MovieLens1M:
    """GroupLens MovieLens 1M: ``<data_dir>/ml-1m/ratings.dat`` and ``users.dat`` (``::``-separated).

    Not fetched on first use: ``privrec data fetch ml-1m`` (or unzip GroupLens' ``ml-1m.zip`` into
    ``data_dir``). ``age`` keeps the ML-1M age code (1, 18, 25, 35, 45, 50, 56: the band's lower edge),
    ``age_band`` is its label; ``occupation`` codes 0-20 are mapped to the labels of the ML-1M README. Same
    attributes and schema as :class:`MovieLens100K`.
    """

    def load(self, data_dir: str | os.PathLike) -> Dataset:
        return self.read(data_dir).data

    def input_files(self, data_dir: str | os.PathLike) -> tuple[Path, ...]:
        return (Path(data_dir) / "ml-1m" / "ratings.dat", Path(data_dir) / "ml-1m" / "users.dat")

    def read(self, data_dir: str | os.PathLike) -> LoadResult:
        """The dataset and the digests of ``ml-1m/ratings.dat`` and ``ml-1m/users.dat``."""
        root = Path(data_dir) / "ml-1m"
        missing = [n for n in ("ratings.dat", "users.dat") if not (root / n).is_file()]
        if missing:
            raise DataValidationError(
                f"MovieLens1M needs ratings.dat and users.dat in {root}; got {len(missing)} of them missing. "
                "Run `privrec data fetch ml-1m`, or download ml-1m.zip from "
                f"https://grouplens.org/datasets/movielens/1m/ and unzip it into {Path(data_dir)}."
            )
        sources: list[Source] = []
        ratings = _read_double_colon(
            root / "ratings.dat", "ml-1m/ratings.dat", ["user_id", "item_id", "rating", "timestamp"], sources=sources
        )
        users = _read_double_colon(
            root / "users.dat", "ml-1m/users.dat", ["user_id", "gender", "age", "occupation", "zip_code"],
            text=("gender", "zip_code"), sources=sources,
        )  # fmt: skip
        age = _whole(users["age"], "ml-1m/users.dat age")
        bad_age = ~np.isin(age, _ML1M_AGE_CODES)
        if bad_age.any():
            raise DataValidationError(
                f"ml-1m/users.dat age must be one of the codes {', '.join(map(str, _ML1M_AGE_CODES))}; "
                f"got {int(bad_age.sum())} rows with other values."
            )
        occupation = _whole(users["occupation"], "ml-1m/users.dat occupation")
        bad_occ = (occupation < 0) | (occupation >= len(_ML1M_OCCUPATIONS))
        if bad_occ.any():
            raise DataValidationError(
                f"ml-1m/users.dat occupation must be a code in [0, {len(_ML1M_OCCUPATIONS) - 1}]; "
                f"got {int(bad_occ.sum())} rows outside it."
            )
        attrs = pd.DataFrame(
            {
                "age": age,
                "gender": users["gender"].to_numpy(dtype=object),
                "occupation": np.asarray(_ML1M_OCCUPATIONS, dtype=object)[occupation],
                "zip_code": users["zip_code"].to_numpy(dtype=object),
            }
        )
        attrs["age_band"] = age_band(age).to_numpy(dtype=object)
        data = _movielens_dataset(ratings, users["user_id"], attrs, name="ml-1m", what="ml-1m")
        return LoadResult(data=data, sources=tuple(sources))


def _read_double_colon(
    path: Path, what: str, names: list[str], text: tuple[str, ...] = (), *, sources: list[Source] | None = None
) -> pd.DataFrame:
    """Read a ``::``-separated file with the fast C parser: split on ``:`` and check every other field is empty."""
    n = len(names)
    frame = _read_table(
        path, what=what, sep=":", header=False, dtype={2 * names.index(t): str for t in text}, strict_na=True,
        sources=sources,
    )  # fmt: skip
    odd = list(range(1, 2 * n - 1, 2))
    if frame.shape[1] != 2 * n - 1 or not frame[odd].isna().all().all():
        raise DataValidationError(
            f"{what} must have {n} '::'-separated fields per line; got a different layout "
            f"({frame.shape[1]} ':'-fields). A field may not contain ':'."
        )
    frame = frame[list(range(0, 2 * n - 1, 2))]
    frame.columns = names
    return frame


def _movielens_dataset(
    ratings: pd.DataFrame, attr_user_ids: pd.Series, attrs: pd.DataFrame, *, name: str, what: str
) -> Dataset:
    user_ids = _whole(ratings["user_id"], f"{what} ratings user ids")
    item_ids = _whole(ratings["item_id"], f"{what} ratings item ids")
    weight = _numbers(ratings["rating"], f"{what} ratings rating").astype(np.float32)
    timestamp = np.floor(_numbers(ratings["timestamp"], f"{what} ratings timestamp")).astype(np.int64)
    attr_ids = _whole(attr_user_ids, f"{what} users user ids")
    users = Vocabulary(np.unique(np.concatenate([user_ids, attr_ids])))
    items = Vocabulary(np.unique(item_ids))
    return Dataset(
        users=users,
        items=items,
        user_idx=np.searchsorted(users.ids, user_ids).astype(np.int32),
        item_idx=np.searchsorted(items.ids, item_ids).astype(np.int32),
        weight=weight,
        timestamp=timestamp,
        user_attributes=_align_rows(attrs, np.searchsorted(users.ids, attr_ids), len(users), f"{what} users file"),
        schema=_MOVIELENS_SCHEMA,
        name=name,
    )


# ====================================================================== Delimited
#: Names ``dataset.sep`` accepts besides the character itself (``dataset.sep=,`` is Hydra syntax, not a comma).
SEPARATORS: dict[str, str] = {"tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}


def _separator(group: str, name: str, value: object) -> str:
    """A field separator: a name of :data:`SEPARATORS` (``tab``, ``comma``...) or the separator itself."""
    text = check_str(group, name, value)
    return SEPARATORS.get(text.lower(), text) if len(text) > 1 else text


@dataclass(frozen=True, kw_only=True)
class Delimited:
    """Any CSV/TSV interaction log, plus an optional user-attribute table.

    ``path`` is required. ``sep`` and ``user_attributes_sep``: the separator, or one of the names of
    :data:`SEPARATORS` (``tab``, ``comma``, ``semicolon``, ``pipe``, ``space``: ``dataset.sep=,`` is Hydra syntax).
    Columns are given by position (``int``, 0-based) or by name (``str``, needs a header). ``rating_col=None``
    gives every interaction weight 1. Timestamps must be numbers of seconds (fractions are floored).
    Relative paths resolve against ``data_dir``. Ids that are all plain integers (``"42"``, not ``"042"``)
    become int64 ids, anything else stays a string. Attribute columns are strings, except those named in
    ``numeric``, which are parsed as numbers. Without an attribute header, attribute columns are named by
    their position (``"1"``, ``"2"``, ...). ``hierarchies`` maps categorical attributes to a generalisation
    kind (``{"zip_code": "prefix"}``), as in :class:`~privrec.data.dataset.Schema`.
    """

    path: str
    sep: str = "\t"
    header: bool = False
    user_col: int | str = 0
    item_col: int | str = 1
    rating_col: int | str | None = 2
    timestamp_col: int | str | None = None
    user_attributes_path: str | None = None
    user_attributes_sep: str = ","
    user_attributes_header: bool = True
    user_attributes_id_col: int | str = 0
    quasi_identifiers: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    hierarchies: tuple[tuple[str, str], ...] = ()
    name: str = "delimited"

    def __post_init__(self) -> None:
        g = "dataset"
        set_ = _setter(self)
        if self.path in ("???", "", None):  # OmegaConf's mark of a mandatory value nobody set
            raise ConfigError(
                "dataset.path must be set: it is required (the interaction log to load, e.g. "
                "dataset.path=/abs/path/log.csv; privrec data inspect FILE prints the overrides); got nothing."
            )
        set_("path", check_path(g, "path", self.path))
        set_("sep", _separator(g, "sep", self.sep))
        set_("header", check_bool(g, "header", self.header))
        for col in ("user_col", "item_col"):
            set_(col, check_column(g, col, getattr(self, col), header=self.header))
        for col in ("rating_col", "timestamp_col"):
            set_(col, check_column(g, col, getattr(self, col), header=self.header, optional=True))
        used = [c for c in (self.user_col, self.item_col, self.rating_col, self.timestamp_col) if c is not None]
        if len(set(used)) != len(used):
            raise ConfigError(
                f"dataset.user_col, item_col, rating_col and timestamp_col must be different columns; got {used!r}."
            )
        set_("user_attributes_path", check_path(g, "user_attributes_path", self.user_attributes_path, optional=True))
        set_("user_attributes_sep", _separator(g, "user_attributes_sep", self.user_attributes_sep))
        set_("user_attributes_header", check_bool(g, "user_attributes_header", self.user_attributes_header))
        set_(
            "user_attributes_id_col",
            check_column(g, "user_attributes_id_col", self.user_attributes_id_col, header=self.user_attributes_header),
        )
        for names in ("quasi_identifiers", "sensitive", "numeric"):
            set_(names, check_names(g, names, getattr(self, names)))
        set_("hierarchies", check_hierarchies(g, "hierarchies", self.hierarchies))
        set_("name", check_str(g, "name", self.name))
        named = (*self.quasi_identifiers, *self.sensitive, *self.numeric, *(k for k, _ in self.hierarchies))
        if named and self.user_attributes_path is None:
            raise ConfigError(
                "dataset.quasi_identifiers, sensitive, numeric and hierarchies name user attributes, which need "
                f"dataset.user_attributes_path; got {len(set(named))} names and no attribute file."
            )

    def load(self, data_dir: str | os.PathLike) -> Dataset:
        return self.read(data_dir).data

    def known_attributes(self) -> tuple[tuple[str, ...], Schema] | None:
        """The user-attribute columns and schema when known without reading a file: without
        ``user_attributes_path`` there are none (``((), Schema())``); with one, ``None`` (known once read).
        Lets a run decide before any work what needs attributes (:func:`privrec.experiment.plan`)."""
        if self.user_attributes_path is not None:
            return None
        return (), Schema()

    def input_files(self, data_dir: str | os.PathLike) -> tuple[Path, ...]:
        paths = (self.path,) if self.user_attributes_path is None else (self.path, self.user_attributes_path)
        return tuple(_resolve(data_dir, p) for p in paths)

    def read(self, data_dir: str | os.PathLike) -> LoadResult:
        """The dataset and the digests of ``interactions`` (``path``) and ``user_attributes`` (when set)."""
        path = _resolve(data_dir, self.path)
        if not path.is_file():
            where = "" if Path(self.path).expanduser().is_absolute() else " (a relative path resolves against data_dir)"
            raise DataValidationError(
                f"dataset.path must be an existing file{where}; got {path}, which does not exist."
            )
        cols = {"user_col": self.user_col, "item_col": self.item_col}
        if self.rating_col is not None:
            cols["rating_col"] = self.rating_col
        if self.timestamp_col is not None:
            cols["timestamp_col"] = self.timestamp_col
        sources: list[Source] = []
        log = _read_columns(
            path, sep=self.sep, header=self.header, columns=cols, what="dataset.path", sources=sources
        )
        n = len(log)
        if n == 0:
            raise DataValidationError(f"dataset.path must hold at least one interaction; got 0 rows in {path.name}.")
        for key in ("user_col", "item_col"):
            empty = int(log[key].isna().sum())
            if empty:
                raise DataValidationError(f"dataset.{key} must not be empty; got {empty} of {n} rows without a value.")
        weight = (
            np.ones(n, dtype=np.float32)
            if self.rating_col is None
            else _numbers(log["rating_col"], "dataset.rating_col").astype(np.float32)
        )
        timestamp = (
            None
            if self.timestamp_col is None
            else np.floor(_numbers(log["timestamp_col"], "dataset.timestamp_col")).astype(np.int64)
        )

        attrs: pd.DataFrame | None = None
        attr_ids: pd.Series | None = None
        if self.user_attributes_path is not None:
            attrs, attr_ids = self._read_attributes(_resolve(data_dir, self.user_attributes_path), sources)

        data = dataset_from_ids(
            log["user_col"], log["item_col"], weight, timestamp, name=self.name, attr_ids=attr_ids, attrs=attrs,
            attrs_label="dataset.user_attributes_path",
            schema=Schema(
                quasi_identifiers=self.quasi_identifiers,
                sensitive=self.sensitive,
                numeric=self.numeric,
                hierarchies=self.hierarchies,
            ),
        )
        return LoadResult(data=data, sources=tuple(sources))

    def _read_attributes(self, path: Path, sources: list[Source]) -> tuple[pd.DataFrame, pd.Series]:
        table = _read_table(
            path, what="dataset.user_attributes_path", sep=self.user_attributes_sep,
            header=self.user_attributes_header, dtype=str, sources=sources, label="user_attributes",
        )  # fmt: skip
        if not self.user_attributes_header:
            table.columns = [str(c) for c in table.columns]
        id_label = _column_label(
            list(table.columns), self.user_attributes_id_col, "dataset.user_attributes_id_col", path
        )
        ids = table[id_label]
        empty = int(ids.isna().sum())
        if empty:
            raise DataValidationError(
                f"dataset.user_attributes_id_col must not be empty; got {empty} of {len(ids)} rows without a value."
            )
        attrs = table.drop(columns=[id_label]).reset_index(drop=True)
        named = (*self.quasi_identifiers, *self.sensitive, *self.numeric, *(k for k, _ in self.hierarchies))
        missing = sorted({c for c in named if c not in attrs.columns})
        if missing:
            raise DataValidationError(
                f"dataset.quasi_identifiers/sensitive/numeric/hierarchies must name attribute columns; got {missing} "
                f"not among {sorted(map(str, attrs.columns))}."
            )
        for col in self.numeric:
            values = pd.to_numeric(attrs[col], errors="coerce")
            bad = int((values.isna() & attrs[col].notna()).sum())
            if bad:
                raise DataValidationError(
                    f"dataset.numeric column {col!r} must hold numbers; got {bad} rows that do not."
                )
            whole = values.dropna()
            attrs[col] = (
                values.astype("Int64" if values.isna().any() else np.int64)
                if (whole == np.floor(whole)).all()
                else values
            )
        return attrs, ids.reset_index(drop=True)


# ====================================================================== Synthetic

def dataset_from_ids(
    user_ids: pd.Series,
    item_ids: pd.Series,
    weight: NDArray[np.float32],
    timestamp: NDArray[np.int64] | None,
    *,
    name: str,
    attr_ids: pd.Series | None = None,
    attrs: pd.DataFrame | None = None,
    attrs_label: str = "the users file",
    schema: Schema | None = None,
) -> Dataset:
    """A Dataset from a log's external ids; users of ``attr_ids`` (the attribute table's ids, rows of ``attrs``)
    without interactions become empty rows. ``attrs_label`` names the attribute table in errors."""
    users, (user_idx, *attr_rows) = _encode_ids([user_ids] if attr_ids is None else [user_ids, attr_ids])
    items, (item_idx,) = _encode_ids([item_ids])
    user_attributes = (
        pd.DataFrame(index=pd.RangeIndex(len(users)))
        if attrs is None
        else _align_rows(attrs, attr_rows[0], len(users), attrs_label)
    )
    return Dataset(
        users=users,
        items=items,
        user_idx=user_idx.astype(np.int32),
        item_idx=item_idx.astype(np.int32),
        weight=weight,
        timestamp=timestamp,
        user_attributes=user_attributes,
        schema=schema or Schema(),
        name=name,
    )

_CLUSTER_AFFINITY = 0.7  # share of a user's interactions drawn from their cluster's preferred items
_ACTIVITY_SIGMA = 1.1  # log-normal spread of user activity (heavy tail)
_CHUNK = 1 << 20  # draws per vectorised step in the generator
_BELOW_ONE = float(np.nextafter(1.0, 0.0))
_MAX_INFLATION = 4.0  # at most this many draws per distinct item a user should end up with
_T0 = 978_307_200  # 2001-01-01T00:00:00Z
_SPAN = 3 * 365 * 86_400  # three years of logs
_GENDERS = ("F", "M")
_GENDER_MARGINAL = np.array([0.3, 0.7])
_AGE_MARGINAL = np.array([0.04, 0.18, 0.35, 0.20, 0.09, 0.08, 0.06])  # close to ML-1M's
_AGE_LOW = np.array([13, 18, 25, 35, 45, 50, 56])
_AGE_HIGH = np.array([17, 24, 34, 44, 49, 55, 75])


@dataclass(frozen=True, kw_only=True)
class Synthetic:
    """Seeded implicit feedback with a known structure, from ``np.random.default_rng(seed)``.

    * Items have Zipf-like popularity: the item of popularity rank *r* has mass ``r ** -popularity_exponent``
      (ranks are shuffled over item indices).
    * Items are split evenly at random into ``n_clusters`` taste clusters. Every user belongs to one cluster
      and draws items from the mixture ``0.7 * (their cluster's items, by popularity) + 0.3 * (all items, by
      popularity)``, without repeats (draws with replacement, merged).
    * User activity is heavy-tailed: a user's target number of distinct items is ``1 + multinomial`` with
      log-normal shares, capped at half the catalogue (what capped users lose is handed to the others); the
      realised count varies around the target.
    * ``gender`` and ``age_band`` depend on the cluster: with probability ``attribute_signal`` a user takes
      the cluster's value, otherwise a draw from the population marginal (30% F; ML-1M-like age bands), so an
      attribute-inference attack has a signal when ``attribute_signal > 0`` and none at 0. ``age`` is uniform
      within the band; ``zip_code`` is a 5-digit string with a Zipf-like 3-digit prefix, independent of taste.
    * Timestamps: each user is active in a random window of the three years from 2001; their items follow
      one another in an order unrelated to item indices, and rows are stored per user in time order
      (timestamps non-decreasing within a user; rows sorted by user index).

    ``weight`` is 1 for every row. ``n_interactions`` is the *expected* number of rows (distinct user-item
    pairs): each user gets as many draws as make the expected number of distinct items their target, so the
    count is approximate, typically within 1%. It falls short when reaching a target would take more than
    4 draws per distinct item (steep popularity, ``popularity_exponent`` around 1.5 or more, or users asking
    for a large share of the catalogue). Vocabularies hold all ``n_users`` users and ``n_items`` items
    (external ids ``1..n``); every user has at least one row, some items may have none.
    Time and memory are linear in ``n_interactions``; nothing is densified.
    """

    n_users: int = 1000
    n_items: int = 500
    n_interactions: int = 20000
    n_clusters: int = 8
    popularity_exponent: float = 1.0
    attribute_signal: float = 0.8
    seed: int = 0

    def __post_init__(self) -> None:
        g = "dataset"
        set_ = _setter(self)
        set_("n_users", check_int(g, "n_users", self.n_users, minimum=1))
        set_("n_items", check_int(g, "n_items", self.n_items, minimum=1))
        set_("n_interactions", check_int(g, "n_interactions", self.n_interactions, minimum=1))
        set_("n_clusters", check_int(g, "n_clusters", self.n_clusters, minimum=1))
        set_("popularity_exponent", check_float(g, "popularity_exponent", self.popularity_exponent, low=0.0, high=10.0))
        set_("attribute_signal", check_float(g, "attribute_signal", self.attribute_signal, low=0.0, high=1.0))
        set_("seed", check_int(g, "seed", self.seed, minimum=0))
        if self.n_users >= 2**31 or self.n_items >= 2**31:
            raise ConfigError(
                f"dataset.n_users and n_items must be < 2**31 (int32 indices); got {self.n_users} and {self.n_items}."
            )
        if self.n_interactions < self.n_users:
            raise ConfigError(
                "dataset.n_interactions must be >= dataset.n_users (every user has at least one); "
                f"got {self.n_interactions} < {self.n_users}."
            )
        if self.n_interactions > self.n_users * _max_items_per_user(self.n_items):
            raise ConfigError(
                "dataset.n_interactions must be <= n_users * max(1, n_items // 2) (a user interacts with at most "
                f"half the catalogue); got {self.n_interactions} > {self.n_users * _max_items_per_user(self.n_items)}."
            )
        if self.n_clusters > self.n_items:
            raise ConfigError(
                "dataset.n_clusters must be <= dataset.n_items (every cluster prefers at least one item); "
                f"got {self.n_clusters} > {self.n_items}."
            )

    def load(self, data_dir: str | os.PathLike | None = None) -> Dataset:
        """Generate the dataset (``data_dir`` is ignored: nothing is read)."""
        return _generate(self)

    def input_files(self, data_dir: str | os.PathLike | None = None) -> tuple[Path, ...]:
        return ()

    def read(self, data_dir: str | os.PathLike | None = None) -> LoadResult:
        """The generated dataset; its sources are the digests of the parameters and of the output."""
        data = _generate(self)
        params = json.dumps({"_target_": f"{__name__}.Synthetic", **asdict(self)}, sort_keys=True,
                            separators=(",", ":"))
        return LoadResult(data=data, sources=(Source("synthetic/parameters", _sha256_text(params)),
                                              Source("synthetic/output", data.checksum())))


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _max_items_per_user(n_items: int) -> int:
    return max(1, n_items // 2)


def _user_targets(
    rng: np.random.Generator, activity: NDArray[np.float64], *, n_rows: int, cap: int
) -> NDArray[np.int64]:
    """Distinct items per user: ``1 + multinomial(n_rows - n_users, activity share)``, capped at ``cap``.

    What capped users cannot hold is handed to the others in proportion to their activity (a few rounds).
    """
    target = 1 + rng.multinomial(n_rows - len(activity), activity / activity.sum())
    for _ in range(4):
        excess = int(np.maximum(target - cap, 0).sum())
        target = np.minimum(target, cap)
        room = activity * (target < cap)
        if excess == 0 or not room.any():
            break
        target += rng.multinomial(excess, room / room.sum())
    return np.minimum(target, cap)


def _draws_for_targets(
    rng: np.random.Generator,
    target: NDArray[np.int64],
    user_cluster: NDArray[np.int64],
    mass: NDArray[np.float64],
    cluster_start: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Number of draws (with replacement) per user whose expected count of distinct items is ``target``.

    ``mass``: item probabilities laid out cluster by cluster, clusters starting at ``cluster_start``. A user of
    cluster *c* draws item *i* with probability ``p = a * mass_i / mass(c) [i in c] + (1 - a) * mass_i``, so
    ``k`` draws give ``E[distinct] = sum_i 1 - (1 - p_i) ** k``. That curve is tabulated on a grid of ``k`` per
    cluster and inverted by interpolation; draws are capped at ``_MAX_INFLATION`` times the target.
    """
    a = _CLUSTER_AFFINITY
    n_clusters = len(cluster_start)
    sizes = np.diff(np.append(cluster_start, len(mass)))
    of_cluster = np.repeat(np.arange(n_clusters), sizes)
    cluster_mass = np.add.reduceat(mass, cluster_start)
    with np.errstate(divide="ignore"):
        log_in = np.log1p(-np.minimum(a * mass / cluster_mass[of_cluster] + (1 - a) * mass, 1.0))
        log_out = np.log1p(-(1 - a) * mass)
    k_max = max(2.0, _MAX_INFLATION * float(target.max()))
    grid = np.unique(np.geomspace(1.0, k_max, 96))
    expected = np.empty((n_clusters, len(grid)))
    for j, k in enumerate(grid):  # a fixed grid of draw counts, each vectorised over items
        outside = -np.expm1(k * log_out)
        expected[:, j] = outside.sum() + np.add.reduceat(-np.expm1(k * log_in) - outside, cluster_start)
    # Invert every cluster's increasing curve at once: offset cluster c's values by c * (n_items + 2).
    g = len(grid)
    offset = float(len(mass) + 2)
    flat = (expected + offset * np.arange(n_clusters)[:, None]).ravel()
    query = target + offset * user_cluster
    pos = np.searchsorted(flat, query, side="left")
    first = user_cluster * g
    hi = np.clip(pos, first, first + g - 1)
    lo = np.clip(pos - 1, first, first + g - 1)
    k_lo, k_hi = grid[lo - first], grid[hi - first]
    span = flat[hi] - flat[lo]
    frac = np.divide(query - flat[lo], span, out=np.zeros(len(target)), where=span > 0)
    draws = np.clip(k_lo + np.clip(frac, 0.0, 1.0) * (k_hi - k_lo), target, _MAX_INFLATION * target)
    return np.floor(draws + rng.random(len(target))).astype(np.int64)  # unbiased rounding


def _guide_table(cdf: NDArray[np.float64]) -> NDArray[np.int32]:
    """Entry b: the number of ``cdf`` entries <= b / buckets, for ``buckets + 1`` equal steps of [0, 1]."""
    buckets = int(min(1 << 22, max(1024, 8 * len(cdf))))
    return np.minimum(np.searchsorted(cdf, np.arange(buckets + 1) / buckets, side="right"), len(cdf) - 1).astype(
        np.int32
    )


def _inverse_cdf(cdf: NDArray[np.float64], guide: NDArray[np.int32], y: NDArray[np.float64]) -> NDArray[np.int32]:
    """``np.searchsorted(cdf, y, side="right")`` in O(1) per query, for ``0 <= y < 1 == cdf[-1]``.

    The guide table gives each query a lower bound on its answer; a few vectorised steps move it forward,
    and the rare queries still unresolved fall back to a binary search.
    """
    pos = guide[(y * (len(guide) - 1)).astype(np.intp)]
    todo = np.flatnonzero(cdf[pos] <= y)
    for _ in range(4):
        if not todo.size:
            break
        pos[todo] += 1  # never passes the answer, which is at most len(cdf) - 1 since y < cdf[-1]
        todo = todo[cdf[pos[todo]] <= y[todo]]
    if todo.size:
        pos[todo] = np.searchsorted(cdf, y[todo], side="right")
    return pos


def _inverse_odd(odd: NDArray[np.uint64], bits: int) -> NDArray[np.uint64]:
    """Multiplicative inverse of odd numbers modulo ``2**bits`` (Newton's iteration, exact in uint64)."""
    inv = odd.copy()  # correct to 3 bits: odd * odd == 1 (mod 8)
    two = np.uint64(2)
    for _ in range(5):  # 3 -> 6 -> 12 -> 24 -> 48 -> 96 correct bits
        inv *= two - odd * inv
    return inv & np.uint64((1 << bits) - 1)


def _generate(cfg: Synthetic) -> Dataset:
    rng = np.random.default_rng(cfg.seed)
    n_users, n_items, n_clusters, a = cfg.n_users, cfg.n_items, cfg.n_clusters, _CLUSTER_AFFINITY

    # ---- items: Zipf-like popularity over shuffled ranks; clusters of equal size; items laid out by cluster
    popularity = (rng.permutation(n_items) + 1.0) ** -cfg.popularity_exponent
    item_cluster = rng.permutation(np.arange(n_items) % n_clusters)
    by_cluster = np.argsort(item_cluster, kind="stable")  # position -> item index
    cluster_size = np.bincount(item_cluster, minlength=n_clusters)
    cluster_start = np.cumsum(cluster_size) - cluster_size
    mass = popularity[by_cluster] / popularity.sum()
    cdf = np.cumsum(mass)
    cdf /= cdf[-1]
    cdf_lo = np.concatenate([[0.0], cdf])[cluster_start]  # global mass before each cluster's block
    cdf_hi = cdf[cluster_start + cluster_size - 1]

    # ---- users: cluster, heavy-tailed number of distinct items (>= 1 each, <= half the catalogue), and the
    # number of draws (with replacement) whose expected count of distinct items is that target
    user_cluster = rng.integers(0, n_clusters, size=n_users)
    activity = rng.lognormal(0.0, _ACTIVITY_SIGMA, size=n_users)
    target = _user_targets(rng, activity, n_rows=cfg.n_interactions, cap=_max_items_per_user(n_items))
    draws = _draws_for_targets(rng, target, user_cluster, mass, cluster_start)

    # ---- events, in chunks of whole users (about _CHUNK draws each; few big temporaries, since page faults
    # cost more than arithmetic here). A user of cluster c draws with probability a from c's items and
    # otherwise from all items, both by popularity: one uniform r picks the component (r < a) and the point
    # y on the global CDF, whose inverse (a guide-table lookup) is the item.
    event_end = np.cumsum(draws)
    n_events = int(event_end[-1])
    user_bounds = np.unique(
        np.concatenate(
            [[0], np.searchsorted(event_end, np.arange(_CHUNK, n_events, _CHUNK), side="left") + 1, [n_users]]
        )
    )
    guide = _guide_table(cdf)
    item_bits = max(1, int(n_items - 1).bit_length())
    mask = np.uint64((1 << item_bits) - 1)
    shift_bits = np.uint64(item_bits)
    # Sort key within a chunk = (user, h_u(item)) with h_u(i) = ((i * m_u) mod 2**bits) xor s_u, a bijection per
    # user (m_u odd): sorting groups repeated (user, item) draws and puts each user's distinct items in a
    # random order unrelated to item indices. That order is the user's time order: row r of a user with k rows
    # gets a stratified uniform time (r + U(0, 1)) / k across the user's window inside three years from 2001.
    mult = rng.integers(0, 1 << item_bits, size=n_users, dtype=np.uint64) | np.uint64(1)
    salt = rng.integers(0, 1 << item_bits, size=n_users, dtype=np.uint64)
    inverse = _inverse_odd(mult, item_bits)
    duration = rng.uniform(0.02, 1.0, size=n_users) * _SPAN
    start = _T0 + rng.uniform(0.0, 1.0, size=n_users) * (_SPAN - duration)
    item_u64 = by_cluster.astype(np.uint64)
    in_scale = (cdf_hi - cdf_lo) / a  # r in [0, a) -> lo + r * width / a, inside the user's cluster block
    out_scale, out_shift = 1.0 / (1.0 - a), -a / (1.0 - a)  # r in [a, 1) -> (r - a) / (1 - a), anywhere
    user = np.empty(n_events, dtype=np.int32)  # upper bounds; only the first n_rows are ever touched
    item = np.empty(n_events, dtype=np.int32)
    timestamp = np.empty(n_events, dtype=np.int64)
    n_rows = 0
    for u0, u1 in pairwise(user_bounds.tolist()):  # chunks of users, each step vectorised
        d = draws[u0:u1]
        n = int(d.sum())
        cl = user_cluster[u0:u1]
        r = rng.random(n)
        inside = r < a
        y = np.where(inside, np.repeat(in_scale[cl], d), out_scale)
        y *= r
        y += np.where(inside, np.repeat(cdf_lo[cl], d), out_shift)
        np.clip(y, 0.0, _BELOW_ONE, out=y)
        key = item_u64[_inverse_cdf(cdf, guide, y)]
        key *= np.repeat(mult[u0:u1], d)
        key &= mask
        key ^= np.repeat(salt[u0:u1], d)
        key |= np.repeat(np.arange(u1 - u0, dtype=np.uint64), d) << shift_bits
        key.sort()
        fresh = np.empty(n, dtype=bool)
        fresh[0] = True
        np.not_equal(key[1:], key[:-1], out=fresh[1:])
        key = key[fresh]
        m = len(key)
        local = (key >> shift_bits).astype(np.intp)
        rows = np.bincount(local, minlength=u1 - u0)
        out = slice(n_rows, n_rows + m)
        user[out] = local + u0
        key &= mask
        key ^= salt[u0:u1][local]
        key *= inverse[u0:u1][local]
        key &= mask
        item[out] = key
        rank = np.arange(m) - (np.cumsum(rows) - rows)[local]
        timestamp[out] = np.floor(start[u0:u1][local] + (rank + rng.random(m)) * (duration[u0:u1] / rows)[local])
        n_rows += m
    user, item, timestamp = user[:n_rows], item[:n_rows], timestamp[:n_rows]
    weight = np.ones(n_rows, dtype=np.float32)

    # ---- attributes: cluster-driven gender and age band, independent zip code
    def draw(marginal: NDArray[np.float64]) -> NDArray[np.int64]:
        if len(marginal) == 2:  # alternate, so both values own clusters whenever there are two or more
            mode = (np.arange(n_clusters) + rng.integers(2)) % 2
        else:
            mode = rng.choice(len(marginal), size=n_clusters, p=marginal)
        own = rng.random(n_users) < cfg.attribute_signal
        background = np.searchsorted(np.cumsum(marginal), rng.random(n_users), side="right")
        return np.where(own, mode[user_cluster], np.minimum(background, len(marginal) - 1))

    gender = draw(_GENDER_MARGINAL)
    band = draw(_AGE_MARGINAL)
    age = _AGE_LOW[band] + (rng.random(n_users) * (_AGE_HIGH - _AGE_LOW + 1)[band]).astype(np.int64)
    prefix_mass = np.cumsum((rng.permutation(1000) + 1.0) ** -0.8)
    prefix = np.minimum(np.searchsorted(prefix_mass, rng.random(n_users) * prefix_mass[-1], side="right"), 999)
    zip_code = pd.Series(prefix * 100 + rng.integers(0, 100, size=n_users)).astype(str).str.zfill(5)
    attrs = pd.DataFrame(
        {
            "age": age.astype(np.int64),
            "gender": np.asarray(_GENDERS, dtype=object)[gender],
            "age_band": np.asarray(AGE_BANDS, dtype=object)[band],
            "zip_code": zip_code.to_numpy(dtype=object),
        }
    )
    return Dataset(
        users=Vocabulary(np.arange(1, n_users + 1, dtype=np.int64)),
        items=Vocabulary(np.arange(1, n_items + 1, dtype=np.int64)),
        user_idx=user.astype(np.int32),
        item_idx=item.astype(np.int32),
        weight=weight,
        timestamp=timestamp,
        user_attributes=_infer_strings(attrs),
        schema=Schema(
            quasi_identifiers=("age", "gender", "zip_code"),
            sensitive=("gender", "age_band"),
            numeric=("age",),
            hierarchies=(("zip_code", "prefix"),),
        ),
        name="synthetic",
    )


# ====================================================================== shared helpers
def _resolve(data_dir: str | os.PathLike, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(data_dir) / p


def _read_table(
    path: Path,
    *,
    what: str,
    sep: str,
    header: bool,
    names: list[str] | None = None,
    usecols: list[int] | None = None,
    dtype: object = None,
    strict_na: bool = False,
    nrows: int | None = None,
    sources: list[Source] | None = None,
    label: str | None = None,
) -> pd.DataFrame:
    """``pd.read_csv`` with errors turned into one-line :class:`DataValidationError` messages (no values).

    ``strict_na``: only empty fields are missing (MovieLens: occupation ``none`` and zip codes stay strings).
    ``sources``: append ``Source(label, sha256 of the file)`` (label default: ``what``), the digest of the
    bytes the parser read, hashed as they stream by, and of any it left unread after them. Compressed files
    (``.gz``, ``.bz2``, ``.zip``, ``.xz``, ``.zst``, ``.tar...``, as pandas infers them) are hashed as stored.
    """
    if not path.is_file():
        raise DataValidationError(f"{what} must be an existing file; got {path}, which does not exist.")
    na = {"keep_default_na": False, "na_values": [""]} if strict_na else {}
    try:
        with path.open("rb", buffering=0) as raw, io.BufferedReader(hashing := _HashingReader(raw),
                                                                     buffer_size=_READ_CHUNK) as handle:
            frame = pd.read_csv(
                handle, sep=sep, header=0 if header else None, names=names, usecols=usecols, dtype=dtype,
                engine="c" if len(sep) == 1 else "python", encoding="latin-1" if strict_na else "utf-8",
                nrows=nrows, compression=_compression(path), **na,
            )  # fmt: skip
            if sources is not None:
                while handle.read(_READ_CHUNK):  # the digest covers the whole file
                    pass
                sources.append(Source(label or what, hashing.hexdigest()))
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{what} must hold data; got an empty file ({path}).") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "parser error"
        raise DataValidationError(
            f"{what} must be {sep!r}-separated text with the same number of fields on every line; "
            f"got {path} ({detail})."
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataValidationError(
            f"{what} must be readable {sep!r}-separated UTF-8 text; got {path} ({type(exc).__name__})."
        ) from None
    return frame


_READ_CHUNK = 1 << 20
#: pandas' ``compression="infer"`` table (it cannot infer from an open file): longest suffix first.
_COMPRESSION = ((".tar.gz", "tar"), (".tar.bz2", "tar"), (".tar.xz", "tar"), (".tar", "tar"), (".gz", "gzip"),
                (".bz2", "bz2"), (".zip", "zip"), (".xz", "xz"), (".zst", "zstd"))


def _compression(path: Path) -> str | None:
    name = path.name.lower()
    return next((kind for suffix, kind in _COMPRESSION if name.endswith(suffix)), None)


def _column_label(labels: list, spec: int | str, what: str, path: Path) -> object:
    """The frame label of a column given by position (an int) or name; error naming the parameter otherwise."""
    if isinstance(spec, int):
        if spec >= len(labels):
            raise DataValidationError(
                f"{what} must be a column position < {len(labels)} ({path.name} has {len(labels)} columns); "
                f"got {spec}."
            )
        return labels[spec]
    if spec not in labels:
        raise DataValidationError(
            f"{what} must name a column in the header of {path.name}; got {spec!r}, "
            f"columns are {[str(c) for c in labels]}."
        )
    return spec


def _read_columns(
    path: Path, *, sep: str, header: bool, columns: dict[str, int | str], what: str, sources: list[Source]
) -> pd.DataFrame:
    """Read the named parameter's columns (as strings) into a frame whose columns are the parameter names;
    the full read's digest is appended to ``sources`` as ``interactions``."""
    head = _read_table(path, what=what, sep=sep, header=header, nrows=1 if not header else 0, dtype=str)
    labels = list(head.columns)
    picked = {key: _column_label(labels, spec, f"dataset.{key}", path) for key, spec in columns.items()}
    positions = [labels.index(lab) for lab in picked.values()]
    frame = _read_table(
        path, what=what, sep=sep, header=header, usecols=sorted(set(positions)), dtype=str, sources=sources,
        label="interactions",
    )  # fmt: skip
    by_position = dict(zip(sorted(set(positions)), frame.columns, strict=True))
    return pd.DataFrame(
        {key: frame[by_position[labels.index(lab)]].reset_index(drop=True) for key, lab in picked.items()}
    )


def _numbers(values: pd.Series, what: str) -> NDArray[np.float64]:
    """Finite numbers as float64; error counting the rows that are not (never quoting them)."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        out = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        out = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(out)
    if bad.any():
        raise DataValidationError(f"{what} must hold numbers; got {int(bad.sum())} of {len(out)} rows that do not.")
    return out


def _whole(values: pd.Series, what: str) -> NDArray[np.int64]:
    """Whole numbers as int64 (fast path for integer columns)."""
    if pd.api.types.is_integer_dtype(values.dtype) and not values.isna().any():
        return values.to_numpy(dtype=np.int64)
    out = _numbers(values, what)
    bad = out != np.floor(out)
    if bad.any():
        raise DataValidationError(
            f"{what} must hold whole numbers; got {int(bad.sum())} of {len(out)} rows that do not."
        )
    return out.astype(np.int64)


def _encode_ids(columns: list[pd.Series]) -> tuple[Vocabulary, list[NDArray[np.int64]]]:
    """Sorted vocabulary over the ids of all ``columns`` and each column's indices into it.

    Ids that are all canonical integers (``str(int(s)) == s``) become int64 and sort numerically;
    otherwise they stay strings and sort lexicographically.
    """
    lengths = [len(c) for c in columns]
    values = pd.concat([c.reset_index(drop=True) for c in columns], ignore_index=True)
    codes, uniques = pd.factorize(values)
    uniq = np.asarray(uniques, dtype=object)
    as_int = pd.to_numeric(pd.Series(uniq), errors="coerce")
    canonical = (  # int64 only: ids beyond int64 (uint64, float) stay strings
        len(uniq) > 0
        and as_int.dtype == np.int64
        and (as_int.astype(str).to_numpy(dtype=object) == pd.Series(uniq).astype(str).to_numpy(dtype=object)).all()
    )
    if canonical:
        uniq = as_int.to_numpy(dtype=np.int64)
    if uniq.dtype == object:
        uniq = pd.Series(uniq, dtype=object).astype(str).to_numpy(dtype=object)
    order = np.argsort(uniq, kind="stable")
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    idx = rank[codes]
    return Vocabulary(uniq[order]), list(np.split(idx, np.cumsum(lengths)[:-1]))


def _align_rows(attrs: pd.DataFrame, rows: NDArray[np.int64], n_users: int, what: str) -> pd.DataFrame:
    """One attribute row per user index, in index order; users without a row get missing values."""
    duplicated = len(rows) - len(np.unique(rows))
    if duplicated:
        raise DataValidationError(f"{what} must have one row per user; got {duplicated} repeated user ids.")
    attrs = attrs.reset_index(drop=True)
    if len(rows) < n_users:  # some users get missing values: integer columns become nullable
        for col in attrs.columns:
            if pd.api.types.is_integer_dtype(attrs[col].dtype):
                attrs[col] = attrs[col].astype("Int64")
    attrs = attrs.set_axis(pd.Index(rows)).reindex(pd.RangeIndex(n_users))
    return _infer_strings(attrs.reset_index(drop=True))


def _infer_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns of strings take pandas' string dtype (``str`` in pandas 3; unchanged in pandas 2)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = pd.Series(out[col].to_numpy(dtype=object), index=out.index).infer_objects()
    return out
