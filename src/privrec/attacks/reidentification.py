"""Linkage (re-identification) attack on a released interaction table: Narayanan & Shmatikov's Scoreboard-RH."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from privrec import progress
from privrec.attacks._quasi import QuasiMatch
from privrec.attacks._sparse import chunks, contains, group_top2, merge_top2, ranges, sorted_unique
from privrec.attacks.base import (
    AttackResult,
    AttackTarget,
    check_max_targets,
    check_number,
    check_run_args,
    proportion_interval,
)
from privrec.data.dataset import Dataset, Schema
from privrec.errors import ConfigError, DataValidationError

__all__ = ["ReIdentification"]

_KNOWN = ("random", "rarest")
_OWNER = "reidentification"
#: Scores count as "every known item matched" within this tolerance (weights are >= 1/log(2**31) > 0.046).
_FULL_TOL = 1e-9
#: Best and second-best scores closer than this (relative) are a tie (sums of the same weights, other order).
_TIE_TOL = 1e-9


@dataclass(frozen=True, kw_only=True)
class ReIdentification:
    """Re-identify users in the released data from a few of their true interactions.

    The robust de-anonymisation algorithm of Narayanan & Shmatikov, "Robust De-anonymization of Large
    Sparse Datasets" (IEEE S&P 2008), in its *Scoreboard-RH* form, the one used against the Netflix Prize data.

    **Adversary.** For each target user the adversary knows ``m`` distinct items of the target's *original*
    (pre-treatment) training history -- ``known="random"``: ``m`` uniformly random ones; ``"rarest"``: the
    ``m`` with the fewest original users (ties at random) -- plus, when ``days`` is set, when each was
    consumed (the earliest original timestamp of the pair), and, when ``demographics`` is true, the
    target's original quasi-identifiers (``original.schema.quasi_identifiers``). Known sets are nested:
    the items known at ``m=2`` include those known at ``m=1``.

    **Scoreboard.** Every released profile ``r`` (a user with a non-empty released row; with
    ``demographics`` only those whose released quasi-identifiers are compatible with the target's, see
    below) gets ``score(aux, r) = sum of w_i over known items i that r contains``, with
    ``w_i = 1 / log(support_i)`` and ``support_i`` the number of *released* users holding item ``i``,
    clamped at 2 (``support <= 1`` uses ``log 2``, so unique items weigh as much as items shared by two).
    With ``days``, a released record of item ``i`` counts only when its timestamp lies within ``days`` days
    of the known one (otherwise timestamps are ignored). The best match is confident when its
    *eccentricity* ``(max - second max) / std`` is at least ``eccentricity``, where the maximum, second
    maximum and population standard deviation run over all candidate profiles (including the ones scoring
    0; with a single candidate the second best is 0), and the best is strictly better than the second
    (scores within a relative 1e-9 are a tie). A target is **re-identified** when the confident best match
    is the target's own released row (same index: vocabularies are shared).

    This is the implicit-feedback reading of Scoreboard-RH: a known item matches a released record of the
    same item (weights and rating values are ignored, profiles are binarised), and the adversary's
    knowledge is exact (the paper also allows wrong or fuzzy auxiliary records).

    **Demographics.** A released row is compatible when every quasi-identifier is covered: equal strings,
    a number inside a released ``"[lo-hi]"`` (or equal to a released number), a member of a released set
    ``"a|b"``, or a prefix match of a released ``"021**"``; a missing value on either side rules nothing out.

    **Metrics**, per ``m`` (targets: users with at least ``m`` distinct original items; ``max_targets``
    draws a simple random subset of them, nested over ``m``, so the rates become estimates: each then comes
    with its 95% interval, ``<metric>_ci_low`` / ``_ci_high`` (Wilson score interval with the finite-population
    correction, :func:`~privrec.attacks.base.proportion_interval`); ``targets_m{m}`` and ``eligible_m{m}``
    are the sample and the population.
    Every released profile stays a candidate, so the cost is linear in the targets (each scored against the
    holders of its known items), never quadratic in the population):

    - ``reid_rate_m{m}``: re-identified / targets. Users whose released row is empty (opted out) count as
      not re-identified.
    - ``reid_rate_released_m{m}``: re-identified / targets with a non-empty released row.
    - ``unicity_m{m}``: share of targets for which exactly one candidate profile matches everything known
      (all ``m`` items, within the time windows and demographic constraints when set) and it is the target's.
    - ``targets_m{m}``: targets attacked; ``eligible_m{m}``: users with at least ``m`` original items.

    Bad ``m`` (not positive) raises :class:`~privrec.errors.ConfigError` when built; an ``m`` longer than
    every original history raises when run (naming the longest history length).

    **Computation** (exact, vectorised over sparse matrices, targets in batches). Without ``days`` and
    ``demographics`` a threshold-algorithm variant avoids scoring every holder of very popular items: known
    items are visited rarest first; after visiting some, every unvisited profile can score at most the
    summed weight ``R`` of the unvisited items, so once the exact second-best among visited profiles
    reaches ``R`` the top two are final. Visited profiles are scored exactly with a bitmap of the users x
    most-popular-items incidence, and the standard deviation uses the popular items' co-occurrence counts
    (``sum_u score_u^2 = sum_ij w_i w_j |U_i & U_j|``). With ``days`` or ``demographics`` every matching
    record is enumerated (cost: the summed support of the known items).

    What it measures: how well the release resists linkage with partial background knowledge. It says
    nothing about inference of attributes (see :class:`AttributeInference`) or membership.
    """

    m: int | tuple[int, ...] = (1, 2, 4, 8)
    known: str = "random"
    days: float | None = None
    demographics: bool = False
    eccentricity: float = 1.5
    max_targets: int | None = None

    #: Most popular items tracked in the dense bitmap and co-occurrence block (fewer when memory is short).
    popular_items: ClassVar[int] = 4096
    #: Upper bound on the bytes of the users x popular-items bitmap.
    bitmap_bytes: ClassVar[int] = 1 << 28
    #: Upper bound on the (target, candidate) pairs materialised at once.
    pair_budget: ClassVar[int] = 1 << 22
    #: Force the enumerate-everything path (for tests that cross-check both paths).
    _force_enumeration: ClassVar[bool] = False

    def __post_init__(self) -> None:
        ms: Any = self.m  # config input of any shape (int, list, Hydra ListConfig...): validated here
        if isinstance(ms, (int, np.integer)) and not isinstance(ms, bool):
            ms = (ms,)
        try:
            ms = tuple(ms)
        except TypeError:
            raise ConfigError(f"{_OWNER}.m must be positive integers; got {self.m!r}.") from None
        bad = [v for v in ms if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0]
        if bad or not ms:
            raise ConfigError(f"{_OWNER}.m must be positive integers; got {[_plain(v) for v in (bad or ms)]}.")
        object.__setattr__(self, "m", tuple(sorted({int(v) for v in ms})))
        if self.known not in _KNOWN:
            raise ConfigError(f"{_OWNER}.known must be one of {list(_KNOWN)}; got {self.known!r}.")
        if self.days is not None:
            object.__setattr__(self, "days", check_number(_OWNER, "days", self.days, minimum=0.0))
        if not isinstance(self.demographics, (bool, np.bool_)):
            raise ConfigError(f"{_OWNER}.demographics must be true or false; got {self.demographics!r}.")
        object.__setattr__(self, "demographics", bool(self.demographics))
        object.__setattr__(self, "eccentricity", check_number(_OWNER, "eccentricity", self.eccentricity, minimum=0.0))
        object.__setattr__(self, "max_targets", check_max_targets(_OWNER, self.max_targets))

    # ------------------------------------------------------------------ run
    def missing_metrics(self, columns: Collection[str], schema: Schema) -> dict[str, str]:
        """With ``demographics``, every metric and the reason when the data has no quasi-identifier
        (``schema.quasi_identifiers`` that are all among ``columns``); else nothing (the attack can run).
        A run (:func:`privrec.experiment.plan`) then records them as missing instead of running the attack;
        :meth:`run` itself, called on such data, raises."""
        if not self.demographics:
            return {}
        qis = tuple(schema.quasi_identifiers)
        absent = [q for q in qis if q not in set(map(str, columns))]
        if qis and not absent:
            return {}
        reason = (f"{_OWNER}.demographics needs quasi-identifiers; the data has "
                  f"{'none in its schema' if not qis else f'{len(absent)} of them missing: {sorted(absent)}'}.")
        ms = self.m if isinstance(self.m, tuple) else (self.m,)
        return {f"{name}_m{m}": reason for m in ms for name in ("reid_rate", "reid_rate_released", "unicity")}

    def run(self, target: AttackTarget, *, rng: np.random.Generator) -> AttackResult:
        check_run_args("ReIdentification", target, rng)
        original, released = target.original, target.released
        orig = original.to_csr(binary=True)
        orig.sort_indices()
        history = np.diff(orig.indptr)
        longest = int(history.max()) if history.size else 0
        ms = self.m if isinstance(self.m, tuple) else (self.m,)  # __post_init__ stored a sorted tuple
        too_long = [m for m in ms if m > longest]
        if too_long:
            raise ConfigError(
                f"{_OWNER}.m must not exceed the longest original history ({longest} items); got {too_long}."
            )
        if self.days is not None:
            lacking = [n for n, d in (("original", original), ("released", released)) if d.timestamp is None]
            if lacking:
                raise DataValidationError(
                    f"{_OWNER}.days needs timestamps in original and released data; "
                    f"got none in {' and '.join(lacking)}. "
                    "Set days to null to ignore time."
                )
        columns = self._quasi(original, released) if self.demographics else None
        enumerate_all = self._force_enumeration or self.days is not None or columns is not None
        rel = _Release(released, popular=not enumerate_all, cap_items=self.popular_items,
                       cap_bytes=self.bitmap_bytes, days=self.days)
        quasi = (QuasiMatch(original.user_attributes, released.user_attributes, columns, rel.has_profile)
                 if columns is not None else None)

        # the adversary's knowledge: one random order of each user's original items (nested over m)
        rows = np.repeat(np.arange(original.n_users, dtype=np.int64), history)
        tiebreak = rng.random(orig.nnz)
        if self.known == "rarest":
            order = np.lexsort((tiebreak, np.bincount(orig.indices, minlength=original.n_items)[orig.indices], rows))
        else:
            order = np.argsort(rows + tiebreak, kind="stable")  # rows < 2**31: the fraction stays exact enough
        first_seen = _earliest(original, orig) if self.days is not None else None
        user_key = rng.random(original.n_users)

        metrics: dict[str, float] = {}
        missing: dict[str, str] = {}
        work = sum(min(int((history >= m).sum()), self.max_targets or original.n_users) for m in ms)
        bar = progress.track("attack reidentification", work, unit="targets")
        for m in ms:
            eligible = np.flatnonzero(history >= m)
            targets = eligible
            if self.max_targets is not None and len(eligible) > self.max_targets:
                targets = np.sort(eligible[np.argsort(user_key[eligible], kind="stable")[: self.max_targets]])
            present = targets[rel.has_profile[targets]]
            slots = order[orig.indptr[present][:, None] + np.arange(m)]
            aux = orig.indices[slots].astype(np.int64)
            aux_time = first_seen[slots] if first_seen is not None else None
            if enumerate_all:
                hit, unique = self._enumerate(rel, quasi, present, aux, aux_time)
            else:
                hit, unique = self._prune(rel, present, aux)
            n_hit, n_present = int(hit.sum()), len(present)
            metrics[f"reid_rate_m{m}"] = n_hit / len(targets)
            if n_present:
                metrics[f"reid_rate_released_m{m}"] = n_hit / n_present
            else:
                missing[f"reid_rate_released_m{m}"] = (
                    f"none of the {len(targets)} targets with >= {m} original items has a released profile."
                )
            metrics[f"unicity_m{m}"] = int(unique.sum()) / len(targets)
            metrics[f"targets_m{m}"] = float(len(targets))
            metrics[f"eligible_m{m}"] = float(len(eligible))
            if len(targets) < len(eligible):  # sampled: the rates are estimates, with their 95% intervals
                n_unique = int(unique.sum())
                for name, k, n, population in (
                        (f"reid_rate_m{m}", n_hit, len(targets), len(eligible)),
                        (f"reid_rate_released_m{m}", n_hit, n_present, int(rel.has_profile[eligible].sum())),
                        (f"unicity_m{m}", n_unique, len(targets), len(eligible))):
                    if name in metrics:
                        metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"] = proportion_interval(k, n, population)
            bar.update(len(targets))
        bar.close()
        return AttackResult(attack="reidentification", metrics=metrics, missing=missing)

    # ------------------------------------------------------------------ setup
    def _quasi(self, original: Dataset, released: Dataset) -> tuple[str, ...]:
        columns = tuple(original.schema.quasi_identifiers)
        if not columns:
            raise DataValidationError(
                f"{_OWNER}.demographics needs quasi-identifiers in original.schema; got none. "
                "Name them in the loader's schema or set demographics to false."
            )
        absent = [c for c in columns if c not in released.user_attributes.columns]
        if absent:
            raise DataValidationError(
                f"{_OWNER}.demographics needs every quasi-identifier in the released attributes; got "
                f"{len(absent)} missing: {sorted(absent)}."
            )
        return columns

    def _decide(
        self, top: tuple[NDArray, NDArray, NDArray], *, total: NDArray, total_sq: NDArray, n_cand: NDArray,
        users: NDArray,
    ) -> NDArray[np.bool_]:
        """Confident (eccentricity >= threshold, strict best) and correct; ``top``: (best, its user, second best)."""
        best, arg, second = top
        second = np.maximum(second, 0.0)  # profiles outside the scored set (or a virtual empty one) score 0
        n = np.maximum(n_cand, 1.0)
        mean = total / n
        std = np.sqrt(np.maximum(total_sq / n - mean * mean, 0.0))
        gap = best - second
        # a gap within rounding of the summation order is a tie: never confident
        confident = (gap > _TIE_TOL * np.maximum(best, 1.0)) & (gap >= self.eccentricity * std)
        return confident & (arg == users)

    # ------------------------------------------------------------------ exact, enumerating every match
    def _enumerate(
        self, rel: _Release, quasi: QuasiMatch | None, users: NDArray[np.int64], aux: NDArray[np.int64],
        aux_time: NDArray[np.int64] | None,
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        n, m = aux.shape
        hit = np.zeros(n, dtype=bool)
        unique = np.zeros(n, dtype=bool)
        if n == 0:
            return hit, unique
        weight = rel.weight[aux]
        full = weight.sum(axis=1)
        if aux_time is None:
            lo, lengths = rel.colptr[aux], rel.support[aux]
        else:
            lo, lengths = rel.windows(aux, aux_time)
        n_cand = np.full(n, float(rel.n_candidates)) if quasi is None else quasi.n_candidates(users)
        for batch in chunks(lengths.sum(axis=1), self.pair_budget):
            b_users = users[batch]
            nb = len(b_users)
            q, pos = ranges(lo[batch].ravel(), lengths[batch].ravel())
            member = (rel.colusers if aux_time is None else rel.rec_user)[pos]
            if aux_time is not None and rel.repeats:  # several records of one pair in a window count once
                keys = sorted_unique(q * rel.n_users + member)
                q, member = keys // rel.n_users, keys % rel.n_users
            t = q // m
            w = weight[batch].ravel()[q]
            if quasi is not None:
                ok = quasi.compatible(b_users[t], member)
                t, member, w = t[ok], member[ok], w[ok]
            scores = sp.csr_matrix((w, (t, member)), shape=(nb, rel.n_users), dtype=np.float64)
            scores.sum_duplicates()
            row = np.repeat(np.arange(nb), np.diff(scores.indptr))
            cand, s = scores.indices.astype(np.int64), scores.data
            best, arg, second = group_top2(scores.indptr, cand, s)
            total = np.bincount(row, weights=s, minlength=nb)
            total_sq = np.bincount(row, weights=s * s, minlength=nb)
            hit[batch] = self._decide((best, arg, second), total=total, total_sq=total_sq, n_cand=n_cand[batch],
                                      users=b_users)
            is_full = s >= full[batch][row] - _FULL_TOL
            n_full = np.bincount(row, weights=is_full, minlength=nb)
            self_full = np.bincount(row, weights=is_full & (cand == b_users[row]), minlength=nb) > 0
            unique[batch] = (n_full == 1) & self_full
        return hit, unique

    # ------------------------------------------------------------------ exact, pruned (no time, no demographics)
    def _prune(
        self, rel: _Release, users: NDArray[np.int64], aux: NDArray[np.int64]
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        n, m = aux.shape
        hit = np.zeros(n, dtype=bool)
        unique = np.zeros(n, dtype=bool)
        if n == 0:
            return hit, unique
        # slots: items outside the popular block first, then by support (rarest first)
        pcode = rel.pcode[aux]
        slot_order = np.lexsort((aux, rel.support[aux], pcode >= 0), axis=-1)
        aux = np.take_along_axis(aux, slot_order, axis=1)
        pcode = np.take_along_axis(pcode, slot_order, axis=1)
        weight = rel.weight[aux]
        support = rel.support[aux]
        n_rare = (pcode < 0).sum(axis=1)
        start = np.maximum(n_rare, 1)  # slots visited first: every rare one, at least the rarest
        remaining = np.concatenate([np.cumsum(weight[:, ::-1], axis=1)[:, ::-1], np.zeros((n, 1))], axis=1)
        full = remaining[:, 0]
        # sum and sum of squares of the scores over all released profiles
        total = (weight * support).sum(axis=1)
        pw = np.where(pcode >= 0, weight, 0.0)
        pc = np.maximum(pcode, 0)
        cooc = rel.gram[pc[:, :, None], pc[:, None, :]]
        total_sq = np.einsum("ij,ijk,ik->i", pw, cooc, pw)
        n_cand = np.full(n, float(rel.n_candidates))
        # m <= 2 and only popular items: the top two follow from support and co-occurrence counts alone
        counted = np.full(n, m <= 2) & (n_rare == 0)
        idx = np.flatnonzero(counted)
        if idx.size:
            h, u = _count_patterns(rel, users[idx], aux[idx], pcode[idx], weight[idx])
            hit[idx] = self._decide(h, total=total[idx], total_sq=total_sq[idx], n_cand=n_cand[idx], users=users[idx])
            unique[idx] = u
        first_cost = np.where(np.arange(m)[None, :] < start[:, None], support, 0).sum(axis=1)
        for group in (~counted & (start == 1), start > 1):  # one first slot (no duplicates) / several
            idx = np.flatnonzero(group)
            for part in chunks(first_cost[idx], self.pair_budget):
                batch = idx[part]
                h, u, sq = self._prune_batch(rel, users[batch], aux[batch], pcode=pcode[batch], weight=weight[batch],
                                             n_rare=n_rare[batch], start=start[batch], remaining=remaining[batch],
                                             full=full[batch])
                total_sq[batch] += sq
                hit[batch] = self._decide(h, total=total[batch], total_sq=total_sq[batch], n_cand=n_cand[batch],
                                          users=users[batch])
                unique[batch] = u
        return hit, unique

    def _prune_batch(
        self, rel: _Release, users: NDArray[np.int64], aux: NDArray[np.int64], *, pcode: NDArray[np.int64],
        weight: NDArray[np.float64], n_rare: NDArray[np.int64], start: NDArray[np.int64],
        remaining: NDArray[np.float64], full: NDArray[np.float64],
    ) -> tuple[tuple[NDArray, NDArray, NDArray], NDArray[np.bool_], NDArray[np.float64]]:
        """Threshold search for one batch of targets that all start with one slot, or all with several.

        Slots (columns of ``aux``) are sorted: rare items (``pcode < 0``) first, then by support. Returns the
        top two (best, its user, second best), unicity, and the sum of squared scores of profiles holding a
        rare known item beyond their popular-only part (the rest comes from the co-occurrence block).
        """
        nb, m = aux.shape
        n_users = rel.n_users
        single = bool((start == 1).all())
        # ---- first visit: every holder of the first `start` slots, scored exactly
        if single:  # holders of one slot each: already grouped by target, no duplicates
            counts = rel.support[aux[:, 0]]
            pos = ranges(rel.colptr[aux[:, 0]], counts)[1]
            cand = rel.colusers[pos]
            part = np.repeat(weight[:, 0], counts)
        else:
            qt, qj = np.nonzero(np.arange(m)[None, :] < start[:, None])
            q, pos = ranges(rel.colptr[aux[qt, qj]], rel.support[aux[qt, qj]])
            visited = sp.csr_matrix((weight[qt, qj][q], (qt[q], rel.colusers[pos])), shape=(nb, n_users),
                                    dtype=np.float64)
            visited.sum_duplicates()
            counts = np.diff(visited.indptr).astype(np.int64)
            cand = visited.indices.astype(np.int64)
            part = visited.data  # weight of the visited slots each profile holds
        indptr = np.concatenate([[0], np.cumsum(counts)])
        row = np.repeat(np.arange(nb), counts)
        s = part.copy()
        for j in range(1 if single else 0, m):
            if single:
                s += np.repeat(weight[:, j], counts) * rel.bit(cand, np.repeat(pcode[:, j], counts))
                continue
            sel = np.flatnonzero(np.repeat(j >= start, counts))
            if sel.size:
                r = row[sel]
                s[sel] += weight[r, j] * rel.bit(cand[sel], pcode[r, j])
        # sum of squares over profiles holding a rare item: s^2 minus the popular-only part already counted
        rare = np.repeat(n_rare > 0, counts)
        # numpy's stubs type bincount as intp whatever the weights; with float weights it returns float64
        rare_sq: NDArray[np.float64] = np.bincount(  # type: ignore[assignment]
            row[rare], weights=s[rare] ** 2 - (s[rare] - part[rare]) ** 2, minlength=nb
        )
        is_full = s >= np.repeat(full, counts) - _FULL_TOL
        n_full = np.bincount(row, weights=is_full, minlength=nb)
        self_full = np.bincount(row, weights=is_full & (cand == np.repeat(users, counts)), minlength=nb) > 0
        best, arg, second = group_top2(indptr, cand, s)
        seen_keys = row * n_users + cand  # sorted: grouped by row, users ascending within a row
        del row, part, s, is_full, rare

        # ---- then one more popular slot at a time, only for targets whose top two are not final yet
        cur = start.copy()
        open_ = np.maximum(second, 0.0) < remaining[np.arange(nb), cur]
        while open_.any():
            idx = np.flatnonzero(open_)
            items = aux[idx, cur[idx]]
            for piece in chunks(rel.support[items], self.pair_budget):
                owners, sup = idx[piece], rel.support[items[piece]]
                q, pos = ranges(rel.colptr[items[piece]], sup)
                cand = rel.colusers[pos]
                new = ~contains(seen_keys, np.repeat(owners, sup) * n_users + cand)
                for j in range(m):  # already visited through an earlier popular slot
                    live = (j >= start[owners]) & (j < cur[owners])
                    if live.any():
                        sel = np.flatnonzero(new & np.repeat(live, sup))
                        new[sel] = rel.bit(cand[sel], np.repeat(pcode[owners, j], sup)[sel]) == 0
                q, cand = q[new], cand[new]
                kept = np.bincount(q, minlength=len(owners))
                s = np.zeros(len(cand))
                for j in range(m):
                    live = j >= cur[owners]
                    if live.all():
                        s += np.repeat(weight[owners, j], kept) * rel.bit(cand, np.repeat(pcode[owners, j], kept))
                    elif live.any():
                        sel = np.flatnonzero(np.repeat(live, kept))
                        s[sel] += (np.repeat(weight[owners, j], kept)[sel]
                                   * rel.bit(cand[sel], np.repeat(pcode[owners, j], kept)[sel]))
                top = group_top2(np.concatenate([[0], np.cumsum(kept)]), cand, s)
                best[owners], arg[owners], second[owners] = merge_top2((best[owners], arg[owners], second[owners]), top)
            cur[idx] += 1
            open_[idx] = np.maximum(second[idx], 0.0) < remaining[idx, cur[idx]]
        return (best, arg, second), (n_full == 1) & self_full, rare_sq


def _count_patterns(rel: _Release, users: NDArray[np.int64], aux: NDArray[np.int64], pcode: NDArray[np.int64],
                    weight: NDArray[np.float64]) -> tuple[tuple[NDArray, NDArray, NDArray], NDArray[np.bool_]]:
    """Exact top two for ``m <= 2`` popular items from counts: every profile's score depends only on which
    of the (one or two) known items it holds, and how many profiles hold each pattern is known from the
    supports and the co-occurrence block. The best profile is the target exactly when the best pattern is
    held by one profile and that pattern is the target's own."""
    m = aux.shape[1]
    held = np.stack([rel.bit(users, pcode[:, j]) for j in range(m)], axis=1).astype(bool)
    if m == 1:
        scores = weight[:, :1]
        counts = rel.support[aux[:, :1]].astype(np.float64)
        own = np.where(held[:, 0], 0, -1)
    else:
        both = rel.gram[pcode[:, 0], pcode[:, 1]]
        scores = np.stack([weight[:, 0] + weight[:, 1], weight[:, 0], weight[:, 1]], axis=1)
        counts = np.stack([both, rel.support[aux[:, 0]] - both, rel.support[aux[:, 1]] - both], axis=1)
        own = np.select([held[:, 0] & held[:, 1], held[:, 0], held[:, 1]], [0, 1, 2], -1)
    present = np.where(counts >= 1, scores, -np.inf)
    entries = np.sort(np.concatenate([present, np.where(counts >= 2, scores, -np.inf)], axis=1), axis=1)
    best, second = entries[:, -1], entries[:, -2]
    arg = np.where(np.argmax(present, axis=1) == own, users, -1)
    return (best, arg, second), (counts[:, 0] == 1) & (own == 0)


