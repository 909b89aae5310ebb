"""Fetching ML-100K (never touching the network) and describe()."""

from __future__ import annotations

import hashlib
import io
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
    target = fetch_movielens_100k(tmp_path)
    assert target == tmp_path / "ml-100k"
    assert (target / "u.data").read_bytes() == U_DATA and (target / "u.user").read_bytes() == U_USER
    assert sorted(p.name for p in target.iterdir()) == ["u.data", "u.user"]  # no temporary files left


def test_fetch_uses_grouplens_zip_when_reachable(tmp_path, monkeypatch, fake_hashes):
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as archive:
        archive.writestr("ml-100k/u.data", U_DATA)
        archive.writestr("ml-100k/u.user", U_USER)

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    seen = []
    monkeypatch.setattr(
        fetch.urllib.request,
        "urlopen",
        lambda url, timeout: seen.append((url, timeout)) or Response(payload.getvalue()),
    )
    monkeypatch.setattr(fetch, "_from_recbole", lambda _t: pytest.fail("fell back although GroupLens answered"))
    fetch_movielens_100k(tmp_path, timeout=3)
    assert seen == [(fetch.GROUPLENS_ML100K_URL, 3)]
    assert (tmp_path / "ml-100k" / "u.data").read_bytes() == U_DATA


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
