"""Fetch public datasets, and :func:`describe` a dataset (for ``privrec data fetch`` / ``privrec data info``).

:func:`fetch_dataset` fetches any dataset of :data:`privrec.data.catalog.CATALOG` from its official source
with ``urllib``: the archive is streamed to a temporary file in ``data_dir`` while its SHA-256, MD5 and size are
computed, checked against what was published (the catalogue says which), and only then are the needed members
extracted into ``<data_dir>/<name>/``, each written to a temporary name, flushed and renamed into place. A
download that fails or does not verify leaves nothing behind. A dataset without a published checksum is kept
with a one-line notice that it could not be verified and the SHA-256 of what was downloaded. Files already in
``<data_dir>/<name>/`` are kept. ``$PRIVREC_DATASET_MIRROR`` (a base URL, e.g. ``http://127.0.0.1:8000/``)
replaces every source by ``<mirror>/<archive file name>`` (a local copy, or the tests' server).

When it downloads, a fetch announces in one line (stderr by default) where the data came from, how it was
verified, and the dataset's licence and citation.

:func:`fetch_movielens_100k` writes ``<data_dir>/ml-100k/u.data`` and ``u.user`` in GroupLens' own layout and
verifies both against the SHA-256 of the published files. Sources, in order:

1. GroupLens' archive (``ml-100k.zip``), with a short timeout;
2. the copy of ML-100K bundled in the ``recbole==1.2.1`` wheel on PyPI, fetched with ``pip download``
   (download only, never installed) and converted back to GroupLens' layout byte for byte
   (same rows, same order: only the header line goes and the user file's separator becomes ``|``).

Files are written atomically (temporary file, then rename), so a reader never sees half a file.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from privrec.data.catalog import CATALOG, Archive, CatalogEntry, catalog_entry
from privrec.data.dataset import Dataset
from privrec.errors import DataValidationError

__all__ = [
    "GROUPLENS_ML100K_URL",
    "MIRROR_ENV",
    "ML100K_SHA256",
    "RECBOLE_REQUIREMENT",
    "describe",
    "fetch_dataset",
    "fetch_movielens_100k",
    "source_urls",
]

#: Environment variable naming a base URL that replaces every official source (a mirror, or a test server).
MIRROR_ENV = "PRIVREC_DATASET_MIRROR"
#: Receives the one-line announcements of a fetch (default: print to stderr).
Announce = Callable[[str], None]

GROUPLENS_ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
RECBOLE_REQUIREMENT = "recbole==1.2.1"
#: SHA-256 of GroupLens' published ``u.data`` and ``u.user``.
ML100K_SHA256: dict[str, str] = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
}
_GROUPLENS_MEMBERS = {"u.data": "ml-100k/u.data", "u.user": "ml-100k/u.user"}
_RECBOLE_MEMBERS = {
    "u.data": "recbole/dataset_example/ml-100k/ml-100k.inter",
    "u.user": "recbole/dataset_example/ml-100k/ml-100k.user",
}
# GroupLens column order of each file, as named in RecBole's atomic-file headers.
_RECBOLE_COLUMNS = {
    "u.data": ("user_id", "item_id", "rating", "timestamp"),
    "u.user": ("user_id", "age", "gender", "occupation", "zip_code"),
}
_GROUPLENS_SEP = {"u.data": "\t", "u.user": "|"}
_PIP_TIMEOUT = 300.0  # seconds for the whole `pip download`


class _SourceError(Exception):
    """One source could not deliver verified files (the reason is short and holds no data)."""


def _print_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def source_urls(entry: CatalogEntry) -> tuple[str, ...]:
    """The URLs to try for ``entry``: the official ones, or ``<$PRIVREC_DATASET_MIRROR>/<archive file name>``."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return (f"{mirror.rstrip('/')}/{entry.archive.filename}",)
    return entry.archive.urls


def _licence_line(entry: CatalogEntry) -> str:
    return f"Licence: {entry.licence}. Cite: {entry.citation}"


