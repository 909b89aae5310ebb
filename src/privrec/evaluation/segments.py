"""User segments for per-segment metrics, and the rule that keeps small ones out of what is published.

:func:`attribute_segments` gives one mask per value of each attribute, whatever its size.
:func:`published_segments` gives the segments a run may log: a segment with fewer than ``min_users``
evaluated users is never published on its own, so neither its value (a zip code, a rare occupation) nor the
mean accuracy of a handful of users reaches a metric name, a table or a log line.

The rule, per family of segments (the consent groups, or the values of one attribute):

1. A value with fewer than ``min_users`` counted users is *small*. The small values of an attribute are merged
   into one ``<attr>=other`` segment (``other_merged`` if the attribute has a large value named ``other``),
   published when it holds at least ``min_users`` counted users. Consent groups have no ``other``: a small
   one is dropped, an empty one kept (NaN metrics and ``n_users`` 0 expose nobody, and a sweep over opt-out
   rates keeps the same metric names at rate 0).
2. No unpublished remainder of 1 to ``min_users - 1`` users: the overall metrics minus the published segments
   of a family would otherwise give that remainder's mean by subtraction. The remainder is the counted users
   in no published segment of the family (small values whose ``other`` was too small, and users without a
   value). If it is that small and something of the family is published, users without a value join
   ``other`` (when they are fewer than ``min_users``) and, if that is still not enough, the smallest
   published value joins it too; a consent group is dropped instead. Users without a value who are at least
   ``min_users`` stay unpublished, as a remainder of that size may be.

This protects against reading a small group's value or mean off one run's metrics and against subtraction
within one family. It does not protect against combining families (intersections of two attributes) or
several runs. One :class:`~privrec.errors.DataWarning` line says how many segments and users were merged or
dropped: counts only, never a value.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from privrec.errors import ConfigError, DataValidationError, DataWarning
from privrec.evaluation.evaluate import _UNSAFE_KEY_CHARS

if TYPE_CHECKING:
    from privrec.data.dataset import Dataset

__all__ = ["MIN_SEGMENT_USERS", "attribute_segments", "check_min_segment_users", "published_segments"]

#: Default of ``evaluation.min_segment_users``: the fewest evaluated users a published segment may have.
MIN_SEGMENT_USERS = 20


def check_min_segment_users(value: object) -> int:
    """``evaluation.min_segment_users`` as an int; :class:`~privrec.errors.ConfigError` unless it is >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"evaluation.min_segment_users must be a non-negative integer; got {value!r}.")
    return int(value)


def _codes(data: Dataset, attr: str) -> tuple[NDArray[np.intp], NDArray]:
    """Per user, the code of its value of ``attr`` (-1 when missing), and the values in sorted order."""
    columns = data.user_attributes.columns
    if attr not in columns:
        raise ConfigError(
            f"evaluation.segment_by names unknown attribute '{attr}'; columns are {sorted(map(str, columns))}."
        )
    col = data.user_attributes[attr]
    try:
        codes, values = pd.factorize(col, sort=True)
    except TypeError:  # values of mixed, unorderable types
        codes, values = pd.factorize(col, sort=False)
    return np.asarray(codes, dtype=np.intp), np.asarray(values, dtype=object)


def attribute_segments(data: Dataset, attributes: Sequence[str]) -> dict[str, NDArray[np.bool_]]:
    """One boolean mask over all users per value of each attribute, named ``"{attr}={value}"``, of any size.

    Values are in sorted order (insertion order if they cannot be sorted); users with a missing value belong to
    no segment of that attribute. For anything logged use :func:`published_segments`, which keeps small
    segments out.
    """
    if isinstance(attributes, str):
        attributes = (attributes,)
    out: dict[str, NDArray[np.bool_]] = {}
    for attr in attributes:
        codes, values = _codes(data, attr)
        for j, value in enumerate(values):
            out[f"{attr}={value}"] = codes == j
    return out


def published_segments(
    data: Dataset,
    attributes: Sequence[str],
    *,
    groups: Mapping[str, NDArray[np.bool_]] | None = None,
    counted: NDArray[np.bool_] | None = None,
    min_users: int = MIN_SEGMENT_USERS,
) -> dict[str, NDArray[np.bool_]]:
    """The segments that may be published: ``groups`` (e.g. consent groups) and the attribute segments of
    :func:`attribute_segments`, with every segment of fewer than ``min_users`` counted users merged or dropped
    by the rule in this module's docstring.

    ``groups``: name -> boolean mask over all users, one family that is never merged (a small group is
    dropped, one without counted users kept). ``counted``: the users whose results a segment's metrics
    aggregate (the evaluated users, those with test data); default all users. ``min_users=0`` publishes every
    segment, however small. Warns once (:class:`~privrec.errors.DataWarning`, counts only) when anything was
    merged or dropped.
    """
    min_users = check_min_segment_users(min_users)
    if isinstance(attributes, str):
        attributes = (attributes,)
    n = data.n_users
    counted_mask = np.ones(n, dtype=bool) if counted is None else np.asarray(counted)
    if counted_mask.dtype != np.bool_ or counted_mask.shape != (n,):
        raise DataValidationError(
            f"counted must be a boolean mask over all {n} users; got dtype {counted_mask.dtype} and shape "
            f"{counted_mask.shape}."
        )
    tally = _Tally()
    out = _published_groups(dict(groups or {}), counted_mask, min_users, tally)
    for attr in attributes:
        out.update(_published_values(data, attr, counted_mask, min_users, tally))
    if tally.small or tally.secondary:
        warnings.warn(tally.message(min_users), DataWarning, stacklevel=2)
    return out


