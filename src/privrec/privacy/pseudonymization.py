"""Pseudonymization: replace external ids by pseudonyms -- the baseline showing that this is not anonymity."""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from privrec.data.dataset import Dataset, Vocabulary
from privrec.errors import ConfigError, PrivacyGuaranteeError
from privrec.privacy.base import PrivacyReport, TransformResult

__all__ = ["Pseudonymization"]

_METHODS = ("keyed_hash", "permutation")
_KEY_ENV = "PRIVREC_PSEUDONYM_KEY"
"""The environment variable a pseudonymisation key is read from by default."""
_KEY_BYTES = 32  # a fresh key: 256 bits from the operating system


@dataclass(frozen=True, kw_only=True)
class Pseudonymization:
    """Replace each external user id (and, with ``items=True``, item id) by a pseudonym.

    Definition. ``method="keyed_hash"``: the pseudonym is the hex HMAC-SHA256 of the id's string form under a
    secret key (RFC 2104; NIST SP 800-107), so the same id always gets the same pseudonym under one key and
    datasets pseudonymised with one key can be joined. ``method="permutation"``: index ``i`` gets label
    ``"p%06d" % pi(i)`` for a uniformly random permutation ``pi`` (items: ``"q..."``); the mapping exists only
    inside this call.

    **The key is a secret and never part of the configuration** (configs are stored with every run). It is
    read at ``apply`` time, kept only in memory for that call, and never stored, logged, pickled or
    reported: from ``key_file`` (a path, relative to the working directory; the file's content, stripped of
    surrounding whitespace, is the key) if given, else from the environment variable named by ``key_env``
    (default ``PRIVREC_PSEUDONYM_KEY``) if it is set and not empty. A ``key`` given in the configuration
    (``privacy.key=...``) is refused with :class:`~privrec.errors.ConfigError`. Without a key, a fresh 256-bit
    key is drawn from the operating system (:func:`secrets.token_bytes`, never from ``rng`` or the seed, so
    knowing the seed does not reveal it) and discarded after the call: **pseudonyms are then not
    reproducible** between runs (every metric is unaffected: pseudonyms only relabel ids). The permutation is
    likewise drawn from an OS-seeded generator, never from ``rng`` (a permutation drawn from the seed could be
    redrawn by anyone who knows it); it takes no key (``key_file`` is refused, ``key_env`` is ignored). The
    report records where the key came from (``groups["key_source"]``: ``file``, ``env`` or ``random``),
    never the key.

    The vocabularies keep their size and index order: index ``i`` is the same person before and after, only
    the label ``Vocabulary.ids[i]`` changes. Interactions, weights, timestamps and user attributes are
    returned unchanged (the same arrays).

    Guarantee: **none against linkage** (unit: the external id label only). This is pseudonymization in the
    sense of GDPR Art. 4(5): the data stay personal data. The behaviour is untouched, so a user is
    re-identified from a few of their interactions and timestamps (Narayanan & Shmatikov, "Robust
    De-anonymization of Large Sparse Datasets", IEEE S&P 2008) or from their quasi-identifiers (Sweeney,
    2002). It only removes the direct identifier; it is the baseline the other treatments are compared to.

    The report is measured on the output: how many users (items) carry a label different from their original
    id, and how many released labels equal any original id (``apply`` raises if that is not 0).
    """

    method: str = "keyed_hash"
    key_file: str | None = None
    key_env: str | None = _KEY_ENV
    items: bool = False
    key: object = field(default=None, repr=False, compare=False)  # refused: secrets never go in a config

    def __post_init__(self) -> None:
        if self.key is not None:
            raise ConfigError(
                "pseudonymization.key must not be given in the configuration (configs are stored with every run); "
                f"got a key (value not shown). Put it in a file and pass privacy.key_file=PATH, or set the "
                f"environment variable {self.key_env if isinstance(self.key_env, str) and self.key_env else _KEY_ENV}."
            )
        if self.method not in _METHODS:
            raise ConfigError(f"pseudonymization.method must be one of {list(_METHODS)}; got {self.method!r}.")
        if self.key_file is not None:
            if not isinstance(self.key_file, (str, os.PathLike)) or not str(self.key_file):
                raise ConfigError(
                    f"pseudonymization.key_file must be a path or null; got a {type(self.key_file).__name__}."
                )
            object.__setattr__(self, "key_file", str(self.key_file))
            if self.method != "keyed_hash":
                raise ConfigError(
                    "pseudonymization.key_file applies only to method='keyed_hash'; got a key file with "
                    f"method={self.method!r}. Remove key_file (the permutation is drawn from the OS)."
                )
            if not Path(self.key_file).expanduser().is_file():
                raise ConfigError(
                    f"pseudonymization.key_file must be an existing file holding the key; got {self.key_file!r}, "
                    "which is not a file."
                )
        if self.key_env is not None and (
            not isinstance(self.key_env, str) or not self.key_env or "=" in self.key_env or "\0" in self.key_env
        ):
            raise ConfigError(
                "pseudonymization.key_env must be the name of an environment variable or null; got "
                f"{self.key_env!r}."
            )
        if not isinstance(self.items, (bool, np.bool_)):
            raise ConfigError(f"pseudonymization.items must be true or false; got {self.items!r}.")

    # -------------------------------------------------------------- the key (read at apply time, never kept)
    def key_source(self) -> str:
        """Where ``apply`` takes its key from: ``"file"``, ``"env"`` or ``"random"`` (never the key itself)."""
        if self.method != "keyed_hash":
            return "random"
        if self.key_file is not None:
            return "file"
        if self.key_env and os.environ.get(self.key_env, "").strip():
            return "env"
        return "random"

    def _secret(self) -> tuple[bytes, str]:
        """The key for this call and its source; a fresh OS-random key when none is configured."""
        source = self.key_source()
        if source == "file":
            assert self.key_file is not None  # key_source() says so
            path = Path(self.key_file).expanduser()
            try:
                secret = path.read_bytes().strip()
            except OSError as error:
                raise ConfigError(
                    f"pseudonymization.key_file must be a readable file; got {self.key_file!r} "
                    f"({error.strerror or type(error).__name__})."
                ) from None
            if not secret:
                raise ConfigError(
                    f"pseudonymization.key_file must hold a non-empty key; got {self.key_file!r}, which holds "
                    "only whitespace. Write the key into it."
                )
            return secret, source
        if source == "env":
            assert self.key_env is not None  # key_source() says so
            return os.environ[self.key_env].strip().encode("utf-8"), source
        return secrets.token_bytes(_KEY_BYTES), source

    # -------------------------------------------------------------- transform
    def apply(self, data: Dataset, *, rng: np.random.Generator) -> TransformResult:
        """Relabel the ids; ``rng`` is accepted and not used (keys and permutations come from the OS)."""
        if self.method == "keyed_hash":
            secret, source = self._secret()
            users = Vocabulary(_keyed_hash(secret, data.users.ids))
            items = Vocabulary(_keyed_hash(secret, data.items.ids)) if self.items else data.items
            del secret
        else:
            source = "random"
            os_rng = np.random.default_rng(secrets.randbits(8 * _KEY_BYTES))
            users = Vocabulary(_labels("p", data.n_users)[os_rng.permutation(data.n_users)])
            items = (Vocabulary(_labels("q", data.n_items)[os_rng.permutation(data.n_items)]) if self.items
                     else data.items)
            del os_rng
        released = data.with_interactions(
            data.user_idx, data.item_idx, data.weight, data.timestamp, users=users, items=items
        )
        report = self.measure(data, released, key_source=source)
        reused = int(report.metrics["ids_reused"])
        if reused:
            raise PrivacyGuaranteeError(
                f"pseudonymization must release no original id; got {reused} released labels equal to original ids. "
                "Use method='keyed_hash', or original ids that do not look like the 'p000123' labels."
            )
        return TransformResult(data=released, report=report)

    def violations(self, original: Dataset, released: Dataset, report: PrivacyReport) -> list[str]:
        """The guarantees ``report`` (``measure(original, released)``) breaks: one ``must ...; got ...`` each."""
        reused = int(report.metrics["ids_reused"])
        return [f"pseudonymization must release no original id; got {reused} released labels equal to original ids"
                ] if reused else []

    def measure(self, original: Dataset, released: Dataset, *, key_source: str | None = None) -> PrivacyReport:
        """Count relabelled users / items and released labels that equal an original id (aggregates only).

        ``key_source`` (``file`` / ``env`` / ``random``; default: what the configuration implies now) is
        recorded as the one category of ``groups["key_source"]``.
        """
        users_changed, users_reused = _compare_ids(original.users, released.users)
        items_changed, items_reused = _compare_ids(original.items, released.items)
        metrics = {
            "users_pseudonymized": float(users_changed),
            "items_pseudonymized": float(items_changed),
            "ids_reused": float(users_reused + (items_reused if self.items else 0)),
            "interactions_changed": float(_n_rows_changed(original, released)),
        }
        source = key_source or self.key_source()
        reproducible = ("; pseudonyms are not reproducible (a fresh key from the OS)" if source == "random"
                        and self.method == "keyed_hash" else "")
        return PrivacyReport(
            transform="pseudonymization",
            guarantee=f"None against linkage: external {'user and item' if self.items else 'user'} ids are replaced "
            f"({self.method}, key from {source}{reproducible}), but every interaction, timestamp and attribute is "
            "released unchanged, so users remain re-identifiable from their behaviour (unit: the id label only).",
            metrics=metrics,
            groups={"key_source": {source: {"users_pseudonymized": metrics["users_pseudonymized"],
                                            "items_pseudonymized": metrics["items_pseudonymized"]}}},
        )