def fetch_movielens_100k(
    data_dir: str | os.PathLike, *, timeout: float = 10.0, announce: Announce | None = _print_stderr
) -> Path:
    """Make sure ``<data_dir>/ml-100k/u.data`` and ``u.user`` exist and match the published SHA-256.

    Files already there and verified are kept; missing ones are fetched (GroupLens first, then the RecBole
    wheel on PyPI) and ``announce`` gets one line naming the source and the licence. Returns the ``ml-100k``
    folder. Raises :class:`DataValidationError` in one line when a present file does not verify or when no
    source works, saying where to put the files by hand.
    """
    target = Path(data_dir) / "ml-100k"
    present = [name for name in ML100K_SHA256 if (target / name).is_file()]
    for name in present:
        if _sha256((target / name).read_bytes()) != ML100K_SHA256[name]:
            raise DataValidationError(
                f"{target / name} must match the published MovieLens 100K SHA-256; got a different file. "
                "Remove it to fetch a fresh copy, or load it with privrec.data.Delimited instead."
            )
    if len(present) == len(ML100K_SHA256):
        return target
    failures = []
    entry = CATALOG["ml-100k"]
    origins = {
        "GroupLens": source_urls(entry)[0],
        "PyPI recbole wheel": f"the {RECBOLE_REQUIREMENT} wheel on PyPI (GroupLens' files, byte for byte)",
    }
    for label, source in (("GroupLens", _from_grouplens), ("PyPI recbole wheel", _from_recbole)):
        try:
            files = source(timeout)
            _verify(files)
        except _SourceError as exc:
            failures.append(f"{label}: {exc}")
            continue
        try:
            _write_atomic(target, {k: v for k, v in files.items() if k not in present})
        except OSError as exc:
            raise DataValidationError(
                f"data_dir must be writable to store MovieLens 100K; got {type(exc).__name__} writing {target}."
            ) from None
        if announce is not None:
            announce(
                f"privrec: {entry.title} fetched from {origins[label]} into {target} (u.data and u.user match "
                f"the published SHA-256). {_licence_line(entry)}"
            )
        return target
    raise DataValidationError(
        f"MovieLens 100K must be in {target}; got no copy ({'; '.join(failures)}). Put u.data and u.user from "
        f"ml-100k.zip ({GROUPLENS_ML100K_URL}) into {target} by hand."
    )


# ---------------------------------------------------------------------- sources
def _from_grouplens(timeout: float) -> dict[str, bytes]:
    try:
        with urllib.request.urlopen(source_urls(CATALOG["ml-100k"])[0], timeout=timeout) as response:
            payload = response.read()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _SourceError(_short(exc)) from None
    return _extract_grouplens_zip(payload)


def _extract_grouplens_zip(payload: bytes) -> dict[str, bytes]:
    """``u.data`` and ``u.user`` from the bytes of GroupLens' ``ml-100k.zip``."""
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            return {name: archive.read(member) for name, member in _GROUPLENS_MEMBERS.items()}
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise _SourceError(f"unexpected archive ({type(exc).__name__})") from None


def _from_recbole(timeout: float) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory(prefix="privrec-recbole-") as tmp:
        wheel = _pip_download_recbole(Path(tmp), timeout)
        return _convert_recbole_wheel(wheel)


