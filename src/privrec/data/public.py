"""Loaders for the public datasets of :mod:`privrec.data.catalog` (``privrec data fetch NAME`` puts their files).

Each is a frozen, keyword-only dataclass with the contract of :class:`~privrec.data.loaders.MovieLens1M`:
``load(data_dir) -> Dataset``, ``input_files(data_dir)`` and ``read(data_dir) -> LoadResult`` (the dataset plus
the SHA-256 of every input, hashed as it is parsed; labels are paths relative to ``data_dir``). Files live in
``<data_dir>/<name>/`` under the names they have in the official archive. ``weight`` is the raw rating or play
count, ``timestamp`` int64 seconds where the source has one. Vocabularies are sorted by external id; users who
appear only in an attribute file are kept as empty rows. Messages carry counts, never a record value.

- :class:`MovieLensRatings`: ML-10M (``ratings.dat``, ``::``), ML-20M, ML-25M, ML-32M, ml-latest-small
  (``ratings.csv``, header ``userId,movieId,rating,timestamp``). No user attributes.
- :class:`LastFM1K`: user x artist play counts from the listening log, gender / age / country from the profiles.
- :class:`BookCrossing`: ``;``-separated, quoted, latin-1 CSVs; implicit (0) and explicit (1-10) ratings; age and
  country.
- :class:`AmazonReviews2023`: one category of Amazon Reviews'23 (``<Category>.jsonl.gz``): user x parent item
  ratings with timestamps. No user attributes.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from privrec.data._checks import check_choice, check_str
from privrec.data.catalog import CATALOG
from privrec.data.dataset import Dataset, Schema
from privrec.data.digest import LoadResult, Source, _HashingReader
from privrec.data.loaders import (
    _numbers,
    _read_double_colon,
    _read_table,
    _setter,
    age_band,
    dataset_from_ids,
)
from privrec.errors import ConfigError, DataValidationError, DataWarning

__all__ = ["MOVIELENS_VERSIONS", "AmazonReviews2023", "BookCrossing", "LastFM1K", "MovieLensRatings"]

#: The MovieLens releases :class:`MovieLensRatings` reads, and the ratings file of each.
MOVIELENS_VERSIONS: dict[str, str] = {
    "ml-10m": "ratings.dat",
    "ml-20m": "ratings.csv",
    "ml-25m": "ratings.csv",
    "ml-32m": "ratings.csv",
    "ml-latest-small": "ratings.csv",
}
_RATINGS_CSV_HEADER = ["userId", "movieId", "rating", "timestamp"]
_CHUNK_ROWS = 1_000_000  # rows per vectorised step when a log is aggregated while it is read
_READ_CHUNK = 1 << 20


def _require(root: Path, files: tuple[str, ...], name: str) -> None:
    """One-line error naming the fetch command when some of ``files`` are not in ``root``."""
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        entry = CATALOG[name]
        raise DataValidationError(
            f"{entry.title} needs {', '.join(files)} in {root}; got {len(missing)} of them missing. "
            f"Run `privrec data fetch {name}` (or download {entry.archive.urls[0]} and put them there)."
        )


class _CountingReader(_HashingReader):
    """Hashes every byte it returns (see :class:`_HashingReader`) and counts the line breaks among them."""

    def __init__(self, raw: Any) -> None:
        super().__init__(raw)
        self.lines = 0

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = super().readinto(buffer)
        if n:
            self.lines += memoryview(buffer)[:n].tobytes().count(b"\n")
        return n


@contextmanager
def _hashed(path: Path, label: str, sources: list[Source]) -> Iterator[tuple[IO[bytes], _CountingReader]]:
    """The file as a buffered binary handle that hashes (and counts lines of) what is read; appends its Source.

    Whatever the parser left unread is read at the end, so the digest covers the whole file as stored."""
    with path.open("rb", buffering=0) as raw:
        counting = _CountingReader(raw)
        with io.BufferedReader(counting, buffer_size=_READ_CHUNK) as handle:
            yield handle, counting
            while handle.read(_READ_CHUNK):
                pass
    sources.append(Source(label, counting.hexdigest()))


def _parse_error(exc: Exception, what: str, path: Path) -> DataValidationError:
    """One line; the parser's own text only for tokenizing errors (they name positions, never values)."""
    text = str(exc).strip()
    detail = text.splitlines()[-1] if isinstance(exc, pd.errors.ParserError) and text else type(exc).__name__
    return DataValidationError(f"{what} must be in the dataset's published format; got {path} ({detail[:120]}).")


