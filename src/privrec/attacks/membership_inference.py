"""Membership inference against a trained recommender, from its scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from privrec import progress
from privrec.attacks._sparse import contains, sorted_unique
from privrec.attacks.base import (
    AttackResult,
    AttackTarget,
    auc_interval,
    check_int,
    check_max_targets,
    check_run_args,
    sample_targets,
)
from privrec.errors import ConfigError

__all__ = ["MembershipInference"]

_OWNER = "membership_inference"
_FPR = 0.01
_MAX_ROUNDS = 64
#: Membership on the truth: original training pairs as members, vs held-out and vs random non-members.
_ORIGINAL_NAMES = ("mia_auc_original", "mia_tpr_at_1fpr_original", "mia_auc_original_random",
                   "mia_tpr_at_1fpr_original_random")


@dataclass(frozen=True, kw_only=True)
class MembershipInference:
    """Score-based membership inference on the fitted model (a black-box attacker who sees scores).

    The signal is the model's score, normalised **per user**: an item's percentile rank within the user's
    own score row over the whole catalogue (``model.score(users)``, seen items not masked; average rank for
    ties, ``(rank - 0.5) / n_items``), so users with large and small raw scores are comparable and the
    attack is threshold-free per user. A higher percentile means "more likely a training member". Pooled
    over users, the members-vs-non-members ROC gives:

    **Interaction level** (in the spirit of Shokri et al., S&P 2017, and Zhang et al., "Membership Inference
    Attacks Against Recommender Systems", CCS 2021, but at the granularity of single interactions):
    members are the distinct (user, item) pairs of ``released`` -- what the model was trained on -- for
    users with a released row (``max_users`` draws a random subset of them). Non-members are

    - ``test``: the same users' held-out pairs (``target.test``) that are not in their original or released
      training data -> ``mia_auc_test``, ``mia_tpr_at_1fpr_test``;
    - ``random``: ``negatives`` items per member pair, drawn uniformly among the items the user has neither
      in original, released nor test data -> ``mia_auc_random``, ``mia_tpr_at_1fpr_random``.

    **On the truth** (``mia_auc_original``...): the same users, but the members are their *original*,
    pre-treatment training pairs (``target.original``) instead of the released ones. The released variant
    asks how well the model fits what it was trained on; after a treatment that changes profiles
    (microaggregation, randomized response) that is the treated data, not anyone's history. This variant asks
    what the model leaks about the users' *true* training history. Non-members are judged against the truth
    too: the same users' held-out pairs that are not in their original training data
    (``mia_auc_original``, ``mia_tpr_at_1fpr_original``), and ``negatives`` fresh uniform items per original
    member pair among the items the user has neither in original nor test data
    (``mia_auc_original_random``, ``mia_tpr_at_1fpr_original_random``). Unlike the released variant, a
    held-out pair that the treatment happened to put into the release (a flipped bit, an item of the user's
    group) stays a non-member: the model scoring it high is the treatment's noise, not leaked history. When
    nothing changed a profile (no treatment, consent drop) both non-member sets equal the released
    variant's. The users are the released variant's (users with a released row), so opted-out users are
    covered by the user level below, not here. These pairs are scored in the same pass (same users, so the
    released variant's numbers are unchanged), and their random non-members are drawn after every other draw.

    **User level** (only when ``target.withheld`` marks someone): does the model reveal *whether a user was
    in the training data*? A user's signal is the mean percentile of their original training items under the
    model (opted-out users are served by the model's fallback, as a real attacker querying for them would
    see). Members: consenting users with a released row; non-members: opted-out users with original data
    (each capped at ``max_users``) -> ``mia_user_auc``, ``mia_user_tpr_at_1fpr``. When nobody was withheld
    these are recorded in ``missing``.

    ``..._tpr_at_1fpr``: the largest true-positive rate of a score threshold whose false-positive rate is
    at most 1% (Carlini et al., "Membership Inference Attacks From First Principles", S&P 2022, argue
    for this low-FPR view). AUC and ROC from :func:`sklearn.metrics.roc_curve` (AUC = ``auc`` of that curve,
    i.e. ``roc_auc_score``). Counts: ``mia_users``, ``mia_user_members``, ``mia_user_nonmembers``. Without a
    model every metric is missing.

    **Sampling** (``max_targets``; ``max_users`` is its older name, either may be set): when more users than
    that qualify for the interaction level, or for either side of the user level, a simple random sample of
    ``max_targets`` of them is attacked (drawn from ``rng``; nothing is drawn when every user fits, so results
    are then those of the unsampled attack). The AUCs are then estimates, reported with their 95% intervals
    (``..._auc_..._ci_low`` / ``_ci_high``: DeLong placement values with the user as the cluster, and the
    finite-population factor, :func:`~privrec.attacks.base.auc_interval`) and the sample and population sizes
    (``mia_users`` of ``mia_users_population``; at the user level ``mia_user_members`` and
    ``mia_user_nonmembers`` of ``mia_user_population``). The cost is linear in the
    sampled users (each scored over the whole catalogue), never quadratic in the population.

    Score rows are computed densely in batches of users (about ``block_elements`` floats at a time).
    """

    negatives: int = 1
    max_users: int | None = None
    max_targets: int | None = None

    #: Upper bound on the elements of one dense block of score rows.
    block_elements: ClassVar[int] = 1 << 22

    def __post_init__(self) -> None:
        object.__setattr__(self, "negatives", check_int(_OWNER, "negatives", self.negatives, minimum=1))
        object.__setattr__(self, "max_users", check_int(_OWNER, "max_users", self.max_users, minimum=1,
                                                        allow_none=True))
        object.__setattr__(self, "max_targets", check_max_targets(_OWNER, self.max_targets))
        if self.max_users is not None and self.max_targets is not None and self.max_users != self.max_targets:
            raise ConfigError(f"{_OWNER}.max_users (the older name of max_targets) must equal max_targets when "
                              f"both are set; got {self.max_users} and {self.max_targets}.")

    def run(self, target: AttackTarget, *, rng: np.random.Generator) -> AttackResult:
        check_run_args("MembershipInference", target, rng)
        metrics: dict[str, float] = {}
        missing: dict[str, str] = {}
        interaction_names = ("mia_auc_test", "mia_tpr_at_1fpr_test", "mia_auc_random", "mia_tpr_at_1fpr_random",
                             *_ORIGINAL_NAMES)
        user_names = ("mia_user_auc", "mia_user_tpr_at_1fpr")
        model = target.model
        if model is None or not callable(getattr(model, "score", None)):
            reason = ("no model was given." if model is None
                      else f"the model ({type(model).__name__}) has no score method.")
            return AttackResult("membership_inference", metrics, dict.fromkeys(interaction_names + user_names, reason))

        released = _binary(target.released)
        original = _binary(target.original)
        test = _binary(target.test)
        n_items = released.shape[1]

        # ---------------------------------------------------------- interaction level
        eligible = np.flatnonzero(np.diff(released.indptr) > 0)
        users = self._sample(eligible, rng)
        metrics["mia_users"] = float(len(users))
        sampled = len(users) < len(eligible)
        known = ((original[users] + released[users] + test[users]) > 0).astype(np.float32).tocsr()
        member_u, member_i = _pairs(released[users], users)
        held = test[users] - test[users].multiply((original[users] + released[users]) > 0)
        held.eliminate_zeros()
        test_u, test_i = _pairs(held.tocsr(), users)
        neg_u, neg_i = self._negatives(np.repeat(member_u, self.negatives), known, users, n_items, rng)
        all_u = np.concatenate([member_u, test_u, neg_u])
        all_i = np.concatenate([member_i, test_i, neg_i])

        # ---------------------------------------------------------- user level (pairs only; scored below)
        withheld = target.withheld
        group = np.zeros(0, dtype=np.int64)
        members = outsiders = group
        user_population, sampled_users = 0, False
        if withheld is None or not withheld.any():
            for name in user_names:
                missing[name] = "no user was withheld (nobody opted out), so there are no non-member users."
        else:
            has_original = np.diff(original.indptr) > 0
            member_pool = np.flatnonzero(~withheld & (np.diff(released.indptr) > 0))
            outsider_pool = np.flatnonzero(withheld & has_original)
            members = self._sample(member_pool, rng)
            outsiders = self._sample(outsider_pool, rng)
            user_population = len(member_pool) + len(outsider_pool)
            sampled_users = len(members) + len(outsiders) < user_population
            metrics["mia_user_members"] = float(len(members))
            metrics["mia_user_nonmembers"] = float(len(outsiders))
            if len(members) == 0 or len(outsiders) == 0:
                for name in user_names:
                    missing[name] = (f"need member and non-member users with data; got {len(members)} members "
                                     f"and {len(outsiders)} non-members.")
            else:
                group = np.concatenate([members, outsiders])
        group_u, group_i = _pairs(original[group], group)

        # ---------------------------------------------------------- on the truth (same users, original members)
        truth = original[users]
        orig_u, orig_i = _pairs(truth, users)
        true_held = test[users] - test[users].multiply(truth > 0)
        true_held.eliminate_zeros()
        true_u, true_i = _pairs(true_held.tocsr(), users)
        true_known = ((truth + test[users]) > 0).astype(np.float32).tocsr()
        # drawn after every draw above, so the released variant and the user level see the same stream as before
        true_neg_u, true_neg_i = self._negatives(np.repeat(orig_u, self.negatives), true_known, users, n_items, rng)
        truth_u = np.concatenate([orig_u, true_u, true_neg_u])
        truth_i = np.concatenate([orig_i, true_i, true_neg_i])

        # one scoring pass over every pair: each user's score row is sorted once (the truth pairs belong to the
        # same users as the released members, so every score block is the same as without them)
        pct = self._percentiles(model, np.concatenate([all_u, group_u, truth_u]),
                                np.concatenate([all_i, group_i, truth_i]), n_items)
        pct, group_pct, truth_pct = np.split(pct, [len(all_u), len(all_u) + len(group_u)])

        p_member, p_test, p_neg = np.split(pct, [len(member_u), len(member_u) + len(test_u)])
        for kind, non in (("test", p_test), ("random", p_neg)):
            names = (f"mia_auc_{kind}", f"mia_tpr_at_1fpr_{kind}")
            if len(p_member) == 0 or len(non) == 0:
                what = "member" if len(p_member) == 0 else ("held-out test" if kind == "test" else "random non-member")
                for name in names:
                    missing[name] = f"no {what} interactions among {len(users)} users."
                continue
            metrics[names[0]], metrics[names[1]] = _roc(p_member, non)
            if sampled:
                non_u = test_u if kind == "test" else neg_u
                self._interval(metrics, names[0], p_member, non, member_u=member_u, other_u=non_u,
                               n_users=len(users), population=len(eligible))

        t_member, t_test, t_neg = np.split(truth_pct, [len(orig_u), len(orig_u) + len(true_u)])
        for names, non, kind in ((_ORIGINAL_NAMES[:2], t_test, "held-out test"),
                                 (_ORIGINAL_NAMES[2:], t_neg, "random non-member")):
            if len(t_member) == 0 or len(non) == 0:
                what = "original member" if len(t_member) == 0 else kind
                for name in names:
                    missing[name] = f"no {what} interactions among {len(users)} users."
                continue
            metrics[names[0]], metrics[names[1]] = _roc(t_member, non)
            if sampled:
                non_u = true_u if non is t_test else true_neg_u
                self._interval(metrics, names[0], t_member, non, member_u=orig_u, other_u=non_u,
                               n_users=len(users), population=len(eligible))

        if len(group):
            # mean per user: pairs are grouped by position in `group`
            position = np.repeat(np.arange(len(group)), np.diff(original[group].indptr))
            signal = np.bincount(position, weights=group_pct, minlength=len(group)) / np.maximum(
                np.bincount(position, minlength=len(group)), 1)
            metrics["mia_user_auc"], metrics["mia_user_tpr_at_1fpr"] = _roc(signal[: len(members)],
                                                                            signal[len(members):])
            if sampled_users:
                low, high = auc_interval(signal[: len(members)], signal[len(members):], population=user_population)
                metrics["mia_user_auc_ci_low"], metrics["mia_user_auc_ci_high"] = low, high
        if sampled:
            metrics["mia_users_population"] = float(len(eligible))
        if len(group) and sampled_users:
            metrics["mia_user_population"] = float(user_population)
        return AttackResult("membership_inference", metrics, missing)

    @staticmethod
    def _interval(metrics: dict[str, float], name: str, members: NDArray, others: NDArray, *,
                  member_u: NDArray[np.int64], other_u: NDArray[np.int64], n_users: int, population: int) -> None:
        """``<name>_ci_low`` / ``_ci_high``: the AUC's 95% interval with the user as the sampling unit."""
        low, high = auc_interval(members, others, positive_unit=member_u, negative_unit=other_u,
                                 n_units=n_users, population=population)
        metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"] = low, high

    # ------------------------------------------------------------------ internals
    def _sample(self, users: NDArray[np.int64], rng: np.random.Generator) -> NDArray[np.int64]:
        cap = self.max_targets if self.max_targets is not None else self.max_users
        return sample_targets(users, cap, rng)

    def _negatives(self, owners: NDArray[np.int64], known: sp.csr_matrix, users: NDArray[np.int64], n_items: int,
                   rng: np.random.Generator) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Uniform items the owner has in none of the datasets (rejection sampling, in rounds)."""
        # `known` rows follow `users`; keys (position of user, item)
        pos_of = np.searchsorted(users, owners)
        forbidden = np.sort(np.repeat(np.arange(len(users), dtype=np.int64), np.diff(known.indptr)) * n_items
                            + known.indices)
        full = np.diff(known.indptr) >= n_items  # users who hold every item get no negative
        todo = np.flatnonzero(~full[pos_of]) if len(owners) else np.zeros(0, dtype=np.int64)
        items = np.full(len(owners), -1, dtype=np.int64)
        for _ in range(_MAX_ROUNDS):
            if todo.size == 0:
                break
            draw = rng.integers(0, n_items, size=todo.size)
            bad = contains(forbidden, pos_of[todo] * n_items + draw)
            items[todo[~bad]] = draw[~bad]
            todo = todo[bad]
        ok = items >= 0
        return owners[ok], items[ok]

    def _percentiles(self, model: Any, users: NDArray[np.int64], items: NDArray[np.int64], n_items: int) -> NDArray:
        """Per-user percentile rank of each (user, item) score, batched over distinct users."""
        out = np.zeros(len(users))
        if len(users) == 0:
            return out
        order = np.argsort(users, kind="stable")
        distinct = sorted_unique(users)
        inverse = np.searchsorted(distinct, users)  # position of each pair's user among the distinct users
        batch = max(1, self.block_elements // max(1, n_items))
        bounds = np.searchsorted(inverse[order], np.arange(0, len(distinct) + batch, batch))
        with progress.track("attack membership_inference", len(distinct), unit="users") as bar:
            for b, start in enumerate(range(0, len(distinct), batch)):
                rows = np.asarray(model.score(distinct[start : start + batch]), dtype=np.float64)
                sel = order[bounds[b] : bounds[b + 1]]
                out[sel] = _average_rank(rows, inverse[sel] - start, items[sel])
                bar.update(len(rows))
        return (out - 0.5) / n_items


def _average_rank(rows: NDArray[np.float64], r: NDArray[np.int64], c: NDArray[np.int64]) -> NDArray[np.float64]:
    """1-based average rank (ties averaged, as ``scipy.stats.rankdata(method="average")``) of ``rows[r, c]``
    within row ``r``: one sort of the block plus a binary search per pair, instead of ranking every cell.

    Rows are made disjoint by shifting row ``i`` by ``i * span`` (``span`` > any within-row spread), so one
    ``searchsorted`` over the flattened sorted block answers every pair. Non-finite scores are mapped to
    finite sentinels first (their order is kept).
    """
    rows = np.array(rows, dtype=np.float64)
    finite = np.isfinite(rows)
    if not finite.all():
        lo, hi = (rows[finite].min(), rows[finite].max()) if finite.any() else (0.0, 0.0)
        rows[np.isneginf(rows) | np.isnan(rows)] = lo - 1.0
        rows[np.isposinf(rows)] = hi + 1.0
    lo = rows.min(axis=1, keepdims=True)
    rows -= lo  # each row now starts at 0
    span = float(rows.max()) + 1.0
    shift = np.arange(rows.shape[0], dtype=np.float64)[:, None] * span
    flat = np.sort(rows, axis=1) + shift
    values = rows[r, c] + shift[r, 0]
    flat = flat.ravel()
    base = r * rows.shape[1]
    # numpy's binary search narrows each search with the previous answer when the keys come sorted
    # (~10x faster here than keys in pair order); the answers are put back in pair order
    order = np.argsort(values, kind="stable")
    keys = values[order]
    less = np.empty(len(values), dtype=np.int64)
    upto = np.empty(len(values), dtype=np.int64)
    less[order] = np.searchsorted(flat, keys, side="left")
    upto[order] = np.searchsorted(flat, keys, side="right")
    less -= base
    upto -= base
    return less + (upto - less + 1) / 2.0


def _binary(data: Any) -> sp.csr_matrix:
    m = data.to_csr(binary=True)
    m.sort_indices()
    return m


def _pairs(rows: sp.csr_matrix, users: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(user, item) of every stored entry of ``rows`` (row ``k`` belongs to ``users[k]``)."""
    rows = rows.tocsr()
    return np.repeat(users, np.diff(rows.indptr)).astype(np.int64), rows.indices.astype(np.int64)


def _roc(members: NDArray, others: NDArray) -> tuple[float, float]:
    y = np.concatenate([np.ones(len(members), dtype=bool), np.zeros(len(others), dtype=bool)])
    s = np.concatenate([members, others])
    from sklearn.metrics import auc, roc_curve  # imported when used (sklearn + scipy.stats: ~1.5 s)

    fpr, tpr, _ = roc_curve(y, s)
    # roc_auc_score for binary labels is exactly auc(roc_curve(y, s)); one curve serves both numbers
    return float(auc(fpr, tpr)), float(tpr[fpr <= _FPR].max())
