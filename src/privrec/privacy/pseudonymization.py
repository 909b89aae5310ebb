"""Pseudonymization: replace external ids by pseudonyms -- the baseline showing that this is not anonymity."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from numpy.typing import NDArray

from privrec.data.dataset import Dataset, Vocabulary
from privrec.errors import ConfigError, PrivacyGuaranteeError
from privrec.privacy.base import PrivacyReport, TransformResult

__all__ = ["Pseudonymization"]

_METHODS = ("keyed_hash", "permutation")


@dataclass(frozen=True, kw_only=True)
class Pseudonymization:
    """Replace each external user id (and, with ``items=True``, item id) by a pseudonym.

    Definition. ``method="keyed_hash"``: the pseudonym is the hex HMAC-SHA256 of the id's string form under
    ``key`` (RFC 2104; NIST SP 800-107), so the same id always gets the same pseudonym under one key and
    datasets pseudonymised with one key can be joined. When ``key`` is ``None`` a 256-bit key is drawn from
    ``rng`` and discarded (it is never stored, logged or reported) -- but anyone who knows the seed of that
    stream can redraw it; pass a secret ``key`` for a real deployment. ``method="permutation"``: index ``i``
    gets label ``"p%06d" % pi(i)`` for a uniformly random permutation ``pi`` (items: ``"q..."``); the mapping
    exists only inside this call. The key is kept out of ``repr`` so it does not end up in logs.

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
    key: str | None = field(default=None, repr=False)
    items: bool = False

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ConfigError(f"pseudonymization.method must be one of {list(_METHODS)}; got {self.method!r}.")
        if self.key is not None and (not isinstance(self.key, str) or not self.key):
            raise ConfigError(
                f"pseudonymization.key must be a non-empty string or null; got a {type(self.key).__name__} "
                "(value not shown)."
            )
        if self.key is not None and self.method != "keyed_hash":
            raise ConfigError(
                f"pseudonymization.key applies only to method='keyed_hash'; got a key with method={self.method!r}."
            )
        if not isinstance(self.items, (bool, np.bool_)):
            raise ConfigError(f"pseudonymization.items must be true or false; got {self.items!r}.")

    def apply(self, data: Dataset, *, rng: np.random.Generator) -> TransformResult:
        if self.method == "keyed_hash":
            secret = self.key.encode("utf-8") if self.key is not None else rng.bytes(32)
            users = Vocabulary(_keyed_hash(secret, data.users.ids))
            items = Vocabulary(_keyed_hash(secret, data.items.ids)) if self.items else data.items
        else:
            users = Vocabulary(_labels("p", data.n_users)[rng.permutation(data.n_users)])
            items = Vocabulary(_labels("q", data.n_items)[rng.permutation(data.n_items)]) if self.items else data.items
        released = data.with_interactions(
            data.user_idx, data.item_idx, data.weight, data.timestamp, users=users, items=items
        )
        report = self.measure(data, released)
        reused = int(report.metrics["ids_reused"])
        if reused:
            raise PrivacyGuaranteeError(
                f"pseudonymization must release no original id; got {reused} released labels equal to original ids. "
                "Use method='keyed_hash', or original ids that do not look like the 'p000123' labels."
            )
        return TransformResult(data=released, report=report)

    def measure(self, original: Dataset, released: Dataset) -> PrivacyReport:
        """Count relabelled users / items and released labels that equal an original id (aggregates only)."""
        users_changed, users_reused = _compare_ids(original.users, released.users)
        items_changed, items_reused = _compare_ids(original.items, released.items)
        metrics = {
            "users_pseudonymized": float(users_changed),
            "items_pseudonymized": float(items_changed),
            "ids_reused": float(users_reused + (items_reused if self.items else 0)),
            "interactions_changed": float(_n_rows_changed(original, released)),
        }
        return PrivacyReport(
            transform="pseudonymization",
            guarantee=f"None against linkage: external {'user and item' if self.items else 'user'} ids are replaced "
            f"({self.method}), but every interaction, timestamp and attribute is released unchanged, so users "
            "remain re-identifiable from their behaviour (unit: the id label only).",
            metrics=metrics,
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