def _check_header(columns: pd.Index, expected: list[str], what: str) -> None:
    got = [str(c) for c in columns]
    if got != expected:
        raise DataValidationError(f"{what} must have the header {','.join(expected)}; got {len(got)} other columns.")


def _warn_dropped(what: str, malformed: int, incomplete: int, total: int) -> None:
    parts = [f"{malformed} malformed lines"] if malformed else []
    if incomplete:
        parts.append(f"{incomplete} rows without the needed fields")
    if parts:
        warnings.warn(f"{what}: {' and '.join(parts)} were left out (of {total} lines).", DataWarning, stacklevel=3)


# ====================================================================== MovieLens (ratings only)
@dataclass(frozen=True, kw_only=True)
class MovieLensRatings:
    """A GroupLens MovieLens release without demographics: ``<data_dir>/<version>/ratings.dat`` or ``ratings.csv``.

    ``version``: ``ml-10m`` (``UserID::MovieID::Rating::Timestamp``, half-star ratings 0.5-5), ``ml-20m``,
    ``ml-25m``, ``ml-32m`` or ``ml-latest-small`` (CSV with the header ``userId,movieId,rating,timestamp``).
    Weight = the rating, timestamps in seconds. No user attributes (empty schema). Fetch with
    ``privrec data fetch <version>``. Licence: GroupLens' (research use, no redistribution; cite Harper &
    Konstan 2015).
    """

    version: str = "ml-20m"

    def __post_init__(self) -> None:
        _setter(self)("version", check_choice("dataset", "version", self.version, tuple(MOVIELENS_VERSIONS)))

    def load(self, data_dir: str | os.PathLike) -> Dataset:
        return self.read(data_dir).data

    def input_files(self, data_dir: str | os.PathLike) -> tuple[Path, ...]:
        return (Path(data_dir) / self.version / MOVIELENS_VERSIONS[self.version],)

    def read(self, data_dir: str | os.PathLike) -> LoadResult:
        """The dataset and the digest of ``<version>/<ratings file>``."""
        filename = MOVIELENS_VERSIONS[self.version]
        root = Path(data_dir) / self.version
        _require(root, (filename,), self.version)
        what = f"{self.version}/{filename}"
        sources: list[Source] = []
        if filename.endswith(".dat"):
            ratings = _read_double_colon(root / filename, what, ["user_id", "item_id", "rating", "timestamp"],
                                         sources=sources)  # fmt: skip
        else:
            ratings = _read_table(root / filename, what=what, sep=",", header=True, sources=sources)
            _check_header(ratings.columns, _RATINGS_CSV_HEADER, what)
            ratings.columns = ["user_id", "item_id", "rating", "timestamp"]
        if not len(ratings):
            raise DataValidationError(f"{what} must hold at least one rating; got 0 rows.")
        weight = _numbers(ratings["rating"], f"{what} rating").astype(np.float32)
        timestamp = np.floor(_numbers(ratings["timestamp"], f"{what} timestamp")).astype(np.int64)
        for col in ("user_id", "item_id"):
            _numbers(ratings[col], f"{what} {col}")  # ids are numbers: count the rows that are not
        data = dataset_from_ids(ratings["user_id"], ratings["item_id"], weight, timestamp, name=self.version)
        return LoadResult(data=data, sources=tuple(sources))


# ====================================================================== Last.fm 1K
_LASTFM_PLAYS = "userid-timestamp-artid-artname-traid-traname.tsv"
_LASTFM_PROFILE = "userid-profile.tsv"
_LASTFM_PROFILE_HEADER = ["#id", "gender", "age", "country", "registered"]
_EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
_PLAUSIBLE_AGE = (1, 120)  # ages outside are treated as missing (the real profiles hold a few)