def _pip_download_recbole(dest: Path, timeout: float) -> Path:
    """``pip download`` the RecBole wheel into ``dest`` (no dependencies, binary only, never installed)."""
    cmd = [
        sys.executable, "-m", "pip", "download", RECBOLE_REQUIREMENT, "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--quiet", "--retries", "1", "--timeout", f"{max(timeout, 1):g}",
        "-d", str(dest),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=_PIP_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise _SourceError(f"pip download failed ({type(exc).__name__})") from None
    if proc.returncode != 0:
        raise _SourceError(f"pip download exited with status {proc.returncode}")
    wheels = sorted(dest.glob("recbole-*.whl"))
    if not wheels:
        raise _SourceError("pip download produced no recbole wheel")
    return wheels[0]


def _convert_recbole_wheel(wheel: str | os.PathLike) -> dict[str, bytes]:
    """GroupLens-layout ``u.data`` and ``u.user`` from the ML-100K atomic files inside a RecBole wheel."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            raw = {name: archive.read(member) for name, member in _RECBOLE_MEMBERS.items()}
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise _SourceError(f"unexpected wheel ({type(exc).__name__})") from None
    return {name: _recbole_to_grouplens(raw[name], name) for name in raw}


def _recbole_to_grouplens(raw: bytes, name: str) -> bytes:
    """One RecBole atomic file (tab-separated, ``field:type`` header) as the GroupLens file ``name``.

    Rows keep their order and their exact text; only the header goes, columns are put in GroupLens order
    (a no-op for RecBole 1.2.1) and ``u.user`` gets ``|`` separators.
    """
    head, sep, body = raw.partition(b"\n")
    fields = [f.split(":", 1)[0] for f in head.decode("utf-8", "replace").rstrip("\r").split("\t")]
    want = _RECBOLE_COLUMNS[name]
    if not sep or not set(want) <= set(fields):
        raise _SourceError(f"{name} source must have columns {', '.join(want)}; got {len(fields)} other columns")
    out_sep = _GROUPLENS_SEP[name]
    if tuple(fields) == want:
        if out_sep != "\t":
            if out_sep.encode() in body:
                raise _SourceError(f"{name} source holds the separator {out_sep!r} inside fields")
            body = body.replace(b"\t", out_sep.encode())
    else:  # reorder columns, keeping every field's text as it is
        frame = pd.read_csv(io.BytesIO(body), sep="\t", header=None, names=fields, dtype=str, keep_default_na=False)
        text = frame[list(want)].to_csv(sep=out_sep, header=False, index=False, lineterminator="\n")
        body = text.encode("utf-8")
    if body and not body.endswith(b"\n"):
        body += b"\n"
    return body


# ---------------------------------------------------------------------- verification and writing
def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _verify(files: dict[str, bytes]) -> None:
    for name, expected in ML100K_SHA256.items():
        if name not in files:
            raise _SourceError(f"{name} missing")
        if _sha256(files[name]) != expected:
            raise _SourceError(f"{name} does not match the published SHA-256")


def _write_atomic(target: Path, files: dict[str, bytes]) -> None:
    """Write every file to a temporary name in ``target``, flush it to disk, then rename it into place."""
    target.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[str, Path]] = []
    try:
        for name, payload in files.items():
            tmp = target / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.part"
            staged.append((name, tmp))
            with open(tmp, "xb") as handle:  # mode 0o666 minus the umask, like any new file
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
        for name, tmp in staged:
            os.replace(tmp, target / name)
    finally:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)


def _short(exc: BaseException) -> str:
    """A one-line, short reason (exception type and the first line of its text)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"[:90]
    text = str(getattr(exc, "reason", "") or exc).strip().splitlines()
    detail = text[0][:80] if text else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


# ---------------------------------------------------------------------- any catalogued dataset
_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Download:
    """A downloaded archive in a temporary file, and the digests computed while it streamed in."""

    path: Path
    url: str
    size: int
    sha256: str
    md5: str


def fetch_dataset(
    name: str,
    data_dir: str | os.PathLike,
    *,
    timeout: float = 30.0,
    announce: Announce | None = _print_stderr,
    progress: bool | None = None,
) -> Path:
    """Make sure the files of the catalogued dataset ``name`` are in ``<data_dir>/<name>/``; return that folder.

    Missing files are downloaded from the official source (or ``$PRIVREC_DATASET_MIRROR``), verified against the
    published checksum and extracted atomically (see the module docstring); ``announce`` gets one line saying
    where they came from, how they were verified, and the licence; with ``progress`` (default: when stderr is a
    terminal) it is also told when each download starts. ``ml-100k`` goes through
    :func:`fetch_movielens_100k` (with its PyPI fallback). Raises :class:`~privrec.errors.ConfigError` for an
    unknown name (listing the known ones) and :class:`DataValidationError` in one line when no source delivers
    a verified archive, naming the file to place by hand.
    """
    entry = catalog_entry(name)
    if name == "ml-100k":
        return fetch_movielens_100k(data_dir, timeout=timeout, announce=announce)
    archive = entry.archive
    target = Path(data_dir) / name
    missing = [(member, out) for member, out in archive.members if not (target / out).is_file()]
    if not missing:
        return target
    try:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataValidationError(
            f"data_dir must be a writable folder; got {type(exc).__name__} creating {Path(data_dir)}."
        ) from None
    failures = []
    for url in source_urls(entry):
        if announce is not None and (sys.stderr.isatty() if progress is None else progress):
            known = f" ({archive.size / 1e6:,.0f} MB)" if archive.size else ""
            announce(f"privrec: downloading {archive.filename}{known} from {url} ...")
        try:
            with _downloaded(url, Path(data_dir), timeout) as download:
                verification = _verify_archive(archive, download)
                _extract(archive, download.path, target, missing)
        except _SourceError as exc:
            failures.append(f"{url}: {exc}")
            continue
        except OSError as exc:
            raise DataValidationError(
                f"data_dir must be writable to store {entry.title}; got {type(exc).__name__} writing {target}."
            ) from None
        if announce is not None:
            announce(
                f"privrec: {entry.title} fetched from {url} into {target} ({verification}). {_licence_line(entry)}"
            )
        return target
    files = ", ".join(out for _, out in missing)
    raise DataValidationError(
        f"{entry.title} must be in {target}; got no verified copy ({'; '.join(failures)}). Download "
        f"{archive.urls[0]} yourself and put {files} from it into {target}."
    )


class _downloaded:  # noqa: N801 - a context manager used like a function
    """Stream ``url`` into a temporary file in ``folder`` (hashing it as it arrives); remove the file on exit."""

    def __init__(self, url: str, folder: Path, timeout: float) -> None:
        self.url, self.folder, self.timeout = url, folder, timeout
        self.tmp = folder / f".privrec-download.{os.getpid()}.{secrets.token_hex(4)}.part"

    def __enter__(self) -> _Download:
        sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
        network = (OSError, http.client.HTTPException, ValueError)  # URLError, HTTPError, timeouts, resets
        try:
            response = urllib.request.urlopen(self.url, timeout=self.timeout)
        except network as exc:
            raise _SourceError(_short(exc)) from None
        try:
            with response, open(self.tmp, "xb") as out:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except network as exc:
                        raise _SourceError(_short(exc)) from None
                    if not chunk:
                        break
                    out.write(chunk)
                    sha.update(chunk)
                    md5.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except _SourceError:
            self.tmp.unlink(missing_ok=True)
            raise
        except OSError as exc:  # writing the download: a full disk, a read-only folder
            self.tmp.unlink(missing_ok=True)
            raise DataValidationError(
                f"data_dir must be writable to hold a download; got {type(exc).__name__} writing in {self.folder}."
            ) from None
        return _Download(self.tmp, self.url, size, sha.hexdigest(), md5.hexdigest())

    def __exit__(self, *exc: object) -> None:
        self.tmp.unlink(missing_ok=True)


def _verify_archive(archive: Archive, download: _Download) -> str:
    """Check ``download`` against every digest the catalogue knows; say how it was verified."""
    wrong = []
    if archive.size is not None and download.size != archive.size:
        wrong.append(f"size ({archive.size} bytes; got {download.size})")
    if archive.sha256 is not None and download.sha256 != archive.sha256:
        wrong.append(f"SHA-256 (got {download.sha256})")
    if archive.md5 is not None and download.md5 != archive.md5:
        wrong.append(f"MD5 (got {download.md5})")
    if wrong:
        raise _SourceError(f"{archive.filename} must match the published {' and '.join(wrong)}")
    checked = [label for label, known in (("SHA-256", archive.sha256), ("MD5", archive.md5)) if known]
    if not checked:
        return f"NOT verified: no checksum is published; SHA-256 of the download {download.sha256}"
    return f"{' and '.join(checked)} verified: {archive.checksum_source}"


def _extract(archive: Archive, path: Path, target: Path, members: list[tuple[str, str]]) -> None:
    """Copy ``members`` (archive path, file name) of the archive at ``path`` into ``target``, all or none."""
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[str, Path]] = []
    try:
        if archive.kind == "file":
            ((_, out),) = members
            tmp = target / f".{out}.{os.getpid()}.{secrets.token_hex(4)}.part"
            staged.append((out, tmp))
            os.replace(path, tmp)
        elif archive.kind == "zip":
            try:
                with zipfile.ZipFile(path) as zf:
                    names = zf.namelist()
                    for member, out in members:
                        with zf.open(_member(names, member, archive)) as src:
                            staged.append((out, _stage(src, target, out)))
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise _SourceError(f"{archive.filename} must be a readable zip; got {type(exc).__name__}") from None
        elif archive.kind == "tar.gz":
            try:
                with tarfile.open(path, "r|gz") as tf:  # one streaming pass, members in archive order
                    wanted = dict(members)
                    for info in tf:
                        entry = _wanted(info.name, wanted) if info.isfile() else None
                        src_tar = tf.extractfile(info) if entry is not None else None
                        if entry is None or src_tar is None:
                            continue
                        name = wanted.pop(entry)
                        with src_tar:
                            staged.append((name, _stage(src_tar, target, name)))
                if wanted:
                    raise _SourceError(f"{archive.filename} must hold {', '.join(wanted)}; got no such entries")
            except (tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError) as exc:
                raise _SourceError(f"{archive.filename} must be a readable tar.gz; got {type(exc).__name__}") from None
        else:  # pragma: no cover - the catalogue only holds the kinds above
            raise _SourceError(f"archive kind must be zip, tar.gz or file; got {archive.kind!r}")
        for out, tmp in staged:
            os.replace(tmp, target / out)
    finally:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
        if created and not any(target.iterdir()):
            target.rmdir()


