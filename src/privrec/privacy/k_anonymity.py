"""k-anonymity of the user-attribute table by Mondrian multidimensional partitioning."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, DataValidationError, PrivacyGuaranteeError
from privrec.privacy.base import PrivacyReport, TransformResult

__all__ = ["KAnonymity"]

_GUARANTEE = (
    "Every released quasi-identifier tuple (unit: a user's attribute row) is shared by at least {k} users{ldiv} "
    "(Mondrian, LeFevre et al. 2006); interactions are untouched and can still re-identify users{homog}."
)


@dataclass(frozen=True, kw_only=True)
class KAnonymity:
    """k-anonymity of the user attributes by Mondrian multidimensional partitioning.

    Definition (Samarati & Sweeney 1998; Sweeney 2002): a released table is *k-anonymous* on its
    quasi-identifiers when every combination of released quasi-identifier values is shared by at least ``k``
    rows, so an adversary who knows a user's quasi-identifiers can narrow them down to no fewer than ``k``
    candidates. Privacy unit: **the attribute row of a user** (one row per user index).

    Algorithm: Mondrian (LeFevre, DeWitt & Ramakrishnan, "Mondrian Multidimensional K-Anonymity", ICDE 2006).
    The table is split recursively: each partition is cut on the quasi-identifier with the widest normalised
    range, at its median, as long as both halves keep at least ``k`` users (and ``l`` distinct sensitive
    values when ``l_diversity`` is set), trying narrower attributes when the widest cannot be cut; a partition
    that no cut can split becomes an equivalence class. Numeric attributes (``schema.numeric``) are ordered by
    value, their normalised range is value range / attribute range. Categorical ones are ordered by frequency
    (then lexically), their normalised range is their range in that order / (number of values - 1).
    Attributes whose ``schema.hierarchies`` entry is ``"prefix"`` (zip codes) are ordered lexically, their
    normalised range is the share of the domain under the partition's longest common prefix (the range in
    LeFevre's hierarchy sense), and they are cut at the boundary of the next character's group nearest the
    median, so halves keep whole prefixes. ``strict=True`` is strict partitioning (users equal to the median
    go to the same side, whichever balances the halves better; classes never overlap); ``strict=False`` is
    LeFevre's relaxed partitioning (the cut is at the median position, so halves are balanced, but released
    generalisations of different classes may overlap). The recursion runs one level at a time, vectorised
    over all partitions of the level (see ``_mondrian``): about 3-5 s for a million users with four
    quasi-identifiers on a 2-core machine.

    Each class then releases, per quasi-identifier: numbers as ``"[lo-hi]"`` (or the value itself when the
    class holds one value), categories as the sorted set of values in the class joined by ``"|"``, prefix
    attributes as the longest common prefix padded with ``"*"`` to the longest value (``"021**"``). Released
    quasi-identifier columns are pandas categoricals of these strings. Other columns and all interactions are
    untouched; vocabularies and the schema are kept. Quasi-identifiers must have no missing values.

    Population: every user index is partitioned, users without interactions included (e.g. opted out by an
    earlier consent step: in privrec's consent model they withhold their behaviour, not their attribute row).
    The experiment's treated data and ``privrec release`` (``users.tsv``) hold exactly these rows, every one
    except suppressed ones, so the reported ``k_achieved`` is the k of the published table.

    ``suppression``: a share of users whose attribute row may be suppressed (released all-NA) to isolate
    outliers: when no ordinary cut of a partition is allowed but a median cut leaves fewer than ``k`` users on
    one side and a valid partition on the other, that side is suppressed if this lowers the partition's
    (estimated) NCP, best gain per suppressed user first, while the total stays within
    ``floor(suppression * n_users)``. It applies to strict partitioning (a relaxed cut never leaves fewer
    than ``k`` users on a side). That estimate is local (one partition, one attribute's range), so the
    table is also partitioned without suppression and **suppression is kept only if it lowers the reported
    loss**: the ``ncp`` of the report, measured on each output. Otherwise nothing is suppressed (the output is
    that of ``suppression=0``). NCP is the loss suppression is chosen for; ``discernibility`` is reported as a
    second view and charges ``n_users`` per suppressed row, so suppression nearly always raises it.

    ``l_diversity``: also require *distinct l-diversity* (Machanavajjhala et al., "l-Diversity: Privacy
    Beyond k-Anonymity", ICDE 2006): every class holds at least ``l`` distinct non-missing values of
    ``sensitive`` (default: the first of ``schema.sensitive`` that is not a quasi-identifier).

    The report is measured on the output by re-grouping the released quasi-identifier tuples:
    ``k_achieved`` (smallest class among non-suppressed users), ``n_classes``, ``users_suppressed``,
    ``mean_class_size``, ``ncp`` (normalised certainty penalty, Xu et al., KDD 2006: numeric range width /
    attribute range, categorical ``(|set| - 1) / (|domain| - 1)``, prefix share of masked characters,
    1 for a suppressed row; averaged over attributes and users), ``discernibility`` (Bayardo & Agrawal 2005:
    sum of squared class sizes + suppressed users * n_users), and ``l_achieved`` when a sensitive attribute
    is in use. Achieving less than requested raises :class:`~privrec.errors.PrivacyGuaranteeError`.

    What it does **not** protect: interactions are untouched, and behaviour alone re-identifies users
    (Narayanan & Shmatikov 2008) -- k-anonymity of attributes says nothing about the interactions, see
    profile k-anonymity (``privrec.privacy.microaggregation``) for that; without ``l_diversity`` a class may
    be homogeneous in a sensitive attribute (homogeneity attack, Machanavajjhala et al. 2006), and even with
    it skewed or semantically close values leak (Li et al. 2007, t-closeness); the partition is a
    deterministic function of the whole table (``rng`` is not used), so an adversary who knows the algorithm
    and other users' rows may narrow a user down further (minimality attacks, Wong et al. 2007).
    """

    k: int = 5
    quasi_identifiers: tuple[str, ...] | None = None
    suppression: float = 0.0
    l_diversity: int | None = None
    sensitive: str | None = None
    strict: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)):
            raise ConfigError(f"k_anonymity.k must be an integer >= 2; got {_show(self.k)}.")
        if self.k < 2:
            raise ConfigError(f"k_anonymity.k must be >= 2; got {_show(self.k)}.")
        object.__setattr__(self, "k", int(self.k))
        if self.quasi_identifiers is not None:
            qis = (self.quasi_identifiers,) if isinstance(self.quasi_identifiers, str) else self.quasi_identifiers
            qis = tuple(qis)
            if not qis or not all(isinstance(q, str) and q for q in qis):
                raise ConfigError(
                    "k_anonymity.quasi_identifiers must be None or a non-empty list of column names; "
                    f"got {len(qis)} name(s) of which {sum(not (isinstance(q, str) and q) for q in qis)} invalid."
                )
            if len(set(qis)) != len(qis):
                raise ConfigError(
                    f"k_anonymity.quasi_identifiers must not repeat a name; got {len(qis) - len(set(qis))} repeat(s)."
                )
            object.__setattr__(self, "quasi_identifiers", qis)
        s = self.suppression
        if isinstance(s, bool) or not isinstance(s, (int, float, np.floating)) or not (0 <= s < 1):
            raise ConfigError(f"k_anonymity.suppression must be in [0, 1); got {_show(s)}.")
        object.__setattr__(self, "suppression", float(s))
        if self.l_diversity is not None:
            ld = self.l_diversity
            if isinstance(ld, bool) or not isinstance(ld, (int, np.integer)) or ld < 2:
                raise ConfigError(f"k_anonymity.l_diversity must be None or an integer >= 2; got {_show(ld)}.")
            object.__setattr__(self, "l_diversity", int(ld))
        if self.sensitive is not None and not (isinstance(self.sensitive, str) and self.sensitive):
            raise ConfigError(f"k_anonymity.sensitive must be None or a column name; got {self.sensitive!r}.")
        if self.sensitive is not None and self.sensitive in (self.quasi_identifiers or ()):
            raise ConfigError(
                f"k_anonymity.sensitive must not be a quasi-identifier; got {self.sensitive!r}. "
                "Name a sensitive attribute that is released as is."
            )
        if not isinstance(self.strict, (bool, np.bool_)):
            raise ConfigError(f"k_anonymity.strict must be true or false; got {self.strict!r}.")
        object.__setattr__(self, "strict", bool(self.strict))

    # -------------------------------------------------------------- configuration against data
    def _resolve(self, data: Dataset) -> tuple[tuple[str, ...], str | None]:
        """Quasi-identifiers and sensitive attribute for ``data`` (validated)."""
        columns = data.user_attributes.columns
        qis = self.quasi_identifiers if self.quasi_identifiers is not None else data.schema.quasi_identifiers
        if not qis:
            raise ConfigError(
                "k_anonymity.quasi_identifiers must name at least one attribute; got none, and the dataset "
                "schema names none. Pass quasi_identifiers=[...]."
            )
        missing = [q for q in qis if q not in columns]
        if missing:
            raise ConfigError(
                f"k_anonymity.quasi_identifiers must be user-attribute columns; got {len(missing)} that are not: "
                f"{sorted(missing)}; columns are {sorted(map(str, columns))}."
            )
        sensitive = self.sensitive
        if sensitive is None and self.l_diversity is not None:
            sensitive = next((s for s in data.schema.sensitive if s not in qis), None)
            if sensitive is None:
                raise ConfigError(
                    "k_anonymity.sensitive must name the attribute for l-diversity; got None, and the schema "
                    "names no sensitive attribute outside the quasi-identifiers. Pass sensitive=<column>."
                )
        if sensitive is not None:
            if sensitive in qis:
                raise ConfigError(
                    f"k_anonymity.sensitive must not be a quasi-identifier; got {sensitive!r}. "
                    "Name a sensitive attribute that is released as is."
                )
            if sensitive not in columns:
                raise ConfigError(
                    f"k_anonymity.sensitive must be a user-attribute column; got {sensitive!r}; "
                    f"columns are {sorted(map(str, columns))}."
                )
        return tuple(qis), sensitive

    def _kind(self, data: Dataset, column: str) -> str:
        if column in data.schema.numeric:
            return "numeric"
        if dict(data.schema.hierarchies).get(column) == "prefix":
            return "prefix"
        return "categorical"

    # -------------------------------------------------------------- transform
    def apply(self, data: Dataset, *, rng: np.random.Generator) -> TransformResult:
        """Release a k-anonymous user-attribute table (deterministic: ``rng`` is accepted and not used)."""
        qis, sensitive = self._resolve(data)
        n = data.n_users
        if self.k > n:
            raise PrivacyGuaranteeError(f"k_anonymity.k must be <= the number of users ({n}); got {self.k}. Lower k.")
        attrs = data.user_attributes
        encoded = [_encode(attrs[q], q, self._kind(data, q)) for q in qis]
        sens, n_sens = None, 0
        if self.l_diversity is not None:
            sens, n_sens = _encode_sensitive(attrs[sensitive])
            present = int(np.count_nonzero(np.bincount(sens[sens >= 0], minlength=n_sens)))
            if present < self.l_diversity:
                raise PrivacyGuaranteeError(
                    f"k_anonymity.l_diversity must be <= the number of distinct values of {sensitive!r} "
                    f"({present}); got {self.l_diversity}. Lower l_diversity or choose another sensitive attribute."
                )
        budget = int(np.floor(self.suppression * n + 1e-9))

        def partition(budget: int) -> tuple[Dataset, PrivacyReport]:
            rows, sizes, suppressed = _mondrian(
                encoded, k=self.k, strict=self.strict, sens=sens, n_sens=n_sens, l=self.l_diversity or 0,
                budget=budget,
            )
            released = _release(data, qis, encoded, rows=rows, sizes=sizes, suppressed=suppressed)
            return released, self.measure(data, released)

        released, report = partition(budget)
        if report.metrics["users_suppressed"] > 0:
            # Mondrian chooses suppression with a local NCP estimate; keep it only if the NCP it reports is lower.
            plain, plain_report = partition(0)
            if not report.metrics["ncp"] < plain_report.metrics["ncp"]:
                released, report = plain, plain_report
        problems = self.violations(data, released, report)
        if problems:
            raise PrivacyGuaranteeError(f"{problems[0]}. This is a bug: please report it.")
        return TransformResult(data=released, report=report, withheld=None)

    def violations(self, original: Dataset, released: Dataset, report: PrivacyReport) -> list[str]:
        """The guarantees ``report`` (``measure(original, released)``) breaks: one ``must ...; got ...`` each."""
        achieved = report.metrics
        budget = int(np.floor(self.suppression * released.n_users + 1e-9))
        out = []
        if achieved["k_achieved"] < self.k:
            out.append(f"k_anonymity output must have classes of >= {self.k} users; got {int(achieved['k_achieved'])}")
        if self.l_diversity is not None and achieved["l_achieved"] < self.l_diversity:
            out.append(f"k_anonymity output must be {self.l_diversity}-diverse; got {int(achieved['l_achieved'])}")
        if achieved["users_suppressed"] > budget:
            out.append(f"k_anonymity output must suppress <= {budget} users; got {int(achieved['users_suppressed'])}")
        return out

    # -------------------------------------------------------------- measurement
    def measure(self, original: Dataset, released: Dataset) -> PrivacyReport:
        """Measure the released attribute table by re-grouping its quasi-identifier tuples (aggregates only).

        A row is suppressed when all its released quasi-identifiers are missing; classes are the distinct
        released quasi-identifier tuples among the other rows.
        """
        qis, sensitive = self._resolve(original)
        n = released.n_users
        rel = released.user_attributes
        codes = []
        ncp = np.zeros(n, dtype=np.float64)
        for q in qis:
            c, labels = _categories(rel[q])
            codes.append(c)
            penalty = _penalty(labels, original.user_attributes[q], self._kind(original, q))
            ncp += np.where(c >= 0, penalty[np.maximum(c, 0)], 1.0)
        ncp /= len(qis)
        suppressed = np.logical_and.reduce([c < 0 for c in codes])
        kept = ~suppressed
        key = _combine([c[kept] + 1 for c in codes])
        class_keys, sizes = np.unique(key, return_counts=True)
        n_kept, n_cls = len(key), len(sizes)
        n_supp = n - n_kept
        metrics = {
            "k_achieved": float(sizes.min()) if n_cls else 0.0,
            "n_classes": float(n_cls),
            "users_suppressed": float(n_supp),
            "share_users_suppressed": float(n_supp / max(1, n)),
            "mean_class_size": float(n_kept / n_cls) if n_cls else 0.0,
            "ncp": float(ncp.mean()) if n else 0.0,
            "discernibility": float(np.sum(sizes.astype(np.float64) ** 2) + float(n_supp) * n),
        }
        class_of_kept = np.searchsorted(class_keys, key)
        if sensitive is not None:
            s, _ = _categories(rel[sensitive])
            s_kept = s[kept].astype(np.int64)
            ok = s_kept >= 0
            pairs = np.unique(class_of_kept[ok] * (int(s.max()) + 2) + s_kept[ok])
            distinct = np.bincount(pairs // (int(s.max()) + 2), minlength=n_cls)
            metrics["l_achieved"] = float(distinct.min()) if n_cls else 0.0
        groups = {}
        if original.schema.sensitive:
            class_size = np.zeros(n, dtype=np.float64)
            class_size[kept] = sizes[class_of_kept]
            groups = {a: _groups(original.user_attributes[a], suppressed, ncp, class_size)
                      for a in original.schema.sensitive if a in original.user_attributes.columns}
        ldiv = f" with >= {self.l_diversity} distinct values of {sensitive!r}" if self.l_diversity else ""
        homog = "" if self.l_diversity else "; a class may share one sensitive value (homogeneity)"
        return PrivacyReport(
            transform="k_anonymity",
            guarantee=_GUARANTEE.format(k=self.k, ldiv=ldiv, homog=homog),
            metrics=metrics,
            groups=groups,
        )


def _release(data: Dataset, qis: tuple[str, ...], encoded: list[_Encoded], *, rows: NDArray[np.int64],
             sizes: NDArray[np.int64], suppressed: NDArray[np.bool_]) -> Dataset:
    """``data`` with the generalised attribute table of a partition (rows grouped by class, class sizes,
    suppressed classes): quasi-identifiers generalised per class, every column of a suppressed row blanked."""
    n = data.n_users
    attrs = data.user_attributes
    class_of_row = np.empty(n, dtype=np.int64)
    class_of_row[rows] = np.repeat(np.arange(len(sizes)), sizes)
    supp_row = np.zeros(n, dtype=bool)
    supp_row[rows] = np.repeat(suppressed, sizes)
    bounds = np.cumsum(sizes) - sizes
    columns: dict[str, pd.Series] = {}
    for col in attrs.columns:
        if col in qis:
            enc = encoded[qis.index(col)]
            labels, label_of_class = _generalize(enc, enc.codes[rows], bounds)
            codes = label_of_class[class_of_row]
            codes[supp_row] = -1
            columns[col] = pd.Series(pd.Categorical.from_codes(codes, categories=labels))
        else:
            columns[col] = _blank(attrs[col], supp_row)
    return replace(data, user_attributes=pd.DataFrame(columns, index=pd.RangeIndex(n)))


def _show(value: object) -> str:
    """``repr`` of a configured value, numpy scalars shown as plain Python numbers."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


# ====================================================================== encoding
@dataclass(frozen=True, eq=False)
class _Encoded:
    """One quasi-identifier as integer codes in split order (0 .. n_values - 1)."""

    kind: str  # "numeric" | "categorical" | "prefix"
    codes: NDArray[np.int64]  # per user
    values: NDArray  # per code: numbers (numeric) or strings, in code order
    scale: NDArray[np.float64]  # per code: normalised position in [0, 1]
    # prefix only: first / last code of the group of codes sharing the first j characters, shape (width + 1, n)
    group_start: NDArray[np.int64] | None = None
    group_end: NDArray[np.int64] | None = None

    @property
    def n_values(self) -> int:
        return len(self.values)

    @property
    def groups(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``(group_start, group_end)`` (prefix only)."""
        assert self.group_start is not None and self.group_end is not None, "only prefix attributes have groups"
        return self.group_start, self.group_end

    def common_prefix(self, lo: NDArray, hi: NDArray) -> NDArray[np.int64]:
        """Length of the longest common prefix of the values of codes ``lo`` <= ``hi`` (prefix only)."""
        group_start, _ = self.groups
        return (group_start[1:, lo] == group_start[1:, hi]).sum(axis=0)

    def width(self, lo: NDArray, hi: NDArray) -> NDArray[np.float64]:
        """Normalised range of partitions spanning codes ``lo`` .. ``hi``, in [0, 1].

        Numeric: value range / attribute range. Categorical: range in split order / (n_values - 1). Prefix:
        the share of the domain under the longest common prefix (LeFevre's normalised range in a hierarchy).
        """
        if self.kind != "prefix":
            return self.scale[hi] - self.scale[lo]
        if self.n_values < 2:
            return np.zeros(len(lo))
        depth = self.common_prefix(lo, hi)
        group_start, group_end = self.groups
        return (group_end[depth, lo] - group_start[depth, lo]) / (self.n_values - 1)

    def thresholds(self, lo: NDArray, hi: NDArray, med: NDArray) -> tuple[NDArray, NDArray]:
        """Largest code kept on the left by the two median cuts: ``<= median`` and ``< median``.

        Prefix attributes cut at the boundary of the next character's group, so halves keep whole prefixes.
        """
        if self.kind != "prefix":
            return med, med - 1
        group_start, group_end = self.groups
        depth = np.minimum(self.common_prefix(lo, hi) + 1, group_start.shape[0] - 1)
        return group_end[depth, med], group_start[depth, med] - 1


def _encode(column: pd.Series, name: str, kind: str) -> _Encoded:
    missing = int(column.isna().sum())
    if missing:
        raise DataValidationError(
            f"k_anonymity quasi-identifier {name!r} must have no missing values; got {missing}. "
            "Impute or drop them, or leave the attribute out of quasi_identifiers."
        )
    if kind == "numeric":
        num = pd.to_numeric(column, errors="coerce")
        if pd.api.types.is_bool_dtype(num) or not pd.api.types.is_numeric_dtype(num):
            bad = len(column)
        else:
            bad = int(num.isna().sum())
            if not bad and pd.api.types.is_float_dtype(num):
                bad = int((~np.isfinite(num.to_numpy(dtype=np.float64))).sum())
        if bad:
            raise DataValidationError(
                f"k_anonymity numeric quasi-identifier {name!r} must hold finite numbers; got {bad} that are not. "
                "Clean the column or remove it from schema.numeric."
            )
        arr = num.to_numpy(dtype=np.int64 if pd.api.types.is_integer_dtype(num) else np.float64)
        values, codes = _sorted_codes(arr)
        span = float(values[-1]) - float(values[0])
        scale = (values.astype(np.float64) - float(values[0])) / span if span > 0 else np.zeros(len(values))
        return _Encoded(kind, codes, values, scale)
    raw, uniques = _categories(column)
    strings = np.array([str(u) for u in uniques.to_numpy(dtype=object)], dtype=object)
    if kind == "prefix":
        order = np.argsort(strings.astype(str), kind="stable")
    else:  # most frequent first, then lexical
        counts = np.bincount(raw, minlength=len(uniques))
        order = np.lexsort((strings.astype(str), -counts))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    values = strings[order]
    n_values = len(values)
    scale = np.arange(n_values, dtype=np.float64) / (n_values - 1) if n_values > 1 else np.zeros(n_values)
    group_start = group_end = None
    if kind == "prefix":
        group_start, group_end = _prefix_groups(values)
    return _Encoded(kind, rank[raw], values, scale, group_start, group_end)


def _sorted_codes(arr: NDArray) -> tuple[NDArray, NDArray[np.int64]]:
    """Sorted distinct values of ``arr`` and the code (rank) of each element."""
    if arr.dtype.kind == "i" and len(arr):
        low = int(arr.min())
        span = int(arr.max()) - low
        if span <= 4 * len(arr) + 1024:  # counting, O(n)
            present = np.bincount(arr - low, minlength=span + 1) > 0
            table = np.cumsum(present) - 1
            return np.flatnonzero(present) + low, table[arr - low]
    values, codes = np.unique(arr, return_inverse=True)
    return values, codes.ravel().astype(np.int64)


def _prefix_groups(values: NDArray) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For lexically sorted strings: first and last index of the run sharing their first j characters."""
    n_values = len(values)
    width = max(1, max((len(v) for v in values), default=1))
    chars = np.array(values.astype(str), dtype=f"<U{width}").view(np.uint32).reshape(n_values, width)
    idx = np.arange(n_values)
    starts = np.zeros((width + 1, n_values), dtype=np.int64)
    ends = np.full((width + 1, n_values), n_values - 1, dtype=np.int64)
    differs = np.logical_or.accumulate(chars[1:] != chars[:-1], axis=1)  # (n-1, width)
    for j in range(1, width + 1):
        new = np.ones(n_values, dtype=bool)
        new[1:] = differs[:, j - 1]
        starts[j] = np.maximum.accumulate(np.where(new, idx, 0))
        last = np.ones(n_values, dtype=bool)
        last[:-1] = new[1:]
        ends[j] = np.minimum.accumulate(np.where(last, idx, n_values - 1)[::-1])[::-1]
    return starts, ends


def _categories(column: pd.Series) -> tuple[NDArray[np.int64], pd.Index]:
    """Integer codes (-1 for missing) and the distinct values of a column (fast path for categoricals)."""
    cat = column.array if isinstance(column.dtype, pd.CategoricalDtype) else pd.Categorical(column)
    return np.asarray(cat.codes, dtype=np.int64), cat.categories


def _encode_sensitive(column: pd.Series) -> tuple[NDArray[np.int64], int]:
    codes, uniques = _categories(column)
    return codes, len(uniques)


# ====================================================================== Mondrian
_ROW_MASK = (1 << 32) - 1


def _mondrian(
    dims: list[_Encoded],
    *,
    k: int,
    strict: bool,
    sens: NDArray[np.int64] | None,
    n_sens: int,
    l: int,  # noqa: E741 - the literature's name
    budget: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """Mondrian partitioning, one recursion level at a time, vectorised over all partitions of a level.

    Every dimension keeps the active rows sorted by (partition, code), packed as ``code << 32 | row``;
    partitions are contiguous segments, the same in every dimension. A level reads each partition's range
    and median in every dimension at its segment's ends (O(partitions)), counts the rows on each side of the
    median cuts with ``searchsorted`` on (partition, code) keys, picks the widest dimension whose cut is
    allowed, then stably moves each segment's left rows before its right rows in every dimension (O(rows): a
    gather of every row's side and two masked copies), and drops the finished partitions. Dimensions in which
    no partition has any range left are dropped too. Python work is per level and dimension, never per
    partition or row. Returns the rows grouped by class, the class sizes and which classes are suppressed.
    """
    n = len(dims[0].codes)
    if n >= 2**32:
        raise DataValidationError(f"k_anonymity supports fewer than 2**32 users; got {n}.")
    rows_all = np.arange(n, dtype=np.int64)
    packed: dict[int, NDArray[np.int64]] = {
        d: np.sort((e.codes.astype(np.int64) << 32) | rows_all) for d, e in enumerate(dims) if e.n_values > 1
    }
    alive = list(packed)
    if not alive:  # every quasi-identifier is constant: one class
        return rows_all, np.array([n], dtype=np.int64), np.zeros(1, dtype=bool)
    starts = np.zeros(1, dtype=np.int64)
    sizes = np.array([n], dtype=np.int64)
    left_row = np.ones(n, dtype=bool)
    done_rows: list[NDArray[np.int64]] = []
    done_sizes: list[NDArray[np.int64]] = []
    done_supp: list[NDArray[np.bool_]] = []
    budget_left = int(budget)

    while True:
        n_part = len(starts)
        m = int(starts[-1] + sizes[-1])
        ends = starts + sizes
        ar = np.arange(n_part, dtype=np.int64)
        lo = {d: packed[d][starts] >> 32 for d in alive}
        hi = {d: packed[d][ends - 1] >> 32 for d in alive}
        widths = {d: dims[d].width(lo[d], hi[d]) for d in alive}
        still = [d for d in alive if widths[d].max() > 0]
        if not still:  # no partition has any range left in any dimension
            done_rows.append(packed[alive[0]] & _ROW_MASK)
            done_sizes.append(sizes)
            done_supp.append(np.zeros(n_part, dtype=bool))
            break
        for d in alive:
            if d not in still:
                del packed[d]
        alive = still
        n_dims = len(alive)
        allow_supp = strict and budget_left > 0
        cut = np.zeros((n_dims, n_part), dtype=np.int64)
        ok = np.zeros((n_dims, n_part), dtype=bool)
        # suppression candidates (read only when allow_supp)
        s_cut = np.zeros((n_dims, n_part), dtype=np.int64)
        s_gain = np.full((n_dims, n_part), -np.inf)
        s_side = np.zeros((n_dims, n_part), dtype=bool)  # True: the right side is cut off
        ncp_now = sum(widths[d] for d in alive) / len(dims)  # the partition's NCP (estimate)
        seg_key = np.repeat(ar << 32, sizes) if strict else None
        rows = {d: packed[d] & _ROW_MASK for d in alive}
        for i, d in enumerate(alive):
            if strict:
                med = packed[d][starts + (sizes - 1) // 2] >> 32
                thr_a, thr_b = dims[d].thresholds(lo[d], hi[d], med)
                assert seg_key is not None  # set when strict
                key = seg_key | (packed[d] >> 32)
                cands = [np.searchsorted(key, (ar << 32) + thr, side="right") - starts for thr in (thr_a, thr_b)]
                del key
            else:
                cands = [np.where(widths[d] > 0, sizes // 2, 0)]
            distinct: list[NDArray] = []
            if l:
                assert sens is not None  # the caller passes the sensitive codes whenever l > 0
                ranges = [r for c in cands for r in ((starts, starts + c), (starts + c, ends))]
                distinct = _distinct_counts(sens[rows[d]], ranges, n_sens)
            best = np.full(n_part, -1, dtype=np.int64)
            for j, c in enumerate(cands):
                left_ok = c >= k
                right_ok = sizes - c >= k
                if l:
                    left_ok &= distinct[2 * j] >= l
                    right_ok &= distinct[2 * j + 1] >= l
                balance = np.where(left_ok & right_ok, np.minimum(c, sizes - c), -1)
                take = balance > best
                best = np.where(take, balance, best)
                cut[i] = np.where(take, c, cut[i])
                if allow_supp:  # one side below k, the other a valid partition: cut off the small side if it pays
                    for cost, side in ((c, False), (sizes - c, True)):
                        valid = (cost > 0) & (cost < k) & (left_ok if side else right_ok)
                        if not valid.any():
                            continue
                        if side:  # the left part [start, start + c) remains
                            rest_lo, rest_hi = lo[d], packed[d][np.clip(starts + c - 1, 0, m - 1)] >> 32
                        else:
                            rest_lo, rest_hi = packed[d][np.clip(starts + c, 0, m - 1)] >> 32, hi[d]
                        narrower = widths[d] - dims[d].width(rest_lo, rest_hi)
                        gain = (sizes - cost) * narrower / len(dims) - cost * (1.0 - ncp_now)
                        gain = np.where(valid & (gain > 0), gain, -np.inf)
                        better = gain > s_gain[i]
                        s_gain[i] = np.where(better, gain, s_gain[i])
                        s_cut[i] = np.where(better, c, s_cut[i])
                        s_side[i] = np.where(better, side, s_side[i])
            ok[i] = best >= 0

        # widest allowed dimension first (ties: quasi-identifier order)
        rank = np.argsort(-np.stack([widths[d] for d in alive]), axis=0, kind="stable")
        ok_ranked = np.take_along_axis(ok, rank, axis=0)
        split = cast("NDArray[np.bool_]", ok_ranked.any(axis=0))  # a 2-D reduction; the stub says bool | array
        dim = rank[ok_ranked.argmax(axis=0), ar]
        chosen = cut[dim, ar]
        supp_left = np.zeros(n_part, dtype=bool)
        supp_right = np.zeros(n_part, dtype=bool)
        if allow_supp:
            s_gain[:, split] = -np.inf
            cand = np.flatnonzero(np.isfinite(s_gain).any(axis=0))
            if len(cand):
                s_dim = s_gain[:, cand].argmax(axis=0)
                cut_s = s_cut[s_dim, cand]
                side = s_side[s_dim, cand]
                costs = np.where(side, sizes[cand] - cut_s, cut_s)
                # best NCP gain per suppressed user first, within the budget
                by_value = np.argsort(-s_gain[s_dim, cand] / costs, kind="stable")
                accepted = by_value[np.cumsum(costs[by_value]) <= budget_left]
                if len(accepted):
                    acc = cand[accepted]
                    budget_left -= int(costs[accepted].sum())
                    dim[acc] = s_dim[accepted]
                    chosen[acc] = cut_s[accepted]
                    supp_right[acc] = side[accepted]
                    supp_left[acc] = ~side[accepted]
                    split[acc] = True
        nleft = np.where(split, chosen, sizes)

        if split.any():
            for i, d in enumerate(alive):  # mark the rows right of each cut chosen in this dimension
                sel = np.flatnonzero(split & (dim == i))
                if len(sel):
                    right = _multi_arange(starts[sel] + nleft[sel], sizes[sel] - nleft[sel])
                    left_row[rows[d][right]] = False
            # stable two-way partition of every segment, in every dimension: left rows, then right rows
            to_left = np.repeat(np.tile(np.array([True, False]), n_part), np.stack([nleft, sizes - nleft], 1).ravel())
            to_right = ~to_left
            for d in alive:
                lf = left_row[rows[d]]
                moved = np.empty_like(packed[d])
                moved[to_left] = np.compress(lf, packed[d])
                moved[to_right] = np.compress(~lf, packed[d])
                packed[d] = moved
            del rows, to_left, to_right
            left_row.fill(True)

        ch_size = np.stack([nleft, sizes - nleft], axis=1).ravel()
        ch_supp = np.stack([supp_left, supp_right], axis=1).ravel()
        # a child below 2k users cannot be cut again, unless suppression may still cut off a few of its users
        min_active = k + 1 if (strict and budget_left > 0) else 2 * k
        ch_active = np.repeat(split, 2) & ~ch_supp & (ch_size >= min_active)
        ch_done = (ch_size > 0) & ~ch_active
        if ch_done.any():
            done_pos = np.repeat(ch_done, ch_size)
            done_rows.append(packed[alive[0]][done_pos] & _ROW_MASK)
            done_sizes.append(ch_size[ch_done])
            done_supp.append(ch_supp[ch_done])
            if not ch_active.any():
                break
            keep = ~done_pos
            for d in alive:
                packed[d] = packed[d][keep]
        sizes = ch_size[ch_active]
        starts = np.cumsum(sizes) - sizes

    return np.concatenate(done_rows), np.concatenate(done_sizes).astype(np.int64), np.concatenate(done_supp)


def _multi_arange(begin: NDArray[np.int64], length: NDArray[np.int64]) -> NDArray[np.int64]:
    """Concatenation of ``arange(b, b + n)`` for every ``(b, n)``."""
    offsets = np.cumsum(length) - length
    return np.arange(int(length.sum()), dtype=np.int64) + np.repeat(begin - offsets, length)


def _distinct_counts(ss: NDArray[np.int64], ranges: list[tuple[NDArray, NDArray]], n_sens: int) -> list[NDArray]:
    """Distinct non-missing values of ``ss`` in position ranges ``[a, b)``.

    ``ranges`` come in (prefix, suffix) pairs of the same segments (the two sides of a cut).
    """
    m = len(ss)
    counts = [np.zeros(len(a), dtype=np.int64) for a, _ in ranges]
    if n_sens <= 32:  # one cumulative count per value
        cs = np.zeros(m + 1, dtype=np.int64)
        for value in range(n_sens):
            np.cumsum(ss == value, out=cs[1:])
            for j, (a, b) in enumerate(ranges):
                counts[j] += cs[b] > cs[a]
        return counts
    # many values: first occurrences in a segment count for its prefixes, last occurrences for its suffixes
    seg = np.zeros(m, dtype=np.int64)
    seg[ranges[0][0][1:]] = 1
    key = np.where(ss >= 0, np.cumsum(seg) * (n_sens + 1) + ss, -1)
    order = np.argsort(key, kind="stable")
    sk = key[order]
    new_run = np.ones(m, dtype=bool)
    new_run[1:] = sk[1:] != sk[:-1]
    end_run = np.ones(m, dtype=bool)
    end_run[:-1] = new_run[1:]
    first = np.zeros(m, dtype=bool)
    first[order[new_run & (sk >= 0)]] = True
    last = np.zeros(m, dtype=bool)
    last[order[end_run & (sk >= 0)]] = True
    cf = np.concatenate([[0], np.cumsum(first)])
    cl = np.concatenate([[0], np.cumsum(last)])
    for j, (a, b) in enumerate(ranges):
        counts[j] += (cf[b] - cf[a]) if j % 2 == 0 else (cl[b] - cl[a])
    return counts


# ====================================================================== generalisation
def _generalize(enc: _Encoded, class_codes: NDArray[np.int64], bounds: NDArray[np.int64]) -> tuple[NDArray, NDArray]:
    """Distinct released labels (object array) and the label of every class.

    ``class_codes`` are the codes of the rows grouped by class; ``bounds`` the start of every class.
    """
    lo = np.minimum.reduceat(class_codes, bounds)
    hi = np.maximum.reduceat(class_codes, bounds)
    n_values = enc.n_values
    texts: list[str] | NDArray[np.object_]
    if enc.kind == "numeric":
        keys, inverse = np.unique(lo * n_values + hi, return_inverse=True)
        texts = []
        for key in keys:
            a, b = enc.values[key // n_values], enc.values[key % n_values]
            texts.append(str(a) if a == b else f"[{a}-{b}]")
    elif enc.kind == "prefix":
        depth = enc.common_prefix(lo, hi)
        lengths = np.array([len(v) for v in enc.values], dtype=np.int64)
        longest = np.maximum.reduceat(lengths[class_codes], bounds)
        radix = int(lengths.max()) + 1
        group_start, _ = enc.groups
        keys, inverse = np.unique((group_start[depth, lo] * radix + depth) * radix + longest, return_inverse=True)
        texts = []
        for key in keys:
            head, size = divmod(int(key), radix)
            first, cut = divmod(head, radix)
            texts.append(enc.values[first][:cut] + "*" * (size - cut))
    elif n_values <= 64:  # categorical: the set of values present, as a bit mask
        bits = np.left_shift(np.uint64(1), class_codes.astype(np.uint64))
        keys, inverse = np.unique(np.bitwise_or.reduceat(bits, bounds), return_inverse=True)
        strings = [str(v) for v in enc.values]
        texts = ["|".join(sorted(strings[i] for i in range(n_values) if (int(mask) >> i) & 1)) for mask in keys]
    else:  # categorical with many values: one set per class
        texts = enc.values[lo].astype(object)
        multi = np.flatnonzero(lo != hi)
        if len(multi):
            class_id = np.repeat(np.arange(len(bounds)), np.diff(np.append(bounds, len(class_codes))))
            pairs = np.unique(class_id * n_values + class_codes)
            pair_class, pair_code = pairs // n_values, pairs % n_values
            cuts = np.searchsorted(pair_class, np.arange(len(bounds) + 1))
            value_strings = np.array([str(v) for v in enc.values], dtype=object)
            for c in multi:
                texts[c] = "|".join(sorted(value_strings[pair_code[cuts[c]:cuts[c + 1]]]))
        inverse = np.arange(len(bounds))
    label_codes, labels = pd.factorize(np.asarray(texts, dtype=object))
    return np.asarray(labels, dtype=object), label_codes[np.asarray(inverse).ravel()].astype(np.int64)


def _blank(series: pd.Series, mask: NDArray[np.bool_]) -> pd.Series:
    """``series`` with NA where ``mask`` is true (integer and boolean columns become nullable)."""
    series = series.reset_index(drop=True)
    if not mask.any():
        return series
    if not isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
        if pd.api.types.is_bool_dtype(series):
            series = series.astype("boolean")
        elif pd.api.types.is_integer_dtype(series):
            series = series.astype("Int64")
    return series.mask(mask)


# ====================================================================== measurement helpers
def _penalty(released: pd.Index, original: pd.Series, kind: str) -> NDArray[np.float64]:
    """NCP of each distinct released value of one attribute, in [0, 1]."""
    values = [str(v) for v in released]
    if kind == "numeric":
        num = pd.to_numeric(original, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        num = num[np.isfinite(num)]
        span = float(num.max() - num.min()) if len(num) else 0.0
        out = np.zeros(len(values))
        if span > 0:
            for i, v in enumerate(values):
                bounds = _parse_range(v)
                if bounds is not None:
                    out[i] = min(1.0, (bounds[1] - bounds[0]) / span)
        return out
    if kind == "prefix":
        return np.array([v.count("*") / len(v) if v else 1.0 for v in values], dtype=np.float64)
    domain = int(original.nunique(dropna=True))
    if domain <= 1:
        return np.zeros(len(values))
    return np.array([v.count("|") / (domain - 1) for v in values], dtype=np.float64).clip(0.0, 1.0)


def _parse_range(text: str) -> tuple[float, float] | None:
    """``(lo, hi)`` of a released ``"[lo-hi]"`` range (numbers may be negative or in exponent form)."""
    if not (text.startswith("[") and text.endswith("]")):
        return None
    inner = text[1:-1]
    for i, char in enumerate(inner):
        if char == "-" and i > 0 and inner[i - 1] not in "eE-":
            try:
                return float(inner[:i]), float(inner[i + 1:])
            except ValueError:
                continue
    return None


def _combine(codes: list[NDArray]) -> NDArray[np.int64]:
    """One int64 key per row from several non-negative code arrays (re-compacted to avoid overflow)."""
    key = np.zeros(len(codes[0]), dtype=np.int64)
    bound = 1
    for c in codes:
        card = int(c.max()) + 1 if len(c) else 1
        if bound * card >= 2**62:
            key = pd.factorize(key)[0].astype(np.int64)
            bound = int(key.max()) + 1
        key = key * card + c
        bound *= card
    return key


def _groups(column: pd.Series, suppressed: NDArray, ncp: NDArray, class_size: NDArray) -> dict[str, dict[str, float]]:
    """Per value of a sensitive attribute: users, users suppressed, mean NCP and mean class size."""
    codes, values = _categories(column)
    labels = [str(v) for v in values.to_numpy(dtype=object)]
    if (codes < 0).any():
        labels.append("<missing>")
        codes = np.where(codes < 0, len(labels) - 1, codes)
    size = len(labels)
    users = np.bincount(codes, minlength=size)
    supp = np.bincount(codes, weights=suppressed.astype(np.float64), minlength=size)
    ncp_sum = np.bincount(codes, weights=ncp, minlength=size)
    size_sum = np.bincount(codes, weights=class_size, minlength=size)
    out = {}
    for i in np.argsort(np.array(labels, dtype=object), kind="stable"):
        if users[i]:
            kept = users[i] - supp[i]
            out[labels[i]] = {
                "users": float(users[i]),
                "users_suppressed": float(supp[i]),
                "ncp": float(ncp_sum[i] / users[i]),
                "mean_class_size": float(size_sum[i] / kept) if kept else 0.0,
            }
    return out
