"""read(data_dir) -> LoadResult: the digests of the raw inputs as they were parsed."""

import gzip
import hashlib
import shutil

import numpy as np
import pytest

from privrec.data import Delimited, LoadResult, MovieLens100K, Source, Synthetic
from privrec.data.digest import manifest_sha256
from privrec.errors import DataValidationError


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_is_sha256sum_output_hashed():
    sources = (Source("ml-100k/u.data", "ab" * 32), Source("ml-100k/u.user", "cd" * 32))
    text = f"{'ab' * 32}  ml-100k/u.data\n{'cd' * 32}  ml-100k/u.user\n"
    assert manifest_sha256(sources) == hashlib.sha256(text.encode()).hexdigest()
    assert manifest_sha256(sources[::-1]) != manifest_sha256(sources)  # the order is part of it


def test_movielens_100k_digest_is_of_the_files_read(datasets_dir, tmp_path):
    result = MovieLens100K().read(datasets_dir)
    assert isinstance(result, LoadResult)
    root = datasets_dir / "ml-100k"
    assert result.sources == (Source("ml-100k/u.data", sha(root / "u.data")),
                              Source("ml-100k/u.user", sha(root / "u.user")))
    assert MovieLens100K().input_files(datasets_dir) == (root / "u.data", root / "u.user")
    assert result.data.checksum() == MovieLens100K().load(datasets_dir).checksum()
    # the digest is about content: another folder with the same files gives the same digest
    shutil.copytree(root, tmp_path / "ml-100k")
    assert MovieLens100K().read(tmp_path).sha256 == result.sha256
    # one character of one rating changed: another digest (and another dataset)
    path = tmp_path / "ml-100k" / "u.data"
    raw = bytearray(path.read_bytes())
    at = raw.index(b"\t", raw.index(b"\t") + 1) + 1  # first line's rating
    raw[at:at + 1] = b"5" if raw[at:at + 1] != b"5" else b"4"
    path.write_bytes(bytes(raw))
    changed = MovieLens100K().read(tmp_path)
    assert changed.sha256 != result.sha256
    assert changed.sources[0] != result.sources[0] and changed.sources[1] == result.sources[1]


def test_delimited_digests_the_interactions_then_the_attributes(tmp_path):
    (tmp_path / "log.tsv").write_text("u1\ti1\t3\nu2\ti2\t4\nu1\ti2\t5\n")
    (tmp_path / "users.csv").write_text("user,gender\nu1,F\nu2,M\n")
    plain = Delimited(path="log.tsv").read(tmp_path)
    assert plain.sources == (Source("interactions", sha(tmp_path / "log.tsv")),)
    both = Delimited(path="log.tsv", user_attributes_path="users.csv").read(tmp_path)
    assert both.sources == (Source("interactions", sha(tmp_path / "log.tsv")),
                            Source("user_attributes", sha(tmp_path / "users.csv")))
    assert Delimited(path="log.tsv", user_attributes_path="users.csv").input_files(tmp_path) == (
        tmp_path / "log.tsv", tmp_path / "users.csv")
    # the columns read are a subset: the digest still covers the whole file
    only_two = Delimited(path="log.tsv", rating_col=None).read(tmp_path)
    assert only_two.sources == plain.sources


def test_delimited_compressed_file_is_parsed_and_hashed_as_stored(tmp_path):
    text = b"u1\ti1\t3\nu2\ti2\t4\n"
    (tmp_path / "log.tsv").write_bytes(text)
    (tmp_path / "log.tsv.gz").write_bytes(gzip.compress(text))
    plain = Delimited(path="log.tsv").read(tmp_path)
    packed = Delimited(path="log.tsv.gz").read(tmp_path)
    assert packed.data.checksum() == plain.data.checksum()
    assert packed.sources == (Source("interactions", sha(tmp_path / "log.tsv.gz")),)


def test_synthetic_digest_is_of_parameters_and_output():
    a = Synthetic(n_users=30, n_items=20, n_interactions=120, seed=1).read()
    assert [s.label for s in a.sources] == ["synthetic/parameters", "synthetic/output"]
    assert a.sources[1].sha256 == a.data.checksum()
    assert a.sha256 == Synthetic(n_users=30, n_items=20, n_interactions=120, seed=1).read().sha256
    assert a.sha256 != Synthetic(n_users=30, n_items=20, n_interactions=120, seed=2).read().sha256
    assert Synthetic().input_files() == ()


def test_read_and_load_agree_on_the_dataset(tmp_path):
    (tmp_path / "log.tsv").write_text("1\t1\t3\n2\t2\t4\n")
    loader = Delimited(path="log.tsv")
    a, b = loader.read(tmp_path).data, loader.load(tmp_path)
    assert a.checksum() == b.checksum()
    np.testing.assert_array_equal(a.users.ids, b.users.ids)


@pytest.mark.parametrize(("content", "pattern"), [(b"", "must hold data"), (b"1\t\xff\xfe\t3\n", "UTF-8")])
def test_unreadable_files_still_fail_with_one_line(tmp_path, content, pattern):
    (tmp_path / "log.tsv").write_bytes(content)
    with pytest.raises(DataValidationError, match=pattern) as err:
        Delimited(path="log.tsv").read(tmp_path)
    assert "\n" not in str(err.value)