@dataclass(frozen=True, kw_only=True)
class LastFM1K:
    """Last.fm 1K (Celma 2010): ``<data_dir>/lastfm-1k/userid-timestamp-artid-artname-traid-traname.tsv`` and
    ``userid-profile.tsv``.

    Interactions are user x artist **play counts** (``weight`` = number of plays, ``timestamp`` = the user's
    first play of the artist). An artist is its MusicBrainz id, or ``"name:<artist name>"`` when the id is
    missing. The log is read as plain tab-separated text (no quoting: names hold quote characters; fields
    after the fourth, such as a track name holding a tab, are not read); plays without a user, a valid time
    or an artist, and lines the parser cannot split, are left out and counted in one
    :class:`~privrec.errors.DataWarning`.

    Attributes from the profiles (``#id gender age country registered``, many fields empty): ``gender``
    (``"F"``/``"M"``), ``age`` (Int64; outside 1-120 is missing), ``age_band`` (ML-1M bands), ``country``.
    Quasi-identifiers: age, gender, country, age_band; sensitive: gender, age_band.
    Licence: non-commercial use; cite Celma 2010.
    """

    def load(self, data_dir: str | os.PathLike) -> Dataset:
        return self.read(data_dir).data

    def input_files(self, data_dir: str | os.PathLike) -> tuple[Path, ...]:
        root = Path(data_dir) / "lastfm-1k"
        return (root / _LASTFM_PLAYS, root / _LASTFM_PROFILE)

    def read(self, data_dir: str | os.PathLike) -> LoadResult:
        """The dataset and the digests of the plays log and the profiles (in that order)."""
        root = Path(data_dir) / "lastfm-1k"
        _require(root, (_LASTFM_PLAYS, _LASTFM_PROFILE), "lastfm-1k")
        sources: list[Source] = []
        plays = _lastfm_plays(root / _LASTFM_PLAYS, sources)
        profile = _lastfm_profiles(root / _LASTFM_PROFILE, sources)
        data = dataset_from_ids(
            plays["user"], plays["item"], plays["plays"].to_numpy(dtype=np.float32),
            plays["first"].to_numpy(dtype=np.int64), name="lastfm-1k", attr_ids=profile["user"],
            attrs=profile.drop(columns=["user"]), attrs_label="lastfm-1k users file",
            schema=Schema(quasi_identifiers=("age", "gender", "country", "age_band"), sensitive=("gender", "age_band"),
                          numeric=("age",)),
        )  # fmt: skip
        return LoadResult(data=data, sources=tuple(sources))


def _lastfm_plays(path: Path, sources: list[Source]) -> pd.DataFrame:
    """Play counts and first play time per (user, artist), aggregated chunk by chunk while the log streams by."""
    what = f"lastfm-1k/{_LASTFM_PLAYS}"
    parts: list[pd.DataFrame] = []
    n_rows = incomplete = 0
    with _hashed(path, what, sources) as (handle, counting):
        try:
            reader = pd.read_csv(
                handle, sep="\t", header=None, names=["user", "time", "artid", "artname", "traid", "traname"],
                usecols=["user", "time", "artid", "artname"], dtype=str, quoting=csv.QUOTE_NONE,
                keep_default_na=False, na_values=[""], on_bad_lines="skip", encoding="utf-8",
                encoding_errors="replace", chunksize=_CHUNK_ROWS,
            )  # fmt: skip
            for chunk in reader:
                n_rows += len(chunk)
                when = pd.to_datetime(chunk["time"], format="ISO8601", utc=True, errors="coerce")
                item = chunk["artid"].where(chunk["artid"].notna(), "name:" + chunk["artname"])
                ok = (chunk["user"].notna() & when.notna() & item.notna()).to_numpy()
                incomplete += int((~ok).sum())
                seconds = ((when[ok] - _EPOCH) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)
                frame = pd.DataFrame({"user": chunk["user"][ok], "item": item[ok], "time": seconds})
                parts.append(frame.groupby(["user", "item"], sort=False)["time"].agg(["size", "min"]))
        except (pd.errors.ParserError, ValueError) as exc:
            raise _parse_error(exc, what, path) from None
    _warn_dropped(what, max(0, counting.lines - n_rows), incomplete, max(counting.lines, n_rows))
    if not parts or not sum(len(p) for p in parts):
        raise DataValidationError(f"{what} must hold at least one play; got 0 usable rows.")
    merged = pd.concat(parts).groupby(level=[0, 1], sort=False).agg(plays=("size", "sum"), first=("min", "min"))
    return merged.reset_index()