def _member(names: list[str], member: str, archive: Archive) -> str:
    """``member`` if the archive has it, else the one entry with the same file name (archives are re-packed)."""
    if member in names:
        return member
    base = member.rsplit("/", 1)[-1]
    same = [n for n in names if n.rsplit("/", 1)[-1] == base]
    if len(same) != 1:
        raise _SourceError(f"{archive.filename} must hold {member}; got {len(same)} entries named {base}")
    return same[0]


def _wanted(name: str, wanted: dict[str, str]) -> str | None:
    """The wanted member that the archive entry ``name`` is: the same path, else the only one with its file name."""
    if name in wanted:
        return name
    same = [m for m in wanted if m.rsplit("/", 1)[-1] == name.rsplit("/", 1)[-1]]
    return same[0] if len(same) == 1 else None


def _stage(src: IO[bytes], target: Path, out: str) -> Path:
    """Stream ``src`` into a new temporary file beside ``target/out``, flushed to disk."""
    tmp = target / f".{out}.{os.getpid()}.{secrets.token_hex(4)}.part"
    with open(tmp, "xb") as handle:
        shutil.copyfileobj(src, handle, _CHUNK)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


# ---------------------------------------------------------------------- describe
def describe(data: Dataset) -> dict:
    """Aggregate statistics of ``data`` (sizes, density, attribute columns and their number of distinct values).

    Safe to print or log: counts and rates only, no id, no record value (not even a min or max).
    """
    user_counts = data.user_counts
    item_counts = data.item_counts
    attrs = data.user_attributes
    with_data = int((user_counts > 0).sum())
    return {
        "name": data.name,
        "n_users": data.n_users,
        "n_items": data.n_items,
        "n_interactions": data.n_interactions,
        "n_users_with_data": with_data,
        "n_items_with_data": int((item_counts > 0).sum()),
        "density": data.n_interactions / max(1, data.n_users * data.n_items),
        "interactions_per_user_mean": data.n_interactions / max(1, with_data),
        "interactions_per_user_median": float(np.median(user_counts[user_counts > 0])) if with_data else 0.0,
        "has_timestamps": data.timestamp is not None,
        "attributes": [str(c) for c in attrs.columns],
        "distinct_values": {str(c): int(attrs[c].nunique(dropna=True)) for c in attrs.columns},
        "missing_values": {str(c): int(attrs[c].isna().sum()) for c in attrs.columns},
        "quasi_identifiers": list(data.schema.quasi_identifiers),
        "sensitive": list(data.schema.sensitive),
    }
