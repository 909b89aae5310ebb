"""Randomized response on each user's item set: local differential privacy by unary encoding."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, PrivacyGuaranteeError
from privrec.privacy.base import PrivacyReport, TransformResult

__all__ = ["RandomizedResponse"]

_VARIANTS = ("optimized", "symmetric")
_REWEIGHTS = ("none", "unbiased", "posterior")
# Work is done in cache-sized pieces (fixed sizes, so a seed always gives the same output): temporaries stay
# small, and no full-size intermediate array is ever allocated.
_CHUNK = 1 << 16  # elements per chunk of a streaming pass (random draws, canonical-order check)
_BLOCK = 1 << 16  # input ones + output cells per block of users in the merge and in measure()


@dataclass(frozen=True, kw_only=True)
class RandomizedResponse:
    """Local differential privacy on each user's item set by unary encoding (randomized response per cell).

    Definition. Each user's row of the binary user x item matrix (1 = the user interacted with the item,
    duplicates and weights are dropped) is one report. Every cell is perturbed independently: a 1 stays 1
    with probability ``p``, a 0 becomes 1 with probability ``q`` (Wang, Blocki, Li & Jha, "Locally
    Differentially Private Protocols for Frequency Estimation", USENIX Security 2017):

    - ``variant="symmetric"`` (SUE, basic RAPPOR): ``p = e^(eps/2) / (e^(eps/2) + 1)``,
      ``q = 1 / (e^(eps/2) + 1)``;
    - ``variant="optimized"`` (OUE): ``p = 1/2``, ``q = 1 / (e^eps + 1)`` (lower variance for sparse rows).

    Guarantee, stated precisely (unit: one user's whole item vector; adjacency as below). Changing cell
    ``j`` from 1 to 0 changes the likelihood of any output by at most a factor ``e^eps_item`` with
    ``eps_item = max(ln(p/q), ln((1-q)/(1-p)))`` (SUE: ``eps/2``; OUE: ``ln((e^eps + 1)/2)``). Hence:

    - ``epsilon``-LDP for neighbouring item sets that differ by *replacing* one item by another (one 1 moves:
      two cells change). This is the one-hot setting of Wang et al., where the configured ``epsilon`` is exact.
    - ``epsilon_per_item`` (= ``eps_item``) for sets that differ by *adding or removing* one item.
    - For item sets differing in ``d`` cells the bound is ``d * eps_item`` (SUE: ``d * eps / 2``); the whole
      history of a user with ``deg`` items, against an empty history, is protected only at ``deg * eps_item``.
      The report gives the median and maximum of that per-user figure over the input's users.

    Every user in the vocabulary reports, including users without interactions (otherwise presence leaks).
    The output is a function of the perturbed bits only: rows come in canonical (user, item) order, weights
    do not depend on whether a 1 is real, and timestamps are dropped (``timestamp=None``) -- keeping the
    real timestamps of kept 1s, or any per-user statistic of them, would mark which cells are real.

    It does **not** protect user attributes (released untouched), the user's presence and index, or the
    number of users; and it assumes each user reports once (repeated releases compose: budgets add up).

    ``reweight`` sets the output weights (post-processing, so the guarantee is unchanged):

    - ``False`` / ``"none"``: every released cell has weight 1.
    - ``True`` / ``"unbiased"``: ``(y - q) / (p - q)`` for the released ``y = 1``, i.e. the constant
      ``(1 - q) / (p - q)``. A kept 1 and a flipped 1 are indistinguishable, so they *must* get the same
      weight. The estimator is unbiased only together with ``-q / (p - q)`` on every unreleased cell, which a
      sparse implicit-feedback matrix cannot hold (those cells are clipped to 0), so this is a rescaling.
    - ``"posterior"``: ``P(x = 1 | y = 1) = p*f / (p*f + q*(1 - f))``, where ``f`` is the item's true share
      of users estimated from the output, ``(c_i / n_users - q) / (p - q)`` with ``c_i`` its released count,
      clipped to ``[1 / n_users, 1]`` (so every weight is > 0). Cells of items released about as often as
      noise alone explains get small weights (down to about ``p / (q * n_users)``); cells of items that most
      users truly have get weights near 1. The weight depends on the item only, never on the true bit.

    ``epsilon = inf`` (also the string ``"inf"``) is the identity: the input is returned unchanged.

    Size. The output has about ``p * ones + q * (n_users * n_items - ones)`` cells; with small ``epsilon``
    that is far larger than the input (OUE, eps = 1 flips 27% of all empty cells). ``apply`` refuses with
    :class:`~privrec.errors.ConfigError` when the expectation exceeds ``max_output_interactions``. Nothing is
    densified: kept 1s are one Bernoulli draw per input cell; flips are an exact Bernoulli(q) process over
    each user's empty cells, drawn as geometric gaps, so time and memory scale with input + output size.
    """

    epsilon: float = 1.0
    variant: str = "optimized"
    reweight: bool | str = False
    max_output_interactions: int = 200_000_000

    def __post_init__(self) -> None:
        eps = self.epsilon
        bad = ConfigError(f"randomized_response.epsilon must be a number > 0 or 'inf'; got {self.epsilon!r}.")
        if isinstance(eps, str):
            try:
                eps = float(eps.strip())
            except ValueError:
                raise bad from None
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)) or not eps > 0:
            raise bad
        object.__setattr__(self, "epsilon", float(eps))
        if self.variant not in _VARIANTS:
            raise ConfigError(f"randomized_response.variant must be one of {list(_VARIANTS)}; got {self.variant!r}.")
        if not (isinstance(self.reweight, (bool, np.bool_)) or self.reweight in _REWEIGHTS):
            raise ConfigError(
                f"randomized_response.reweight must be true, false or one of {list(_REWEIGHTS)}; got {self.reweight!r}."
            )
        cap = self.max_output_interactions
        if (
            isinstance(cap, bool)
            or not isinstance(cap, (int, float, np.integer, np.floating))
            or not math.isfinite(cap)
            or cap != int(cap)
            or cap < 1
        ):
            raise ConfigError(f"randomized_response.max_output_interactions must be an integer >= 1; got {cap!r}.")
        object.__setattr__(self, "max_output_interactions", int(cap))

    # -------------------------------------------------------------- parameters
    @property
    def probabilities(self) -> tuple[float, float]:
        """``(p, q)``: P(report 1 | true 1) and P(report 1 | true 0)."""
        eps = self.epsilon
        if math.isinf(eps):
            return 1.0, 0.0
        if self.variant == "symmetric":
            return 1.0 / (1.0 + math.exp(-eps / 2)), math.exp(-eps / 2) / (1.0 + math.exp(-eps / 2))
        return 0.5, math.exp(-eps) / (1.0 + math.exp(-eps))

    @property
    def epsilon_per_item(self) -> float:
        """Privacy loss for adding or removing one item: ``max(ln(p/q), ln((1-q)/(1-p)))``."""
        eps = self.epsilon
        if math.isinf(eps):
            return math.inf
        if self.variant == "symmetric":
            return eps / 2
        return eps + math.log1p(math.exp(-eps)) - math.log(2.0)  # ln((e^eps + 1) / 2) >= eps / 2

    @property
    def _reweight_mode(self) -> str:
        if isinstance(self.reweight, (bool, np.bool_)):
            return "unbiased" if self.reweight else "none"
        return str(self.reweight)

    # -------------------------------------------------------------- transform
    def apply(self, data: Dataset, *, rng: np.random.Generator) -> TransformResult:
        if math.isinf(self.epsilon):
            return TransformResult(data=data, report=self.measure(data, data))
        p, q = self.probabilities
        indptr, indices = _binary_csr(data)
        n_ones = len(indices)
        n_empty = data.n_users * data.n_items - n_ones
        expected = p * n_ones + q * n_empty
        if expected > self.max_output_interactions:
            raise ConfigError(
                f"randomized_response.max_output_interactions must cover the expected output of {expected:.3g} "
                f"interactions (q={q:.3g} of {n_empty:.3g} empty cells flip to 1); "
                f"got {self.max_output_interactions:.3g}. Raise epsilon or max_output_interactions."
            )
        keep = _bernoulli(rng, p, n_ones)
        zeros = data.n_items - np.diff(indptr)
        flip_counts, flip_ranks = _bernoulli_process(rng, q, zeros)
        user, item = _merge(indptr, indices, keep, flip_counts, flip_ranks, n_items=data.n_items)
        del keep, flip_ranks
        weight = self._weights(item, data.n_users, data.n_items, p, q)
        released = data.with_interactions(user, item, weight, None)
        return TransformResult(data=released, report=self._measure(data, indptr, indices, released))

    def _weights(self, item: NDArray[np.int32], n_users: int, n_items: int, p: float, q: float) -> NDArray[np.float32]:
        mode = self._reweight_mode
        if mode == "none":
            return np.ones(len(item), dtype=np.float32)
        if mode == "unbiased":
            return np.full(len(item), (1 - q) / (p - q), dtype=np.float32)
        released = np.zeros(n_items, dtype=np.int64)
        for s in range(0, len(item), _CHUNK):
            released += np.bincount(item[s : s + _CHUNK], minlength=n_items)
        share = np.clip((released / max(1, n_users) - q) / (p - q), 1 / max(1, n_users), 1.0)
        posterior = (p * share / (p * share + q * (1 - share))).astype(np.float32)
        return posterior[item]

    # -------------------------------------------------------------- report
    def measure(self, original: Dataset, released: Dataset) -> PrivacyReport:
        """Re-measure kept 1s and flipped 0s by comparing the input's and output's binary matrices."""
        indptr, indices = _binary_csr(original)
        return self._measure(original, indptr, indices, released)

    def _measure(self, original: Dataset, indptr: NDArray, indices: NDArray, released: Dataset) -> PrivacyReport:
        if released.n_users != original.n_users or released.n_items != original.n_items:
            raise PrivacyGuaranteeError("randomized_response output changed the vocabularies; this is a bug.")
        p, q = self.probabilities
        out_indptr, out_indices = _binary_csr(released)
        n_ones = len(indices)
        n_empty = original.n_users * original.n_items - n_ones
        kept = _count_common(indptr, indices, out_indptr, out_indices, original.n_items)
        flips = len(out_indices) - kept
        deg = np.diff(indptr)
        eps_item = self.epsilon_per_item
        top, mid = (float(deg.max()), float(np.median(deg))) if len(deg) else (0.0, 0.0)
        metrics = {
            "epsilon": self.epsilon,
            "epsilon_per_item": eps_item,
            "epsilon_user_history_max": _times(top, eps_item),
            "epsilon_user_history_median": _times(mid, eps_item),
            "p": p,
            "q": q,
            "input_ones": float(n_ones),
            "expected_kept_1": p * n_ones,
            "actual_kept_1": float(kept),
            "kept_1_rate": kept / max(1, n_ones),
            "expected_flips_0_to_1": q * n_empty,
            "actual_flips_0_to_1": float(flips),
            "flip_rate": flips / max(1, n_empty),
            "output_interactions": float(released.n_interactions),
        }
        name = "optimized (OUE)" if self.variant == "optimized" else "symmetric (SUE)"
        return PrivacyReport(
            transform="randomized_response",
            guarantee=f"Each user's item vector (unit: user) is released by {name} unary encoding "
            f"(Wang et al. 2017): epsilon={self.epsilon:g}-LDP for item sets differing by one replaced item, "
            f"{eps_item:.4g} for one added or removed item, d times that for d changed items; "
            "user attributes, presence and the number of users are not protected.",
            metrics=metrics,
        )


# ---------------------------------------------------------------------- vectorised building blocks
def _times(count: float, eps: float) -> float:
    return 0.0 if count == 0 else count * eps


def _binary_csr(data: Dataset) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
    """``(indptr, indices)`` of the binary matrix: distinct (user, item) pairs, items sorted within users.

    Interactions already in canonical order (sorted by user, then item, no repeated pair -- as produced by
    this transform, ``np.nonzero`` or a CSR matrix) cost one streaming pass and no copy; otherwise the pairs
    are sorted once (one int64 key per interaction).
    """
    users, items, n_items = data.user_idx, data.item_idx, max(1, data.n_items)
    counts = np.zeros(data.n_users + 1, dtype=np.int64)
    last = -1
    for s in range(0, len(users), _CHUNK):
        u, i = users[s : s + _CHUNK], items[s : s + _CHUNK]
        key = u.astype(np.int64) * n_items
        key += i
        if key[0] <= last or np.any(key[1:] <= key[:-1]):
            break
        last = int(key[-1])
        first = int(u[0])
        per_user = np.bincount(u - first)
        counts[first + 1 : first + 1 + len(per_user)] += per_user
    else:  # canonical
        return np.cumsum(counts), items
    key = users.astype(np.int64) * n_items
    key += items
    key.sort()
    distinct = np.ones(len(key), dtype=bool)
    np.not_equal(key[1:], key[:-1], out=distinct[1:])
    if not distinct.all():
        key = key[distinct]
    del distinct
    indptr = np.searchsorted(key, np.arange(data.n_users + 1, dtype=np.int64) * n_items, side="left")
    indices = np.empty(len(key), dtype=np.int32)
    for s in range(0, len(key), _CHUNK):
        indices[s : s + _CHUNK] = key[s : s + _CHUNK] % n_items
    return indptr, indices


def _bernoulli(rng: np.random.Generator, p: float, n: int) -> NDArray[np.bool_]:
    """``n`` independent Bernoulli(p) draws."""
    out = np.empty(n, dtype=bool)
    for s in range(0, n, _CHUNK):
        np.less(rng.random(min(_CHUNK, n - s)), p, out=out[s : s + _CHUNK])
    return out


def _bernoulli_process(
    rng: np.random.Generator, q: float, zeros: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
    """Flip every empty cell independently with probability ``q``, without materialising the empty cells.

    The empty cells of all users, concatenated in (user, item) order, form one Bernoulli(q) sequence; the
    positions of its 1s are partial sums of i.i.d. Geometric(q) gaps, ``ceil(E / -ln(1 - q))`` with ``E``
    standard exponential (exact, and memoryless, so drawing in chunks changes nothing). Returns the number
    of flips per user and, user after user, the ascending rank of each flipped cell among that user's empty
    cells.
    """
    n_users = len(zeros)
    cum = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(zeros, out=cum[1:])
    total = int(cum[-1])
    counts = np.zeros(n_users, dtype=np.int64)
    ranks: list[NDArray[np.int32]] = []
    if q <= 0 or total == 0:
        return counts, np.empty(0, dtype=np.int32)
    scale = -1.0 / math.log1p(-q)
    cap = max(1, 2**62 // (total + 1))  # keeps the cumulative sum of clipped gaps inside int64
    last = -1  # position of the last success so far
    while True:
        mean = (total - 1 - last) * q
        size = int(min(mean + 6 * math.sqrt(mean) + 64, _CHUNK, cap))
        gaps = rng.standard_exponential(size)
        gaps *= scale
        np.ceil(gaps, out=gaps)
        np.clip(gaps, 1, total + 1, out=gaps)  # a gap past the end is as good as any longer one
        pos = gaps.astype(np.int64)
        np.cumsum(pos, out=pos)
        pos += last
        inside = int(np.searchsorted(pos, total, side="left"))
        done, last = inside < size, int(pos[-1])
        if inside:
            hits = pos[:inside]
            lo, hi = np.searchsorted(cum, hits[[0, -1]], side="right") - 1  # users spanned by this chunk
            bounds = np.searchsorted(hits, cum[lo + 1 : hi + 1], side="left")
            per_user = np.diff(bounds, prepend=0, append=inside)
            counts[lo : hi + 1] += per_user
            hits -= np.repeat(cum[lo : hi + 1], per_user)  # rank within the user's empty cells
            ranks.append(hits.astype(np.int32))
        if done:
            break
    return counts, (np.concatenate(ranks) if ranks else np.empty(0, dtype=np.int32))


def _user_blocks(ptr: NDArray[np.int64], size: int) -> list[tuple[int, int]]:
    """Consecutive user ranges ``[u0, u1)`` holding about ``size`` entries each according to ``ptr``."""
    n_users = len(ptr) - 1
    if n_users <= 0:
        return []
    cuts = np.searchsorted(ptr, np.arange(size, int(ptr[-1]), size, dtype=np.int64), side="left")
    bounds = np.unique(np.concatenate(([0], cuts, [n_users])))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def _merge(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int32],
    keep: NDArray[np.bool_],
    flip_counts: NDArray[np.int64],
    flip_ranks: NDArray[np.int32],
    *,
    n_items: int,
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Output (user_idx, item_idx) in canonical order: kept 1s and flipped cells merged within each user.

    Within a block of users, a user ``u`` with sorted items ``o_0 < o_1 < ...`` (block positions ``k``) maps
    its ``r``-th empty cell to item ``r + #{k : o_k - k <= r}``. With one key per 1, ``u*N + o_k - k``, and
    per flip, ``u*N + r - start_u``, both already sorted, a stable merge (tag 0 = 1, tag 1 = flip) puts every
    cell in item order, and a cell's output key is its merge key plus the number of 1s merged before it.
    """
    n_users = len(indptr) - 1
    fptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(flip_counts, out=fptr[1:])
    total = int(np.count_nonzero(keep)) + int(fptr[-1])
    out_user = np.empty(total, dtype=np.int32)
    out_item = np.empty(total, dtype=np.int32)
    o = 0
    for u0, u1 in _user_blocks(indptr + fptr, _BLOCK):
        s, e, fs, fe = int(indptr[u0]), int(indptr[u1]), int(fptr[u0]), int(fptr[u1])
        n_ones, n = e - s, e - s + fe - fs
        deg, flips = np.diff(indptr[u0 : u1 + 1]), flip_counts[u0:u1]
        base = np.arange(u1 - u0, dtype=np.int64) * n_items
        code = np.empty(n, dtype=np.int64)
        ones = code[:n_ones]
        ones[:] = np.repeat(base, deg)
        ones += indices[s:e]
        ones -= np.arange(n_ones)
        cells = code[n_ones:]
        cells[:] = np.repeat(base - (indptr[u0:u1] - s), flips)
        cells += flip_ranks[fs:fe]
        code <<= 1
        cells |= 1
        code.sort(kind="stable")  # merges two sorted runs
        is_flip = (code & 1).astype(bool)
        ones_before = np.arange(n) - np.cumsum(is_flip) + is_flip
        code >>= 1
        code += ones_before
        chosen = is_flip.copy()
        chosen[~is_flip] = keep[s:e]
        kept_before = np.zeros(n_ones + 1, dtype=np.int64)
        np.cumsum(keep[s:e], out=kept_before[1:])
        start = indptr[u0:u1] - s
        per_user = kept_before[start + deg] - kept_before[start] + flips
        size = int(per_user.sum())
        out_item[o : o + size] = code[chosen] - np.repeat(base, per_user)
        out_user[o : o + size] = np.repeat(np.arange(u0, u1, dtype=np.int32), per_user)
        o += size
    return out_user, out_item


def _count_common(
    a_ptr: NDArray[np.int64], a_idx: NDArray, b_ptr: NDArray[np.int64], b_idx: NDArray, n_items: int
) -> int:
    """Number of (user, item) pairs in both binary CSR matrices (same users; distinct sorted items per row)."""
    common = 0
    for u0, u1 in _user_blocks(a_ptr + b_ptr, _BLOCK):
        base = np.arange(u1 - u0, dtype=np.int64) * n_items
        parts = []
        for ptr, idx in ((a_ptr, a_idx), (b_ptr, b_idx)):
            s, e = int(ptr[u0]), int(ptr[u1])
            key = np.repeat(base, np.diff(ptr[u0 : u1 + 1]))
            key += idx[s:e]
            parts.append(key)
        key = np.concatenate(parts)
        key.sort(kind="stable")  # merges two sorted runs
        common += int(np.count_nonzero(key[1:] == key[:-1]))
    return common