def _lastfm_profiles(path: Path, sources: list[Source]) -> pd.DataFrame:
    what = f"lastfm-1k/{_LASTFM_PROFILE}"
    with _hashed(path, what, sources) as (handle, _):
        try:
            table = pd.read_csv(
                handle, sep="\t", header=0, dtype=str, quoting=csv.QUOTE_NONE, keep_default_na=False,
                na_values=[""], encoding="utf-8", encoding_errors="replace",
            )  # fmt: skip
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise _parse_error(exc, what, path) from None
    _check_header(table.columns, _LASTFM_PROFILE_HEADER, what)
    users = table["#id"]
    if users.isna().any():
        raise DataValidationError(f"{what} must have a user id on every row; got {int(users.isna().sum())} without.")
    gender = table["gender"].str.strip().str.lower().map({"f": "F", "m": "M"})
    age = _plausible_age(table["age"])
    return pd.DataFrame(
        {
            "user": users.reset_index(drop=True),
            "gender": gender.to_numpy(dtype=object),
            "age": age,
            "country": table["country"].to_numpy(dtype=object),
            "age_band": _bands(age),
        }
    )


def _bands(age: pd.Series) -> NDArray[np.object_]:
    return age_band(age.to_numpy(dtype=np.float64, na_value=np.nan)).to_numpy(dtype=object)


def _plausible_age(values: pd.Series, low: int = _PLAUSIBLE_AGE[0], high: int = _PLAUSIBLE_AGE[1]) -> pd.Series:
    """Whole ages in ``[low, high]`` as Int64; anything else (empty, NULL, 0, 244, 3.5) is missing."""
    age = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(age) & (age == np.floor(age)) & (age >= low) & (age <= high)
    return pd.Series(np.where(ok, age, np.nan)).astype("Int64").reset_index(drop=True)


