"""Public datasets: loaders on small files in each dataset's real format, the fetch path over 127.0.0.1, presets.

No test touches the internet: a real HTTP server (``http.server`` in a thread, bound to 127.0.0.1) serves
archives that the tests build in the official layout, and ``$PRIVREC_DATASET_MIRROR`` points the fetch at it.
"""

from __future__ import annotations

import calendar
import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from privrec.cli import config_dir, main
from privrec.config import build
from privrec.data import (
    CATALOG,
    AmazonReviews2023,
    BookCrossing,
    LastFM1K,
    MovieLens1M,
    MovieLens100K,
    MovieLensRatings,
    fetch_dataset,
)
from privrec.data import catalog as catalog_module
from privrec.data import fetch as fetch_module
from privrec.errors import ConfigError, DataValidationError, DataWarning


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def epoch(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


# ====================================================================== files in the real formats
ML_CSV = (
    b"userId,movieId,rating,timestamp\n"
    b"1,296,5.0,1147880044\n"
    b"1,306,3.5,1147868817\n"
    b"3,296,0.5,1439472215\n"
    b"2,1,4.0,1100000000\n"
)
ML10M_DAT = b"1::122::5::838985046\n1::185::4.5::838983525\n7::122::0.5::868245777\n"

DEEP_DISH = "f1b1cf71-bd35-4e99-8624-24a6e15f133a"
BJORK = "87c5dedd-371d-4a53-9f7f-80522fb7f3cb"
LASTFM_PLAYS = "".join(
    "\t".join(fields) + "\n"
    for fields in [
        ("user_000002", "2009-05-04T23:08:57Z", DEEP_DISH, "Deep Dish", "", "Pacha Ibiza)-09-28-2007"),
        ("user_000002", "2009-05-04T23:00:00Z", DEEP_DISH, "Deep Dish", "", "Track B"),
        ("user_000001", "2009-04-01T14:24:52Z", "", '"Weird Al" Yankovic', "", "Amish Paradise"),  # no artist id
        ("user_000001", "2009-04-02T14:24:52Z", "", '"Weird Al" Yankovic', "c605c224", 'Eat It "live'),
        ("user_000001", "2009-04-03T00:00:00Z", BJORK, "Björk", "c605c225", "Jóga"),
        ("user_000002", "2009-05-05T00:00:00Z", BJORK, "Björk", "c605c225", "Jóga"),
        ("user_000003", "2009-01-01T00:00:00Z", DEEP_DISH, "Deep Dish", "t1", "a track", "with a tab"),  # 7 fields
        ("user_000003", "", BJORK, "Björk", "", "no time"),  # incomplete
        ("user_000003", "2009-01-01T00:00:00Z", "", "", "", ""),  # no artist at all
        ("user_000005", "2009-06-01T00:00:00Z", DEEP_DISH, "Deep Dish", "t1", "Track A"),
    ]
).encode("utf-8")
LASTFM_PROFILE = (
    b"#id\tgender\tage\tcountry\tregistered\n"
    b"user_000001\tm\t\tJapan\tAug 13, 2006\n"
    b"user_000002\tf\t22\tUnited States\tFeb 24, 2006\n"
    b"user_000003\t\t0\t\tOct 30, 2005\n"
    b"user_000004\tf\t57\t\tApr 26, 2006\n"
)

BX_RATINGS = (
    '"User-ID";"ISBN";"Book-Rating"\n'
    '"276725";"034545104X";"0"\n'
    '"276726";"0155061224";"5"\n'
    '"276727";"0446520802";"0"\n'
    '"276730";"123";"4";"extra"\n'  # one field too many: skipped and counted
    '"276729";"052165615X";"3"\n'
    '"276729";"0521795028";"6"\n'
    '"276726";"034545104X";"10"\n'
).encode("latin-1")
BX_USERS = (
    '"User-ID";"Location";"Age"\n'
    '"276725";"tyler, texas, usa";NULL\n'
    '"276726";"seattle, washington, usa";"0"\n'
    '"276727";"münchen, bayern, germany";"16"\n'
    '"276728";"n/a, n/a, n/a";"244"\n'
    '"276729";"rijeka, n/a, croatia";"16"\n'
    '"276730";"porto; portugal, n/a, portugal";"38"\n'
).encode("latin-1")


def _review(user: str, asin: str | None, rating: float, millis: int) -> str:
    review = {"rating": rating, "title": "t", "text": 'Loved it "really"\nyes', "images": [], "asin": "B0XX",
              "user_id": user, "timestamp": millis, "helpful_vote": 0, "verified_purchase": True}  # fmt: skip
    if asin is not None:
        review["parent_asin"] = asin
    return json.dumps(review, ensure_ascii=False)


AMAZON = gzip.compress(
    "\n".join(
        [
            _review("AGKHLEW2SOWHNMFQIJGBECAF7INQ", "B00YQ6X8EO", 5.0, 1588687728923),
            _review("AGKHLEW2SOWHNMFQIJGBECAF7INQ", "B081TJ8YS3", 4.0, 1588615855070),
            _review("AE74DYR3QUGVPZJ3P7RFWBGIX7XQ", "0123456789", 1.0, 1589665266052),
            _review("AE74DYR3QUGVPZJ3P7RFWBGIX7XQ", None, 3.0, 1643393630220),  # no parent_asin
        ]
    ).encode("utf-8")
    + b"\n",
    mtime=0,
)


def write(root: Path, folder: str, files: dict[str, bytes]) -> Path:
    (root / folder).mkdir(parents=True, exist_ok=True)
    for name, payload in files.items():
        (root / folder / name).write_bytes(payload)
    return root


WRITERS = {
    "ml-10m": lambda root: write(root, "ml-10m", {"ratings.dat": ML10M_DAT}),
    "ml-20m": lambda root: write(root, "ml-20m", {"ratings.csv": ML_CSV}),
    "ml-25m": lambda root: write(root, "ml-25m", {"ratings.csv": ML_CSV}),
    "ml-32m": lambda root: write(root, "ml-32m", {"ratings.csv": ML_CSV}),
    "ml-latest-small": lambda root: write(root, "ml-latest-small", {"ratings.csv": ML_CSV}),
    "lastfm-1k": lambda root: write(
        root,
        "lastfm-1k",
        {"userid-timestamp-artid-artname-traid-traname.tsv": LASTFM_PLAYS, "userid-profile.tsv": LASTFM_PROFILE},
    ),
    "book-crossing": lambda root: write(
        root, "book-crossing", {"BX-Book-Ratings.csv": BX_RATINGS, "BX-Users.csv": BX_USERS}
    ),
    "amazon-all-beauty": lambda root: write(root, "amazon-all-beauty", {"All_Beauty.jsonl.gz": AMAZON}),
}


# ====================================================================== MovieLens ratings-only releases
@pytest.mark.parametrize("version", ["ml-20m", "ml-25m", "ml-32m", "ml-latest-small"])
def test_movielens_ratings_csv(tmp_path, version):
    result = MovieLensRatings(version=version).read(WRITERS[version](tmp_path))
    data = result.data
    assert data.name == version
    np.testing.assert_array_equal(data.users.ids, [1, 2, 3])
    np.testing.assert_array_equal(data.items.ids, [1, 296, 306])
    np.testing.assert_array_equal(data.users.id_of(data.user_idx), [1, 1, 3, 2])
    np.testing.assert_array_equal(data.items.id_of(data.item_idx), [296, 306, 296, 1])
    np.testing.assert_array_equal(data.weight, [5.0, 3.5, 0.5, 4.0])
    np.testing.assert_array_equal(data.timestamp, [1147880044, 1147868817, 1439472215, 1100000000])
    assert list(data.user_attributes.columns) == [] and len(data.user_attributes) == 3
    assert data.schema.quasi_identifiers == () and data.schema.sensitive == ()
    assert [(s.label, s.sha256) for s in result.sources] == [(f"{version}/ratings.csv", sha256(ML_CSV))]


def test_movielens_10m_double_colon_half_stars(tmp_path):
    data = MovieLensRatings(version="ml-10m").load(WRITERS["ml-10m"](tmp_path))
    np.testing.assert_array_equal(data.users.ids, [1, 7])
    np.testing.assert_array_equal(data.items.ids, [122, 185])
    np.testing.assert_array_equal(data.user_counts, [2, 1])
    np.testing.assert_array_equal(data.weight, [5.0, 4.5, 0.5])
    np.testing.assert_array_equal(data.timestamp, [838985046, 838983525, 868245777])


def test_movielens_ratings_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset\.version must be one of"):
        MovieLensRatings(version="ml-7m")
    with pytest.raises(DataValidationError, match="privrec data fetch ml-25m") as exc:
        MovieLensRatings(version="ml-25m").load(tmp_path)
    assert "ratings.csv" in one_line(exc)
    write(tmp_path, "ml-20m", {"ratings.csv": b"user,item,rating,ts\n1,2,3,4\n"})
    with pytest.raises(DataValidationError, match="must have the header userId,movieId,rating,timestamp") as exc:
        MovieLensRatings(version="ml-20m").load(tmp_path)
    one_line(exc)
    write(tmp_path, "ml-32m", {"ratings.csv": b"userId,movieId,rating,timestamp\n1,2,3,4\n1,3,secret-x,5\n"})
    with pytest.raises(DataValidationError, match="1 of 2 rows") as exc:
        MovieLensRatings(version="ml-32m").load(tmp_path)
    assert "secret-x" not in one_line(exc)


# ====================================================================== Last.fm 1K
def test_lastfm_1k_play_counts_and_profiles(tmp_path):
    with pytest.warns(DataWarning, match=r"2 rows without the needed fields were left out \(of 10 lines\)") as record:
        result = LastFM1K().read(WRITERS["lastfm-1k"](tmp_path))
    assert all("user_0" not in str(w.message) and "Deep Dish" not in str(w.message) for w in record)
    data = result.data
    assert data.name == "lastfm-1k"
    # users of the log and of the profiles; 4 has no play, 5 no profile
    assert data.users.ids.tolist() == [f"user_00000{i}" for i in (1, 2, 3, 4, 5)]
    weird_al = 'name:"Weird Al" Yankovic'  # no MusicBrainz id: the artist is its name; quotes kept as written
    assert data.items.ids.tolist() == [BJORK, DEEP_DISH, weird_al]
    got = {
        (u, i): (w, t)
        for u, i, w, t in zip(
            data.users.id_of(data.user_idx), data.items.id_of(data.item_idx), data.weight, data.timestamp, strict=True
        )
    }
    assert got == {
        ("user_000002", DEEP_DISH): (2.0, epoch("2009-05-04T23:00:00Z")),  # play count, first play
        ("user_000001", weird_al): (2.0, epoch("2009-04-01T14:24:52Z")),
        ("user_000001", BJORK): (1.0, epoch("2009-04-03T00:00:00Z")),
        ("user_000002", BJORK): (1.0, epoch("2009-05-05T00:00:00Z")),
        ("user_000005", DEEP_DISH): (1.0, epoch("2009-06-01T00:00:00Z")),
        ("user_000003", DEEP_DISH): (1.0, epoch("2009-01-01T00:00:00Z")),  # a tab in the track name is harmless
    }
    np.testing.assert_array_equal(data.user_counts, [2, 2, 1, 0, 1])
    attrs = data.user_attributes
    assert attrs["gender"].tolist()[:2] == ["M", "F"] and attrs["gender"].tolist()[3] == "F"
    assert attrs["gender"].isna().tolist() == [False, False, True, False, True]
    assert attrs["age"].isna().tolist() == [True, False, True, False, True]  # empty, 22, 0 (implausible), 57, -
    assert attrs["age"][1] == 22 and attrs["age"][3] == 57
    assert attrs["age_band"].tolist()[1] == "18-24" and attrs["age_band"].tolist()[3] == "56+"
    assert attrs["country"].tolist()[:2] == ["Japan", "United States"] and attrs["country"][2:].isna().all()
    assert data.schema.quasi_identifiers == ("age", "gender", "country", "age_band")
    assert data.schema.sensitive == ("gender", "age_band")
    assert [s.label for s in result.sources] == [
        "lastfm-1k/userid-timestamp-artid-artname-traid-traname.tsv",
        "lastfm-1k/userid-profile.tsv",
    ]
    assert [s.sha256 for s in result.sources] == [sha256(LASTFM_PLAYS), sha256(LASTFM_PROFILE)]


def test_lastfm_1k_aggregates_across_chunks(tmp_path, monkeypatch):
    from privrec.data import public

    monkeypatch.setattr(public, "_CHUNK_ROWS", 3)  # privrec's own knob: the same counts when read 3 rows at a time
    with pytest.warns(DataWarning):
        small = LastFM1K().load(WRITERS["lastfm-1k"](tmp_path))
    monkeypatch.undo()
    with pytest.warns(DataWarning):
        whole = LastFM1K().load(tmp_path)
    assert small.checksum() == whole.checksum()


def test_lastfm_1k_bad_profile_header(tmp_path):
    write(tmp_path, "lastfm-1k", {"userid-timestamp-artid-artname-traid-traname.tsv": LASTFM_PLAYS,
                                  "userid-profile.tsv": b"id\tsex\nuser_000001\tm\n"})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        with pytest.raises(DataValidationError, match="must have the header #id,gender,age,country,registered") as e:
            LastFM1K().load(tmp_path)
    one_line(e)


# ====================================================================== Book-Crossing
def test_book_crossing_latin1_quoted_nulls_and_countries(tmp_path):
    with pytest.warns(DataWarning, match="1 malformed lines"):
        result = BookCrossing().read(WRITERS["book-crossing"](tmp_path))
    data = result.data
    assert data.name == "book-crossing"
    np.testing.assert_array_equal(data.users.ids, [276725, 276726, 276727, 276728, 276729, 276730])
    assert data.items.ids.tolist() == ["0155061224", "034545104X", "0446520802", "052165615X", "0521795028"]
    assert data.n_interactions == 6 and data.timestamp is None
    np.testing.assert_array_equal(data.users.id_of(data.user_idx), [276725, 276726, 276727, 276729, 276729, 276726])
    np.testing.assert_array_equal(data.weight, [0, 5, 0, 3, 6, 10])  # the raw rating; implicit rows are 0
    np.testing.assert_array_equal(data.user_counts, [1, 2, 1, 0, 2, 0])  # 276730's only line was malformed
    attrs = data.user_attributes
    assert attrs["age"].isna().tolist() == [True, True, False, True, False, False]  # NULL, 0, 16, 244, 16, 38
    assert attrs["age"].dropna().tolist() == [16, 16, 38]
    assert attrs["age_band"].dropna().tolist() == ["under 18", "under 18", "35-44"]
    assert attrs["country"].isna().tolist() == [False, False, False, True, False, False]
    assert attrs["country"].dropna().tolist() == ["usa", "usa", "germany", "croatia", "portugal"]
    assert data.schema.quasi_identifiers == ("age", "age_band", "country") and data.schema.sensitive == ("age_band",)
    assert [s.sha256 for s in result.sources] == [sha256(BX_RATINGS), sha256(BX_USERS)]


def test_book_crossing_explicit_and_implicit(tmp_path):
    WRITERS["book-crossing"](tmp_path)
    with pytest.warns(DataWarning):
        explicit = BookCrossing(ratings="explicit").load(tmp_path)
    assert explicit.items.ids.tolist() == ["0155061224", "034545104X", "052165615X", "0521795028"]
    np.testing.assert_array_equal(explicit.weight, [5, 3, 6, 10])
    assert explicit.n_users == 6  # every user of BX-Users.csv keeps its row
    with pytest.warns(DataWarning):
        implicit = BookCrossing(ratings="implicit").load(tmp_path)
    np.testing.assert_array_equal(implicit.users.id_of(implicit.user_idx), [276725, 276727])
    with pytest.raises(ConfigError, match=r"dataset\.ratings must be one of 'all', 'explicit', 'implicit'"):
        BookCrossing(ratings="some")


def test_book_crossing_rating_out_of_range(tmp_path):
    ratings = '"User-ID";"ISBN";"Book-Rating"\n"1";"0155061224";"11"\n'.encode("latin-1")
    write(tmp_path, "book-crossing", {"BX-Book-Ratings.csv": ratings, "BX-Users.csv": BX_USERS})
    with pytest.raises(DataValidationError, match=r"whole number in \[0, 10\]; got 1 rows outside") as exc:
        BookCrossing().load(tmp_path)
    assert "0155061224" not in one_line(exc)


# ====================================================================== Amazon Reviews'23
def test_amazon_reviews_2023_jsonl_gz(tmp_path):
    with pytest.warns(DataWarning, match="1 rows without the needed fields"):
        result = AmazonReviews2023().read(WRITERS["amazon-all-beauty"](tmp_path))
    data = result.data
    assert data.name == "amazon-all-beauty"
    assert data.users.ids.tolist() == ["AE74DYR3QUGVPZJ3P7RFWBGIX7XQ", "AGKHLEW2SOWHNMFQIJGBECAF7INQ"]
    assert data.items.ids.tolist() == ["0123456789", "B00YQ6X8EO", "B081TJ8YS3"]  # an ISBN-like ASIN stays text
    np.testing.assert_array_equal(data.user_idx, [1, 1, 0])
    np.testing.assert_array_equal(data.weight, [5.0, 4.0, 1.0])
    np.testing.assert_array_equal(data.timestamp, [1588687728, 1588615855, 1589665266])  # ms floored to s
    assert list(data.user_attributes.columns) == []
    assert [(s.label, s.sha256) for s in result.sources] == [("amazon-all-beauty/All_Beauty.jsonl.gz", sha256(AMAZON))]


def test_amazon_category_is_checked_and_other_categories_need_no_catalogue(tmp_path):
    with pytest.raises(ConfigError, match=r"dataset\.category must be an Amazon Reviews'23 category"):
        AmazonReviews2023(category="../etc")
    loader = AmazonReviews2023(category="Video_Games")
    assert loader.input_files(tmp_path) == (tmp_path / "amazon-video-games" / "Video_Games.jsonl.gz",)
    with pytest.raises(DataValidationError, match=r"amazon-reviews-2023\.github\.io") as exc:
        loader.load(tmp_path)
    one_line(exc)
    with pytest.raises(DataValidationError, match="privrec data fetch amazon-all-beauty"):
        AmazonReviews2023().load(tmp_path)


# ====================================================================== presets compose, build and load
NEW_PRESETS = {
    "ml-10m": MovieLensRatings, "ml-20m": MovieLensRatings, "ml-25m": MovieLensRatings, "ml-32m": MovieLensRatings,
    "ml-latest-small": MovieLensRatings, "lastfm-1k": LastFM1K, "book-crossing": BookCrossing,
    "amazon-all-beauty": AmazonReviews2023,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(NEW_PRESETS))
def test_every_public_dataset_preset_composes_builds_and_loads(tmp_path, name):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"dataset={name}"])
    node = OmegaConf.to_container(cfg.dataset, resolve=True)
    loader = build(node, name="dataset")
    assert type(loader) is NEW_PRESETS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        data = loader.load(WRITERS[name](tmp_path))
    assert data.name == name and data.n_interactions > 0
    assert all(p.is_file() for p in loader.input_files(tmp_path))