def _as_str(ids: NDArray) -> NDArray[np.object_]:
    """Each id's string form (what it looks like in a file), as an object array."""
    return np.fromiter(map(str, np.asarray(ids).tolist()), dtype=object, count=len(ids))


def _keyed_hash(secret: bytes, ids: NDArray) -> NDArray[np.object_]:
    """Hex HMAC-SHA256 of each id's UTF-8 string form.

    There is no vectorised HMAC in numpy or hashlib: this is one C call (OpenSSL's one-shot HMAC) per
    vocabulary entry, driven by ``map`` -- per user or item, never per interaction.
    """
    messages = map(str.encode, _as_str(ids).tolist())
    digests = map(partial(hmac.digest, secret, digest="sha256"), messages)
    return np.fromiter(map(bytes.hex, digests), dtype=object, count=len(ids))


def _labels(prefix: str, n: int) -> NDArray[np.object_]:
    """``prefix`` + zero-padded ``0..n-1`` (at least six digits), e.g. ``p000123``."""
    if n == 0:
        return np.empty(0, dtype=object)
    width = max(6, len(str(n - 1)))
    return np.char.add(prefix, np.char.zfill(np.arange(n).astype(str), width)).astype(object)


def _compare_ids(before: Vocabulary, after: Vocabulary) -> tuple[int, int]:
    """(indices whose label changed, released labels equal to any original id), compared as strings."""
    if after is before:
        return 0, len(before)
    old, new = _as_str(before.ids), _as_str(after.ids)
    changed = int(np.count_nonzero(old != new)) if len(old) == len(new) else max(len(old), len(new))
    return changed, len(set(old.tolist()).intersection(new.tolist()))  # released labels are unique


def _n_rows_changed(original: Dataset, released: Dataset) -> int:
    if original.n_interactions != released.n_interactions:
        return max(original.n_interactions, released.n_interactions)
    diff = (original.user_idx != released.user_idx) | (original.item_idx != released.item_idx)
    diff |= original.weight != released.weight
    if (original.timestamp is None) != (released.timestamp is None):
        return original.n_interactions
    if original.timestamp is not None:
        diff |= original.timestamp != released.timestamp
    return int(np.count_nonzero(diff))