@dataclass
class _Tally:
    """Counts for the one warning line (never a value)."""

    small: int = 0  # segments below the threshold
    small_users: int = 0  # counted users in them
    merged: int = 0  # of them, merged into a published other
    others: int = 0  # published other segments
    secondary: int = 0  # segments of at least min_users merged or dropped against subtraction

    def message(self, min_users: int) -> str:
        text = (
            f"{self.small} segments with fewer than {min_users} evaluated users (evaluation.min_segment_users) "
            f"are not published on their own ({self.small_users} users): {self.merged} merged into {self.others} "
            f"'other' segments, {self.small - self.merged} dropped."
        )
        if self.secondary:
            text += (
                f" {self.secondary} larger segments were merged or dropped too, so that no smaller group can be "
                "recovered by subtracting published segments from the overall metrics."
            )
        return text


def _published_groups(
    groups: dict[str, NDArray[np.bool_]], counted: NDArray[np.bool_], min_users: int, tally: _Tally
) -> dict[str, NDArray[np.bool_]]:
    """The groups with at least ``min_users`` counted users, minus the smallest of them while the counted users
    they leave out number 1 to ``min_users - 1``."""
    masks = {name: np.asarray(mask) for name, mask in groups.items()}
    for name, mask in masks.items():
        if mask.dtype != np.bool_ or mask.shape != counted.shape:
            raise DataValidationError(
                f"segment '{name}' must be a boolean mask over all {counted.size} users; "
                f"got dtype {mask.dtype} and shape {mask.shape}."
            )
    sizes = {name: int(np.count_nonzero(mask & counted)) for name, mask in masks.items()}
    kept = [name for name in masks if sizes[name] >= min_users or sizes[name] == 0]  # an empty group exposes nobody
    tally.small += len(masks) - len(kept)
    tally.small_users += sum(size for name, size in sizes.items() if name not in kept)
    n_counted = int(np.count_nonzero(counted))
    while nonempty := [name for name in kept if sizes[name]]:  # at most one round per group
        covered = int(np.count_nonzero(np.logical_or.reduce([masks[name] for name in nonempty]) & counted))
        if not 0 < n_counted - covered < min_users:
            break
        kept.remove(min(nonempty, key=sizes.__getitem__))
        tally.secondary += 1
    return {name: masks[name] for name in kept}


def _published_values(
    data: Dataset, attr: str, counted: NDArray[np.bool_], min_users: int, tally: _Tally
) -> dict[str, NDArray[np.bool_]]:
    """The published segments of one attribute: its large values and, when large enough, its ``other``."""
    codes, values = _codes(data, attr)
    present = codes >= 0
    sizes = np.bincount(codes[present & counted], minlength=len(values))
    missing = int(np.count_nonzero(~present & counted))
    large = sizes >= min_users
    in_other = ~large  # per value: merged into other
    n_small = int(np.count_nonzero(in_other))
    tally.small += n_small
    tally.small_users += int(sizes[in_other].sum())
    other_users = int(sizes[in_other].sum())
    join_missing = False  # users without a value join other
    remainder = missing + (other_users if other_users < min_users else 0)  # counted users published nowhere
    if (large.any() or other_users >= min_users) and 0 < remainder < min_users:
        join_missing = missing > 0
        other_users += missing
        if other_users < min_users:  # still too small: the smallest large value joins other (then >= min_users)
            j = int(np.flatnonzero(large)[np.argmin(sizes[large])])
            large[j], in_other[j] = False, True
            other_users += int(sizes[j])
            tally.secondary += 1
    out = {f"{attr}={values[j]}": codes == j for j in np.flatnonzero(large)}
    if other_users >= min_users and (in_other.any() or join_missing):
        mask = np.append(in_other, False)[codes]  # code -1 (no value) picks the appended False
        if join_missing:
            mask |= ~present
        out[f"{attr}={_other_label({_UNSAFE_KEY_CHARS.sub('_', str(v)) for v in values[large]})}"] = mask
        tally.merged += n_small
        tally.others += 1
    return out


def _other_label(taken: set[str]) -> str:
    """``other``, or ``other_merged`` (then with ``_`` appended) when a published value already has that key."""
    label = "other"
    if label in taken:
        label = "other_merged"
    while label in taken:
        label += "_"
    return label