def test_every_catalogued_dataset_has_a_preset_and_honest_checksums():
    presets = {p.stem for p in (config_dir() / "dataset").glob("*.yaml")}
    assert set(CATALOG) <= presets
    for entry in CATALOG.values():
        archive = entry.archive
        assert archive.urls and all(u.startswith(("https://", "http://")) for u in archive.urls)
        assert entry.licence and entry.citation and archive.members
        assert archive.sha256 is None or len(archive.sha256) == 64
        assert archive.md5 is None or len(archive.md5) == 32
        assert bool(archive.sha256 or archive.md5) == ("none published" not in archive.checksum_source)


# ====================================================================== fetching over 127.0.0.1
class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format, *args):  # noqa: A002 - the signature of the base class
        self.requests.append(self.path)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A real HTTP server on 127.0.0.1 serving ``tmp_path/served``; ``$PRIVREC_DATASET_MIRROR`` points at it."""
    served = tmp_path / "served"
    served.mkdir()
    requests: list[str] = []
    handler = functools.partial(type("H", (_Handler,), {"requests": requests}), directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/"
    monkeypatch.setenv("PRIVREC_DATASET_MIRROR", url)
    yield {"dir": served, "url": url, "requests": requests}
    server.shutdown()
    server.server_close()
    thread.join()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return out.getvalue()


def tar_gz_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return out.getvalue()


def publish(monkeypatch, name: str, payload: bytes, **fields) -> None:
    """Make ``payload`` the published archive of ``name`` in the catalogue (its digests and size)."""
    entry = CATALOG[name]
    digests = {
        "sha256": sha256(payload) if entry.archive.sha256 else None,
        "md5": hashlib.md5(payload, usedforsecurity=False).hexdigest() if entry.archive.md5 else None,
        "size": len(payload) if entry.archive.size else None,
    }
    archive = dataclasses.replace(entry.archive, **{**digests, **fields})
    monkeypatch.setitem(catalog_module.CATALOG, name, dataclasses.replace(entry, archive=archive))


ML1M_RATINGS = b"10::1193::5::978300760\n2::661::3::978302109\n10::914::3::978301968\n"
ML1M_USERS = b"2::M::56::16::70072\n10::F::1::10::01234\n"
ML1M_ZIP = zip_bytes(
    {"ml-1m/movies.dat": b"1::Toy Story (1995)::Animation\n", "ml-1m/ratings.dat": ML1M_RATINGS,
     "ml-1m/users.dat": ML1M_USERS, "ml-1m/README": b"readme\n"}
)  # fmt: skip


def leftovers(data_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*"))


def test_fetch_ml_1m_over_http_verifies_extracts_and_says_where_from(tmp_path, mirror, monkeypatch, capsys):
    (mirror["dir"] / "ml-1m.zip").write_bytes(ML1M_ZIP)
    publish(monkeypatch, "ml-1m", ML1M_ZIP)
    data_dir = tmp_path / "data"
    assert main(["data", "fetch", "ml-1m", "--data-dir", str(data_dir)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"privrec: ml-1m is ready in {data_dir / 'ml-1m'}"
    (line,) = err.strip().splitlines()  # one line (stderr is not a terminal: no "downloading" line)
    assert line.startswith(f"privrec: MovieLens 1M fetched from {mirror['url']}ml-1m.zip into {data_dir / 'ml-1m'}")
    assert "SHA-256 and MD5 verified" in line and "Licence: GroupLens licence: research use only" in line
    assert "Harper" in line
    assert leftovers(data_dir) == ["ml-1m", "ml-1m/ratings.dat", "ml-1m/users.dat"]  # only the needed members
    assert (data_dir / "ml-1m" / "ratings.dat").read_bytes() == ML1M_RATINGS
    assert MovieLens1M().load(data_dir).n_interactions == 3
    # present files are kept: no second request
    assert mirror["requests"] == ["/ml-1m.zip"]
    assert main(["data", "fetch", "ml-1m", "--data-dir", str(data_dir)]) == 0
    assert mirror["requests"] == ["/ml-1m.zip"] and capsys.readouterr().err == ""


def test_fetch_checksum_mismatch_in_a_real_process_is_one_line_and_writes_nothing(tmp_path, mirror):
    (mirror["dir"] / "ml-1m.zip").write_bytes(ML1M_ZIP)  # not GroupLens' archive: the real checksums fail
    data_dir = tmp_path / "data"
    env = {**os.environ, "PRIVREC_DATASET_MIRROR": mirror["url"], "PRIVREC_DATA_DIR": str(data_dir)}
    proc = subprocess.run([sys.executable, "-m", "privrec.cli", "data", "fetch", "ml-1m"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    errors = proc.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith("privrec: error: ")  # one line, no traceback
    assert f"MovieLens 1M must be in {data_dir / 'ml-1m'}; got no verified copy" in errors[0]
    assert "ml-1m.zip must match the published size (5917549 bytes" in errors[0]
    assert f"SHA-256 (got {sha256(ML1M_ZIP)})" in errors[0] and "MD5 (got" in errors[0]
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in errors[0]
    assert leftovers(data_dir) == []  # nothing half-written: no folder, no temporary download


def test_fetch_unknown_name_lists_the_known_ones(tmp_path, mirror, capsys):
    assert main(["data", "fetch", "ml-1m", "ml-7m", "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "got 'ml-7m'" in err
    assert "must be one of ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, ml-latest-small, lastfm-1k" in err
    assert mirror["requests"] == [] and not (tmp_path / "d").exists()  # nothing fetched before the check


def test_fetch_lastfm_tar_gz_by_md5(tmp_path, mirror, monkeypatch, capsys):
    payload = tar_gz_bytes(
        {"lastfm-dataset-1K/README.txt": b"readme\n",
         "lastfm-dataset-1K/userid-timestamp-artid-artname-traid-traname.tsv": LASTFM_PLAYS,
         "lastfm-dataset-1K/userid-profile.tsv": LASTFM_PROFILE}
    )  # fmt: skip
    (mirror["dir"] / "lastfm-dataset-1K.tar.gz").write_bytes(payload)
    publish(monkeypatch, "lastfm-1k", payload)
    data_dir = tmp_path / "data"
    assert fetch_dataset("lastfm-1k", data_dir) == data_dir / "lastfm-1k"
    err = capsys.readouterr().err
    assert "MD5 verified: MD5 as listed on Zenodo record 6090214" in err and "non-commercial" in err
    assert "Celma" in err
    assert leftovers(data_dir) == [
        "lastfm-1k", "lastfm-1k/userid-profile.tsv", "lastfm-1k/userid-timestamp-artid-artname-traid-traname.tsv"
    ]  # fmt: skip
    with pytest.warns(DataWarning):
        assert LastFM1K().load(data_dir).n_interactions == 6


def test_fetch_without_published_checksum_says_so_and_prints_the_sha256(tmp_path, mirror, capsys):
    (mirror["dir"] / "All_Beauty.jsonl.gz").write_bytes(AMAZON)
    (mirror["dir"] / "BX-CSV-Dump.zip").write_bytes(
        zip_bytes(  # in a folder: found by file name
            {"BX/BX-Book-Ratings.csv": BX_RATINGS, "BX/BX-Users.csv": BX_USERS, "BX/BX-Books.csv": b"x\n"}
        )
    )
    data_dir = tmp_path / "data"
    assert main(["data", "fetch", "amazon-all-beauty", "book-crossing", "--data-dir", str(data_dir)]) == 0
    err = capsys.readouterr().err
    assert f"NOT verified: no checksum is published; SHA-256 of the download {sha256(AMAZON)}" in err
    assert "Hou et al. 2024" in err and "Ziegler et al. 2005" in err
    assert leftovers(data_dir) == [
        "amazon-all-beauty", "amazon-all-beauty/All_Beauty.jsonl.gz",
        "book-crossing", "book-crossing/BX-Book-Ratings.csv", "book-crossing/BX-Users.csv",
    ]  # fmt: skip
    assert (data_dir / "amazon-all-beauty" / "All_Beauty.jsonl.gz").read_bytes() == AMAZON  # kept as downloaded
    with pytest.warns(DataWarning):
        assert AmazonReviews2023().load(data_dir).n_interactions == 3


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"this is not a zip archive", "ml-10m.zip must be a readable zip"),
        (zip_bytes({"ml-10M100K/movies.dat": b"1::x::y\n"}), "ml-10m.zip must hold ml-10M100K/ratings.dat"),
    ],
    ids=["corrupt", "member-missing"],
)
def test_fetch_bad_archive_writes_nothing(tmp_path, mirror, monkeypatch, payload, message):
    (mirror["dir"] / "ml-10m.zip").write_bytes(payload)
    publish(monkeypatch, "ml-10m", payload)  # verified, yet unusable
    data_dir = tmp_path / "data"
    with pytest.raises(DataValidationError, match=message) as exc:
        fetch_dataset("ml-10m", data_dir, announce=None)
    assert "Download https://files.grouplens.org/datasets/movielens/ml-10m.zip yourself" in one_line(exc)
    assert leftovers(data_dir) == []


def test_fetch_missing_on_the_server(tmp_path, mirror):
    said: list[str] = []
    with pytest.raises(DataValidationError, match="HTTP 404 File not found") as exc:
        fetch_dataset("ml-25m", tmp_path / "data", announce=said.append, progress=True)
    assert said == [f"privrec: downloading ml-25m.zip (262 MB) from {mirror['url']}ml-25m.zip ..."]
    assert f"{mirror['url']}ml-25m.zip" in one_line(exc)
    assert leftovers(tmp_path / "data") == []


U_DATA = b"196\t242\t3\t881250949\n22\t377\t1\t878887116\n"
U_USER = b"22|24|M|technician|85711\n196|53|F|other|T8H1N\n"


def test_ml_100k_first_use_fetches_over_http_and_says_where_from(tmp_path, mirror, monkeypatch, capsys):
    (mirror["dir"] / "ml-100k.zip").write_bytes(zip_bytes({"ml-100k/u.data": U_DATA, "ml-100k/u.user": U_USER}))
    monkeypatch.setattr(fetch_module, "ML100K_SHA256", {"u.data": sha256(U_DATA), "u.user": sha256(U_USER)})
    data = MovieLens100K().load(tmp_path)  # the first run: fetched on first use
    assert data.n_interactions == 2 and data.n_users == 2
    err = capsys.readouterr().err.strip()
    source = f"{mirror['url']}ml-100k.zip"
    assert err.startswith(f"privrec: MovieLens 100K fetched from {source} into {tmp_path / 'ml-100k'}")
    assert "match the published SHA-256" in err and "Licence: GroupLens licence" in err and "\n" not in err
    assert mirror["requests"] == ["/ml-100k.zip"]


def test_fetch_tar_without_a_member_writes_nothing(tmp_path, mirror, monkeypatch):
    payload = tar_gz_bytes({"lastfm-dataset-1K/userid-profile.tsv": LASTFM_PROFILE})  # the log is missing
    (mirror["dir"] / "lastfm-dataset-1K.tar.gz").write_bytes(payload)
    publish(monkeypatch, "lastfm-1k", payload)
    with pytest.raises(DataValidationError, match="must hold lastfm-dataset-1K/userid-timestamp") as exc:
        fetch_dataset("lastfm-1k", tmp_path / "data", announce=None)
    one_line(exc)
    assert leftovers(tmp_path / "data") == []  # the profile extracted first was removed again


@pytest.mark.parametrize(
    "loader",
    [MovieLensRatings(version="ml-10m"), LastFM1K(), BookCrossing(ratings="explicit"), AmazonReviews2023()],
    ids=lambda x: type(x).__name__,
)
def test_loaders_are_frozen_keyword_only_and_picklable(loader):
    import pickle

    assert pickle.loads(pickle.dumps(loader)) == loader
    fields = dataclasses.fields(loader)
    if fields:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(loader, fields[0].name, "x")
        with pytest.raises(TypeError):
            type(loader)("positional")


def test_amazon_broken_json_is_one_line_without_values(tmp_path):
    write(tmp_path, "amazon-all-beauty", {"All_Beauty.jsonl.gz": gzip.compress(b'{"user_id": "SECRETUSER", "ra\n')})
    with pytest.raises(DataValidationError, match="must be in the dataset's published format") as exc:
        AmazonReviews2023().load(tmp_path)
    assert "SECRETUSER" not in one_line(exc)
