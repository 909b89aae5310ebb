"""Fetch MovieLens 100K, and :func:`describe` a dataset (for ``privrec data fetch`` / ``privrec data info``).

:func:`fetch_movielens_100k` writes ``<data_dir>/ml-100k/u.data`` and ``u.user`` in GroupLens' own layout and
verifies both against the SHA-256 of the published files. Sources, in order:

1. GroupLens' archive (``ml-100k.zip``), with a short timeout;
2. the copy of ML-100K bundled in the ``recbole==1.2.1`` wheel on PyPI, fetched with ``pip download``
   (download only, never installed) and converted back to GroupLens' layout byte for byte
   (same rows, same order: only the header line goes and the user file's separator becomes ``|``).

Files are written atomically (temporary file, then rename), so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import secrets
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from privrec.data.dataset import Dataset
from privrec.errors import DataValidationError

__all__ = ["GROUPLENS_ML100K_URL", "ML100K_SHA256", "RECBOLE_REQUIREMENT", "describe", "fetch_movielens_100k"]

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


def fetch_movielens_100k(data_dir: str | os.PathLike, *, timeout: float = 10.0) -> Path:
    """Make sure ``<data_dir>/ml-100k/u.data`` and ``u.user`` exist and match the published SHA-256.

    Files already there and verified are kept; missing ones are fetched (GroupLens first, then the RecBole
    wheel on PyPI). Returns the ``ml-100k`` folder. Raises :class:`DataValidationError` in one line when a
    present file does not verify or when no source works, saying where to put the files by hand.
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
        return target
    raise DataValidationError(
        f"MovieLens 100K must be in {target}; got no copy ({'; '.join(failures)}). Put u.data and u.user from "
        f"ml-100k.zip ({GROUPLENS_ML100K_URL}) into {target} by hand."
    )


# ---------------------------------------------------------------------- sources
def _from_grouplens(timeout: float) -> dict[str, bytes]:
    try:
        with urllib.request.urlopen(GROUPLENS_ML100K_URL, timeout=timeout) as response:  # a fixed https URL
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
    text = str(getattr(exc, "reason", "") or exc).strip().splitlines()
    detail = text[0][:80] if text else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


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
