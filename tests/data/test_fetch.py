"""Fetching ML-100K (never touching the network), the catalogue's verification, and describe()."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
from datahelpers import make_dataset

from privrec.data import describe, fetch, fetch_movielens_100k
from privrec.errors import DataValidationError

INTER = b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n22\t377\t1\t878887116\n"
USER = (
    b"user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
    b"1\t24\tM\ttechnician\t85711\n2\t53\tF\tother\tT8H1N\n"
)
U_DATA = b"196\t242\t3\t881250949\n22\t377\t1\t878887116\n"
U_USER = b"1|24|M|technician|85711\n2|53|F|other|T8H1N\n"


def fake_wheel(path: Path, inter: bytes = INTER, user: bytes = USER) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("recbole/__init__.py", "")
        archive.writestr("recbole/dataset_example/ml-100k/ml-100k.inter", inter)
        archive.writestr("recbole/dataset_example/ml-100k/ml-100k.user", user)
    return path


@pytest.fixture
def fake_hashes(monkeypatch):
    """Make the tiny fake files the 'published' ones."""
    hashes = {"u.data": hashlib.sha256(U_DATA).hexdigest(), "u.user": hashlib.sha256(U_USER).hexdigest()}
    monkeypatch.setattr(fetch, "ML100K_SHA256", hashes)
    return hashes


@pytest.fixture
def offline(monkeypatch):
    def no_network(_timeout):
        raise fetch._SourceError("URLError: offline")

    monkeypatch.setattr(fetch, "_from_grouplens", no_network)


# ---------------------------------------------------------------------- conversion
def test_recbole_conversion_is_grouplens_layout(tmp_path):
    files = fetch._convert_recbole_wheel(fake_wheel(tmp_path / "recbole-1.2.1-py3-none-any.whl"))
    assert files == {"u.data": U_DATA, "u.user": U_USER}


def test_recbole_conversion_reorders_columns_keeping_text(tmp_path):
    inter = (
        b"item_id:token\tuser_id:token\ttimestamp:float\trating:float\n242\t196\t881250949\t3\n377\t22\t878887116\t1\n"
    )
    files = fetch._convert_recbole_wheel(fake_wheel(tmp_path / "w.whl", inter=inter))
    assert files["u.data"] == U_DATA


def test_recbole_conversion_rejects_a_wheel_without_the_files(tmp_path):
    with zipfile.ZipFile(tmp_path / "w.whl", "w") as archive:
        archive.writestr("recbole/__init__.py", "")
    with pytest.raises(fetch._SourceError, match="unexpected wheel"):
        fetch._convert_recbole_wheel(tmp_path / "w.whl")


def test_real_copy_matches_published_hashes(datasets_dir):
    for name, expected in fetch.ML100K_SHA256.items():
        assert hashlib.sha256((datasets_dir / "ml-100k" / name).read_bytes()).hexdigest() == expected


# ---------------------------------------------------------------------- fetch flow
def test_fetch_falls_back_to_recbole_wheel(tmp_path, monkeypatch, fake_hashes, offline):
    monkeypatch.setattr(
        fetch, "_pip_download_recbole", lambda dest, timeout: fake_wheel(dest / "recbole-1.2.1-py3-none-any.whl")
    )
    said: list[str] = []
    target = fetch_movielens_100k(tmp_path, announce=said.append)
    assert target == tmp_path / "ml-100k"
    assert (target / "u.data").read_bytes() == U_DATA and (target / "u.user").read_bytes() == U_USER
    assert sorted(p.name for p in target.iterdir()) == ["u.data", "u.user"]  # no temporary files left
    # the first fetch says where the data came from and its licence, in one line
    assert len(said) == 1 and "\n" not in said[0]
    assert said[0].startswith("privrec: MovieLens 100K fetched from the recbole==1.2.1 wheel on PyPI")
    assert "Licence: GroupLens licence: research use only, no redistribution" in said[0] and "Harper" in said[0]
    said.clear()
    fetch_movielens_100k(tmp_path, announce=said.append)
    assert said == []  # nothing fetched, nothing said


# GroupLens over HTTP (a real server on 127.0.0.1): tests/data/test_public_datasets.py


def test_pip_download_command_downloads_only(tmp_path, monkeypatch):
    seen = {}

    def fake_run(cmd, **kwargs):
        seen["cmd"] = cmd
        fake_wheel(Path(cmd[cmd.index("-d") + 1]) / "recbole-1.2.1-py3-none-any.whl")
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(fetch.subprocess, "run", fake_run)
    wheel = fetch._pip_download_recbole(tmp_path, 5)
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "pip", "download"] and "install" not in cmd
    assert {"recbole==1.2.1", "--no-deps", "--only-binary=:all:"} <= set(cmd)
    assert wheel.name == "recbole-1.2.1-py3-none-any.whl"


def test_pip_failure_is_a_source_error(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch.subprocess, "run", lambda cmd, **kw: type("Done", (), {"returncode": 1})())
    with pytest.raises(fetch._SourceError, match="exited with status 1"):
        fetch._pip_download_recbole(tmp_path, 5)


def test_hash_mismatch_rejects_the_source_and_writes_nothing(tmp_path, monkeypatch, offline):
    # Real published hashes, fake tiny files: both sources fail verification.
    monkeypatch.setattr(fetch, "_pip_download_recbole", lambda dest, timeout: fake_wheel(dest / "r.whl"))
    with pytest.raises(DataValidationError) as exc:
        fetch_movielens_100k(tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert "does not match the published SHA-256" in msg and "by hand" in msg
    assert str(tmp_path / "ml-100k") in msg
    assert not (tmp_path / "ml-100k").exists() or not any((tmp_path / "ml-100k").iterdir())


def test_both_sources_down_gives_one_line_with_the_manual_step(tmp_path, monkeypatch, offline):
    def no_pip(dest, timeout):
        raise fetch._SourceError("pip download exited with status 1")

    monkeypatch.setattr(fetch, "_pip_download_recbole", no_pip)
    with pytest.raises(DataValidationError) as exc:
        fetch_movielens_100k(tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(f"MovieLens 100K must be in {tmp_path / 'ml-100k'}")
    assert "GroupLens: URLError: offline" in msg and "status 1" in msg
    assert "Put u.data and u.user" in msg and "by hand" in msg


def test_verified_files_are_kept_without_fetching(tmp_path, monkeypatch, fake_hashes):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_bytes(U_DATA)
    (tmp_path / "ml-100k" / "u.user").write_bytes(U_USER)
    monkeypatch.setattr(fetch, "_from_grouplens", lambda _t: pytest.fail("fetched although verified files exist"))
    assert fetch_movielens_100k(tmp_path) == tmp_path / "ml-100k"


def test_modified_file_is_reported_not_overwritten(tmp_path, fake_hashes):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_bytes(U_DATA + b"1\t1\t1\t1\n")
    with pytest.raises(DataValidationError, match="must match the published MovieLens 100K SHA-256"):
        fetch_movielens_100k(tmp_path)
    assert (tmp_path / "ml-100k" / "u.data").read_bytes().endswith(b"1\t1\t1\t1\n")


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "ml-100k"
    real_replace = fetch.os.replace

    def fail_second(src, dst):
        if Path(dst).name == "u.user":
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(fetch.os, "replace", fail_second)
    with pytest.raises(OSError, match="disk full"):
        fetch._write_atomic(target, {"u.data": U_DATA, "u.user": U_USER})
    assert sorted(p.name for p in target.iterdir()) == ["u.data"]  # complete file or nothing; no .part left
    assert (target / "u.data").read_bytes() == U_DATA


# ---------------------------------------------------------------------- describe
def test_describe_is_aggregate_only():
    data = make_dataset(
        [(0, 0, 5.0), (0, 1, 3.0), (2, 1, 4.0)],
        n_items=4,
        attributes={"gender": ["F", "M", "F"], "age_band": ["18-24", None, "56+"]},
    )
    info = describe(data)
    assert info["n_users"] == 3 and info["n_items"] == 4 and info["n_interactions"] == 3
    assert info["n_users_with_data"] == 2 and info["n_items_with_data"] == 2
    assert info["density"] == pytest.approx(3 / 12)
    assert info["attributes"] == ["gender", "age_band"]
    assert info["distinct_values"] == {"gender": 2, "age_band": 2}
    assert info["missing_values"] == {"gender": 0, "age_band": 1}
    assert info["has_timestamps"] is False
    flat = repr(info)
    assert "100" not in flat and "18-24" not in flat  # no ids, no attribute values
    assert np.isfinite(info["interactions_per_user_median"])


# ---------------------------------------------------------------------- archive verification
def _download(payload: bytes) -> fetch._Download:
    md5 = hashlib.md5(payload, usedforsecurity=False).hexdigest()
    return fetch._Download(Path("x"), "u", len(payload), hashlib.sha256(payload).hexdigest(), md5)


def test_archive_verification_uses_every_published_digest():
    payload = b"archive bytes"
    sha, md5 = hashlib.sha256(payload).hexdigest(), hashlib.md5(payload, usedforsecurity=False).hexdigest()
    both = fetch.Archive(urls=("u",), filename="a.zip", kind="zip", members=(), sha256=sha, md5=md5,
                         size=len(payload), checksum_source="src")  # fmt: skip
    assert fetch._verify_archive(both, _download(payload)) == "SHA-256 and MD5 verified: src"
    md5_only = fetch.Archive(urls=("u",), filename="a.zip", kind="zip", members=(), md5=md5, checksum_source="s")
    assert fetch._verify_archive(md5_only, _download(payload)) == "MD5 verified: s"
    nothing = fetch.Archive(urls=("u",), filename="a.zip", kind="zip", members=())
    assert fetch._verify_archive(nothing, _download(payload)).startswith("NOT verified: no checksum is published; ")
    assert sha in fetch._verify_archive(nothing, _download(payload))
    with pytest.raises(fetch._SourceError, match=r"a.zip must match the published size \(13 bytes; got 14\)"):
        fetch._verify_archive(both, _download(payload + b"!"))
    with pytest.raises(fetch._SourceError, match="must match the published MD5") as exc:
        fetch._verify_archive(md5_only, _download(b"other"))
    assert "SHA-256" not in str(exc.value)


def test_catalogue_checksums_are_the_published_ones():
    """Pinned: a checksum here changes only with a source (GroupLens' .md5 files, TFDS, Zenodo)."""
    expected = {
        "ml-100k": ("50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
                    "0e33842e24a9c977be4e0107933c0723", 4_924_029),
        "ml-1m": ("a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
                  "c4d9eecfca2ab87c1945afe126590906", 5_917_549),
        "ml-10m": (None, "ce571fd55effeba0271552578f2648bd", None),
        "ml-20m": ("96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
                   "cd245b17a1ae2cc31bb14903e1204af3", 198_702_078),
        "ml-25m": ("8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
                   "6b51fb2759a8657d3bfcbfc42b592ada", 261_978_986),
        "ml-32m": (None, "d472be332d4daa821edc399621853b57", None),
        "ml-latest-small": ("696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", None, 978_202),
        "lastfm-1k": (None, "a79a6808f54f73354789a9fb02cb1e41", None),
        "book-crossing": (None, None, None),
        "amazon-all-beauty": (None, None, None),
    }  # fmt: skip
    got = {name: (e.archive.sha256, e.archive.md5, e.archive.size) for name, e in fetch.CATALOG.items()}
    assert got == expected


def test_mirror_replaces_every_source(monkeypatch):
    entry = fetch.CATALOG["lastfm-1k"]
    assert fetch.source_urls(entry) == entry.archive.urls and len(entry.archive.urls) == 2
    monkeypatch.setenv(fetch.MIRROR_ENV, "http://127.0.0.1:9/base/")
    assert fetch.source_urls(entry) == ("http://127.0.0.1:9/base/lastfm-dataset-1K.tar.gz",)