# ====================================================================== Book-Crossing
_BX_RATINGS = "BX-Book-Ratings.csv"
_BX_USERS = "BX-Users.csv"
_BX_AGE = (5, 100)  # BX ages run 0..244; ages outside this range are treated as missing
_BX_CHOICES = ("all", "explicit", "implicit")
_BX_READ: dict[str, Any] = {
    "sep": ";", "header": 0, "dtype": str, "encoding": "latin-1", "keep_default_na": False,
    "na_values": ["", "NULL"], "on_bad_lines": "skip",
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class BookCrossing:
    """Book-Crossing (Ziegler et al. 2005): ``<data_dir>/book-crossing/BX-Book-Ratings.csv`` and ``BX-Users.csv``.

    The files are ``;``-separated, every field double-quoted, latin-1, with a header (``"User-ID";"ISBN";
    "Book-Rating"`` and ``"User-ID";"Location";"Age"``); a missing age is an unquoted ``NULL``. Ratings are
    ``0`` (implicit: the user interacted with the book) or ``1``-``10`` (explicit). ``ratings``: which rows to
    keep: ``all`` (default), ``explicit`` or ``implicit``. ``weight`` is the raw rating, so implicit rows weigh 0:
    the default ``preprocess.weight=binary`` counts every row as a positive; with ``preprocess.weight=rating`` use
    ``ratings=explicit``. No timestamps. ISBNs are kept exactly as written (string item ids).

    Attributes: ``age`` (Int64; outside 5-100 is missing), ``age_band``, ``country`` (the last comma-separated
    part of ``Location``, e.g. ``"usa"`` from ``"nyc, new york, usa"``; empty or ``n/a`` is missing). Every user
    of ``BX-Users.csv`` is in the vocabulary, most as empty rows (they rated nothing). Quasi-identifiers: age,
    age_band, country; sensitive: age_band. Lines that do not parse are left out and counted in one warning.
    Licence: research use; cite Ziegler et al. 2005.
    """

    ratings: str = "all"

    def __post_init__(self) -> None:
        _setter(self)("ratings", check_choice("dataset", "ratings", self.ratings, _BX_CHOICES))

    def load(self, data_dir: str | os.PathLike) -> Dataset:
        return self.read(data_dir).data

    def input_files(self, data_dir: str | os.PathLike) -> tuple[Path, ...]:
        root = Path(data_dir) / "book-crossing"
        return (root / _BX_RATINGS, root / _BX_USERS)

    def read(self, data_dir: str | os.PathLike) -> LoadResult:
        """The dataset and the digests of ``BX-Book-Ratings.csv`` and ``BX-Users.csv`` (in that order)."""
        root = Path(data_dir) / "book-crossing"
        _require(root, (_BX_RATINGS, _BX_USERS), "book-crossing")
        sources: list[Source] = []
        what = f"book-crossing/{_BX_RATINGS}"
        ratings = _read_bx(root / _BX_RATINGS, what, ["User-ID", "ISBN", "Book-Rating"], sources)
        lines, malformed = ratings.attrs["lines"], ratings.attrs["malformed"]
        incomplete = ratings.isna().any(axis=1).to_numpy()
        ratings = ratings[~incomplete]
        score = _numbers(ratings["Book-Rating"], f"{what} Book-Rating")
        bad = (score != np.floor(score)) | (score < 0) | (score > 10)
        if bad.any():
            raise DataValidationError(
                f"{what} Book-Rating must be a whole number in [0, 10]; got {int(bad.sum())} rows outside it."
            )
        keep = {"all": np.ones(len(score), dtype=bool), "explicit": score > 0, "implicit": score == 0}[self.ratings]
        if not keep.any():
            raise DataValidationError(f"{what} must hold {self.ratings} ratings; got 0 such rows.")
        _warn_dropped(what, malformed, int(incomplete.sum()), lines)
        users_what = f"book-crossing/{_BX_USERS}"
        users = _read_bx(root / _BX_USERS, users_what, ["User-ID", "Location", "Age"], sources)
        if users["User-ID"].isna().any():
            raise DataValidationError(
                f"{users_what} must have a User-ID on every row; got {int(users['User-ID'].isna().sum())} without."
            )
        _warn_dropped(users_what, users.attrs["malformed"], 0, users.attrs["lines"])
        country = users["Location"].str.rsplit(",", n=1).str[-1].str.strip()
        country = country.where(~country.isin(["", "n/a"]) & country.notna(), None)
        age = _plausible_age(users["Age"], *_BX_AGE)
        attrs = pd.DataFrame(
            {
                "age": age,
                "age_band": _bands(age),
                "country": country.to_numpy(dtype=object),
            }
        )
        data = dataset_from_ids(
            ratings["User-ID"][keep], ratings["ISBN"][keep], score[keep].astype(np.float32), None,
            name="book-crossing", attr_ids=users["User-ID"], attrs=attrs, attrs_label="book-crossing users file",
            schema=Schema(quasi_identifiers=("age", "age_band", "country"), sensitive=("age_band",), numeric=("age",)),
        )  # fmt: skip
        return LoadResult(data=data, sources=tuple(sources))


def _read_bx(path: Path, what: str, header: list[str], sources: list[Source]) -> pd.DataFrame:
    """A Book-Crossing CSV as strings; ``attrs`` carries the number of lines and of lines the parser skipped."""
    with _hashed(path, what, sources) as (handle, counting):
        try:
            table = pd.read_csv(handle, **_BX_READ)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise _parse_error(exc, what, path) from None
    _check_header(table.columns, header, what)
    table = table.reset_index(drop=True)
    table.attrs["lines"] = counting.lines
    table.attrs["malformed"] = max(0, counting.lines - 1 - len(table))
    return table


# ====================================================================== Amazon Reviews'23
_AMAZON_FIELDS = ("user_id", "parent_asin", "rating", "timestamp")
_CATEGORY = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True, kw_only=True)
class AmazonReviews2023:
    """One category of Amazon Reviews'23 (Hou et al. 2024): ``<data_dir>/amazon-<category>/<Category>.jsonl.gz``.

    The folder is ``amazon-`` plus the category in lower case with ``-`` for ``_`` (``All_Beauty`` ->
    ``amazon-all-beauty``, which ``privrec data fetch amazon-all-beauty`` fills); other categories of the same
    release can be placed there by hand. Each line is one review (JSON); privrec reads ``user_id``,
    ``parent_asin`` (the item: variants of a product share it), ``rating`` (1-5, the weight) and ``timestamp``
    (milliseconds, floored to seconds); review text, titles and images are never kept. Reviews missing one of
    these fields are left out and counted in one warning. No user attributes. Licence: none published by the
    McAuley lab (research use); cite Hou et al. 2024.
    """

    category: str = "All_Beauty"

    def __post_init__(self) -> None:
        value = check_str("dataset", "category", self.category)
        if not _CATEGORY.fullmatch(value):
            raise ConfigError(
                f"dataset.category must be an Amazon Reviews'23 category name (letters, digits, _); got {value!r}."
            )

    @property
    def folder(self) -> str:
        return "amazon-" + self.category.lower().replace("_", "-")

    def load(self, data_dir: str | os.PathLike) -> Dataset:
        return self.read(data_dir).data

    def input_files(self, data_dir: str | os.PathLike) -> tuple[Path, ...]:
        return (Path(data_dir) / self.folder / f"{self.category}.jsonl.gz",)

    def read(self, data_dir: str | os.PathLike) -> LoadResult:
        """The dataset and the digest of the ``.jsonl.gz`` file as stored (compressed)."""
        (path,) = self.input_files(data_dir)
        name = self.folder
        if name in CATALOG:
            _require(path.parent, (path.name,), name)
        elif not path.is_file():
            raise DataValidationError(
                f"AmazonReviews2023 needs {path.name} in {path.parent}; got no such file. Download it from "
                "https://amazon-reviews-2023.github.io/ and put it there."
            )
        what = f"{name}/{path.name}"
        sources: list[Source] = []
        parts: list[pd.DataFrame] = []
        n_rows = 0
        with _hashed(path, what, sources) as (handle, _):
            try:
                with gzip.GzipFile(fileobj=handle) as unzipped:
                    text = io.TextIOWrapper(unzipped, encoding="utf-8")
                    for chunk in pd.read_json(text, lines=True, chunksize=_CHUNK_ROWS // 4, dtype=False):
                        n_rows += len(chunk)
                        absent = [f for f in _AMAZON_FIELDS if f not in chunk.columns]
                        if absent:
                            raise DataValidationError(
                                f"{what} must have the fields {', '.join(_AMAZON_FIELDS)} in every review; got "
                                f"{len(absent)} of them absent from a block of {len(chunk)} reviews."
                            )
                        parts.append(chunk[list(_AMAZON_FIELDS)])
            except (ValueError, OSError, EOFError) as exc:
                if isinstance(exc, DataValidationError):
                    raise
                raise _parse_error(exc, what, path) from None
        reviews = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(_AMAZON_FIELDS))
        rating = pd.to_numeric(reviews["rating"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        stamps = reviews["timestamp"]
        if pd.api.types.is_datetime64_any_dtype(stamps.dtype):  # a pandas that still parses "timestamp" as dates
            stamps = (stamps - pd.Timestamp(0, tz=getattr(stamps.dt, "tz", None))) // pd.Timedelta(milliseconds=1)
        millis = pd.to_numeric(stamps, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        ok = (
            reviews["user_id"].notna().to_numpy()
            & reviews["parent_asin"].notna().to_numpy()
            & np.isfinite(rating)
            & np.isfinite(millis)
        )
        _warn_dropped(what, 0, int((~ok).sum()), n_rows)
        if not ok.any():
            raise DataValidationError(f"{what} must hold at least one complete review; got 0.")
        users = reviews["user_id"][ok].astype(str)
        items = reviews["parent_asin"][ok].astype(str)
        data = dataset_from_ids(
            users, items, rating[ok].astype(np.float32), np.floor_divide(millis[ok], 1000).astype(np.int64), name=name
        )
        return LoadResult(data=data, sources=tuple(sources))