class _Release:
    """The released profiles in the layouts the scoreboard needs (built once per run)."""

    def __init__(self, released: Dataset, *, popular: bool, cap_items: int, cap_bytes: int,
                 days: float | None) -> None:
        self.n_users, self.n_items = released.n_users, released.n_items
        binary = released.to_csr(binary=True)
        binary.sort_indices()
        by_item = binary.T.tocsr()
        by_item.sort_indices()
        self.colptr = by_item.indptr.astype(np.int64)
        self.colusers = by_item.indices.astype(np.int64)
        self.support = np.diff(self.colptr)
        self.weight = 1.0 / np.log(np.maximum(self.support, 2).astype(np.float64))
        self.has_profile = np.diff(binary.indptr) > 0
        self.repeats = binary.nnz < released.n_interactions  # some (user, item) pair has several records
        self.n_candidates = int(self.has_profile.sum())
        if popular:
            self._popular(binary, cap_items, cap_bytes)
        if days is not None:
            self._timeline(released, days)

    def _popular(self, binary: sp.csr_matrix, cap_items: int, cap_bytes: int) -> None:
        cap = min(cap_items, max(64, cap_bytes * 8 // max(1, self.n_users)))
        ranked = np.lexsort((np.arange(self.n_items), -self.support))
        top = ranked[: min(cap, int(np.count_nonzero(self.support)))]
        self.pcode = np.full(self.n_items, -1, dtype=np.int64)
        self.pcode[top] = np.arange(len(top))
        self.ubytes = max(1, (self.n_users + 7) // 8)
        item = np.repeat(np.arange(self.n_items, dtype=np.int64), self.support)
        code = self.pcode[item]
        sel = code >= 0
        users = self.colusers[sel]
        self.bitmap = np.zeros(len(top) * self.ubytes, dtype=np.uint8)  # item-major: one bit row per item
        np.bitwise_or.at(self.bitmap, code[sel] * self.ubytes + (users >> 3),
                         np.left_shift(1, users & 7).astype(np.uint8))
        block = binary[:, top]
        self.gram = (block.T.tocsr() @ block).toarray().astype(np.float64)

    def bit(self, users: NDArray[np.int64], code: NDArray[np.int64]) -> NDArray[np.int64]:
        """1 where ``users[k]`` holds the popular item with code ``code[k]``."""
        return (self.bitmap[code * self.ubytes + (users >> 3)] >> (users & 7)).astype(np.int64) & 1

    def _timeline(self, released: Dataset, days: float) -> None:
        timestamp = released.timestamp
        assert timestamp is not None  # ReIdentification.run raised already when days is set without timestamps
        order = np.lexsort((timestamp, released.item_idx))
        self.rec_user = released.user_idx[order].astype(np.int64)
        self.rec_item = released.item_idx[order].astype(np.int64)
        self.rec_time = timestamp[order]
        self.window = int(np.floor(days * 86_400.0)) if np.isfinite(days * 86_400.0) else np.iinfo(np.int64).max

    def windows(self, aux: NDArray[np.int64], when: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Start and length of the released records of each known item within the time window."""
        times = np.concatenate([self.rec_time, when.ravel()])
        if times.size == 0:
            return np.zeros(aux.shape, np.int64), np.zeros(aux.shape, np.int64)
        t0, span = int(times.min()), int(times.max() - times.min()) + 1
        window = min(self.window, span)
        keys = self.rec_item * span + (self.rec_time - t0)
        lo_key = aux * span + np.maximum(when - window - t0, 0)
        hi_key = aux * span + np.minimum(when + window - t0, span - 1)
        lo = np.searchsorted(keys, lo_key.ravel(), side="left").reshape(aux.shape)
        hi = np.searchsorted(keys, hi_key.ravel(), side="right").reshape(aux.shape)
        return lo.astype(np.int64), (hi - lo).astype(np.int64)


def _earliest(original: Dataset, binary: sp.csr_matrix) -> NDArray[np.int64]:
    """Earliest original timestamp of every stored (user, item) pair, aligned with ``binary``'s entries."""
    timestamp = original.timestamp
    assert timestamp is not None  # ReIdentification.run raised already when days is set without timestamps
    keys = original.user_idx.astype(np.int64) * original.n_items + original.item_idx
    order = np.lexsort((timestamp, keys))
    sorted_keys = keys[order]
    first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]] if len(keys) else np.zeros(0, dtype=bool)
    out = timestamp[order][first]
    assert len(out) == binary.nnz  # one per stored pair, in the same (user, item) order
    return out


def _plain(value: object) -> object:
    return int(value) if isinstance(value, np.integer) else value
