"""What a loader read, as digests: :class:`Source` per input, :class:`LoadResult` for a whole load.

A run's ``data.sha256`` tag is :attr:`LoadResult.sha256`, the SHA-256 of a manifest with one line
``"<sha256 of the input>  <label>\\n"`` per input, in the order the loader reads them - the format of
``sha256sum``, so for MovieLens 100K ``cd <data_dir> && sha256sum ml-100k/u.data ml-100k/u.user | sha256sum``
gives the same digest. Each file is hashed incrementally while the parser reads it (the bytes hashed are the
bytes parsed, read once), so one changed character in a rating file changes it. Inputs per loader:

- MovieLens 100K: ``ml-100k/u.data`` then ``ml-100k/u.user``; MovieLens 1M: ``ml-1m/ratings.dat`` then
  ``ml-1m/users.dat`` (labels are paths relative to ``data_dir``, so moving the folder keeps the digest).
- Delimited: ``interactions`` (``dataset.path``), then ``user_attributes`` when ``user_attributes_path`` is set
  (labels are roles, not paths: the digest is about content, wherever the files are).
- Synthetic (nothing is read): ``synthetic/parameters``, the SHA-256 of the generator's parameters as sorted
  compact JSON, then ``synthetic/output``, :meth:`Dataset.checksum` of what it generated - the same parameters
  with a changed generator give a different digest.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from privrec.data.dataset import Dataset

__all__ = ["LoadResult", "Source", "manifest_sha256"]


@dataclass(frozen=True)
class Source:
    """One input of a load: its ``label`` (a relative path or a role, never a record value) and SHA-256."""

    label: str
    sha256: str


def manifest_sha256(sources: tuple[Source, ...]) -> str:
    """SHA-256 of the ``sha256sum``-style manifest of ``sources`` (one ``"<sha256>  <label>\\n"`` each, in order)."""
    return hashlib.sha256("".join(f"{s.sha256}  {s.label}\n" for s in sources).encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class LoadResult:
    """A loaded dataset and the digests of the inputs it was read from (see this module's docstring)."""

    data: Dataset
    sources: tuple[Source, ...]

    @property
    def sha256(self) -> str:
        """The raw-input digest recorded as ``data.sha256``."""
        return manifest_sha256(self.sources)


class _HashingReader(io.RawIOBase):
    """A raw binary reader that feeds every byte it returns into a SHA-256 (wrap it in ``io.BufferedReader``)."""

    def __init__(self, raw: io.RawIOBase) -> None:
        super().__init__()
        self._raw = raw
        self._hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._raw.readinto(buffer) or 0
        if n:
            self._hash.update(memoryview(buffer)[:n])
        return n

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
