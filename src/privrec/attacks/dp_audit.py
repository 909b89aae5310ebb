"""Auditing a claimed differential-privacy guarantee: an empirical lower bound on epsilon from a membership test."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from privrec.attacks.base import AttackResult, AttackTarget, check_int, check_number, check_run_args
from privrec.data.dataset import Dataset
from privrec.errors import ConfigError

__all__ = ["DPAudit", "clopper_pearson", "one_run_epsilon_lower_bound"]

_OWNER = "dp_audit"
_DESIGNS = ("crafted", "users")
_MODEL_NAMES = ("epsilon_lower_bound", "epsilon_claimed", "dp_bound_violated")
_TREATMENT_NAMES = ("epsilon_lower_bound_treatment", "epsilon_claimed_treatment", "dp_bound_violated_treatment")
#: Units of a model's claim the canary game can instantiate (add/remove one user, or one interaction).
_UNITS = ("user", "interaction")
#: Treatments whose report claims per-rating local DP that the flip statistics can test.
_RATING_TREATMENTS = ("randomized_response",)
#: Bisection steps when inverting the one-run p-value with delta > 0 (2^-60 of the bracket).
_BISECTIONS = 60


@dataclass(frozen=True, kw_only=True)
class DPAudit:
    """Empirical lower bound on the epsilon of a claimed differential-privacy guarantee, from a membership test
    at the claim's own privacy unit; flags the claim when the bound exceeds it.

    **What is audited.** (1) The model, when it is itself a mechanism: ``model.privacy_report()`` returns a
    :class:`~privrec.privacy.PrivacyReport` with a finite ``epsilon`` (and ``delta``; unit from its ``unit``
    group or ``model.unit``), as :class:`~privrec.models.DPALS` and :class:`~privrec.models.DPItemKNN` do
    -> ``epsilon_lower_bound``, ``epsilon_claimed``, ``dp_bound_violated`` (1.0 when the lower bound exceeds
    the claim, else 0.0), and the game's counts ``dp_audit_canaries`` (m), ``dp_audit_guesses`` (r),
    ``dp_audit_correct`` (v). (2) The treatment, when ``target.report`` is randomized response's (per-rating
    local DP) -> ``epsilon_lower_bound_treatment``, ``epsilon_claimed_treatment``,
    ``dp_bound_violated_treatment``. Whatever makes no such claim (no model, a model whose report is ``None``,
    ``epsilon = inf``, any other treatment) gets its metrics in ``missing`` with the reason, at no cost: the
    claim is read before anything is computed.

    **The model: one-run auditing** (Steinke, Nasr & Jagielski, "Privacy Auditing with One (1) Training Run",
    NeurIPS 2023; canaries chosen to be easy to detect, as in Jagielski, Ullman & Oprea, "Auditing
    Differentially Private Machine Learning: How Private is Private SGD?", NeurIPS 2020):

    1. ``m`` canaries (``rng``). ``design="crafted"`` (default): canary *c* owns one item that nobody else
       holds in either world: the ``m`` items least held in the release (ties at random) are emptied (their
       few other interactions removed in both worlds) and each given to one canary, with the release's
       largest weight. Unit ``user``: the canaries are ``m`` random user indices whose released rows are
       removed in both worlds, each holding only its item; unit ``interaction``: the ``m`` users with the
       fewest released interactions (ties at random; a model that bounds contributions per user keeps all of
       theirs) keep their rows, and the canary is one extra interaction with the user's item.
       ``design="users"``: real canaries: unit ``user``: ``m`` random users with a released row, the canary
       being that row; unit ``interaction``: one random released item of each of ``m`` users with at least two.
    2. Every canary is included independently with probability 1/2 (``rng``); a fresh, unfitted copy of the
       model (``dataclasses.replace``: same hyperparameters) is fitted on the release without the excluded
       canaries (vocabularies unchanged: their rows are empty or shorter).
    3. Each canary is scored with a statistic that uses only what the mechanism releases plus the canary's
       own row -- never the model's per-user state (its stored user factor or lists), which DP does not
       protect: for a factorisation model (``item_embeddings()``), the canary's factor solved locally from
       its own row against the released item factors, as a user would (the implicit-ALS user step with the
       model's ``regularization`` and ``alpha``), and the mean score of its canary items; for an item-item
       model (``similarity_``), the mean of ``row @ similarity`` over its canary items. With real canaries
       the same mean under a *reference* copy fitted without any canary (one more fit, independent of the
       coins, so allowed) is subtracted: a real row's popular items score high in or out, and only the lift
       its presence gives them is evidence. Crafted items carry nothing but noise when out, so no reference.
    4. Guess "in" for the ``k = floor(guess_share * m)`` highest statistics and "out" for the ``k`` lowest
       (ties broken by canary order, which the coins do not touch); ``v`` of the ``r = 2k`` guesses are right.
    5. For an ``epsilon``-DP mechanism, ``v`` is stochastically dominated by ``Binomial(r, e^eps / (1 +
       e^eps))`` (Steinke et al.), so the one-sided Clopper--Pearson lower bound ``p_lb`` of the
       accuracy at confidence ``confidence`` (``scipy.stats.beta``) gives ``eps_lb = max(0, log(p_lb / (1 -
       p_lb)))``. ``delta > 0`` is accounted for, not ignored: the p-value gets the paper's additive term
       ``2 m delta max_i P[v - i <= Binomial(r, q) < v] / i`` (their approximate-DP result, Appendix D),
       and ``eps_lb`` is the largest epsilon whose p-value stays below ``1 - confidence`` (bisection; equal to
       the Clopper--Pearson form when ``delta = 0``).

    The bound is sound whatever the statistic (the guesses depend on the coins only through the released
    output), so an honest mechanism is flagged with probability at most ``1 - confidence`` per run. It is
    *not* tight: one run with ``r`` guesses can never show more than ``log(p / (1 - p))`` with ``p = (1 -
    confidence)^(1/r)`` (r = 250: 4.4), so a claim above that is never flagged, and a sound mechanism's bound
    is usually far below its claim (one single-item canary spends a small part of the sensitivity the noise
    is calibrated for). Crafted canaries are the default because real users' membership is hard to see
    through item statistics of a few factors even without noise: on ML-100K, with 500 real canaries, DP-ALS
    with its noise cut 1000x gave 189 of 250 right, a bound of 0.88, not enough to flag a claimed 1; crafted
    canaries got every guess right (the largest bound 250 guesses can give, 4.4).

    **The treatment: randomized response at unit rating.** Its report claims ``epsilon_per_item`` for adding
    or removing one rating (one cell of the user x item matrix). The release is the test: over every cell,
    the true-positive rate ``P(released | held)`` and false-positive rate ``P(released | not held)`` get
    two-sided Clopper--Pearson intervals (Bonferroni: ``(1 - confidence) / 2`` each) and ``eps_lb = max(0,
    log(TPR_lb / FPR_ub), log((1 - FPR_ub) / (1 - TPR_lb)))`` (Jagielski et al. 2020's hypothesis-test
    bound; ``delta = 0``). Here the cells are not the auditor's coins but the data, so the test assumes what
    the mechanism states: every cell is flipped independently with the same probabilities; a mechanism that
    treats items differently can be flagged without violating its per-cell bound. Chains are not audited.
    This test is nearly tight (thousands of cells), so an honest randomized response *is* flagged in up to
    ``1 - confidence`` of runs (2 of 60 seeds at epsilon = 8 on ML-100K): ``dp_bound_violated`` is a test at
    that level, so read a sweep by its rate of flags, not by one flag.

    Hyperparameters: ``canaries`` (m, at most the users or items available), ``guess_share`` (k / m, in
    ``(0, 0.5]``), ``confidence`` (``1 - beta``), ``design``. Costs one extra fit of the model (two with real
    canaries) for a run with a DP model, a pass over the release for randomized response, nothing otherwise.
    """

    canaries: int = 500
    guess_share: float = 0.25
    confidence: float = 0.95
    design: str = "crafted"

    def __post_init__(self) -> None:
        object.__setattr__(self, "canaries", check_int(_OWNER, "canaries", self.canaries, minimum=2))
        share = check_number(_OWNER, "guess_share", self.guess_share, minimum=0.0, open_low=True)
        if share > 0.5:
            raise ConfigError(f"{_OWNER}.guess_share must be in (0, 0.5] (k guesses 'in' and k 'out' among m "
                              f"canaries); got {self.guess_share!r}.")
        object.__setattr__(self, "guess_share", share)
        conf = check_number(_OWNER, "confidence", self.confidence, minimum=0.0, open_low=True)
        if conf >= 1.0:
            raise ConfigError(f"{_OWNER}.confidence must be in (0, 1); got {self.confidence!r}.")
        object.__setattr__(self, "confidence", conf)
        if self.design not in _DESIGNS:
            raise ConfigError(f"{_OWNER}.design must be one of {list(_DESIGNS)}; got {self.design!r}.")

    # ------------------------------------------------------------------ run
    def run(self, target: AttackTarget, *, rng: np.random.Generator) -> AttackResult:
        check_run_args("DPAudit", target, rng)
        metrics: dict[str, float] = {}
        missing: dict[str, str] = {}
        self._audit_model(target, rng, metrics, missing)
        self._audit_treatment(target, metrics, missing)
        return AttackResult("dp_audit", metrics, missing)

    # ------------------------------------------------------------------ the model
    def _audit_model(self, target: AttackTarget, rng: np.random.Generator, metrics: dict[str, float],
                     missing: dict[str, str]) -> None:
        claim = _model_claim(target.model)
        if isinstance(claim, str):
            missing.update(dict.fromkeys(_MODEL_NAMES, claim))
            return
        epsilon, delta, unit = claim
        model = target.model
        kind = _released_state(model)
        if kind is None:
            missing.update(dict.fromkeys(_MODEL_NAMES, (
                f"the model ({type(model).__name__}) exposes no released state the audit can score "
                "(item_embeddings() or similarity_).")))
            return
        if not dataclasses.is_dataclass(model) or isinstance(model, type):
            missing.update(dict.fromkeys(_MODEL_NAMES, (
                f"the model ({type(model).__name__}) is not a dataclass, so no unfitted copy with the same "
                "hyperparameters can be made.")))
            return
        fit_rng, ref_rng, game_rng = rng.spawn(3)
        game = _build_game(target.released, unit=unit, design=self.design, m=self.canaries, rng=game_rng)
        if isinstance(game, str):
            missing.update(dict.fromkeys(_MODEL_NAMES, game))
            return
        m = len(game.users)
        k = math.floor(self.guess_share * m)
        if k < 1:
            missing.update(dict.fromkeys(_MODEL_NAMES, (
                f"need at least one guess each way; got m={m} canaries and guess_share={self.guess_share:g}.")))
            return
        included = game_rng.random(m) < 0.5
        audited = _unfitted_copy(model).fit(game.world(included), rng=fit_rng)
        statistic = game.statistic(audited, kind)
        if game.reference:
            reference = _unfitted_copy(model).fit(game.fixed, rng=ref_rng)
            statistic = statistic - game.statistic(reference, kind)
        order = np.argsort(statistic, kind="stable")  # ties: canary order, independent of the coins
        correct = int(included[order[-k:]].sum() + (~included[order[:k]]).sum())
        bound = one_run_epsilon_lower_bound(correct, 2 * k, m=m, delta=delta, confidence=self.confidence)
        metrics.update({
            "epsilon_lower_bound": bound,
            "epsilon_claimed": epsilon,
            "dp_bound_violated": 1.0 if bound > epsilon else 0.0,
            "dp_audit_canaries": float(m),
            "dp_audit_guesses": float(2 * k),
            "dp_audit_correct": float(correct),
        })

    # ------------------------------------------------------------------ the treatment
    def _audit_treatment(self, target: AttackTarget, metrics: dict[str, float], missing: dict[str, str]) -> None:
        report = target.report
        if report is None:
            missing.update(dict.fromkeys(_TREATMENT_NAMES, "no treatment report was given."))
            return
        eps = report.metrics.get("epsilon_per_item")
        if report.transform not in _RATING_TREATMENTS or eps is None:
            missing.update(dict.fromkeys(_TREATMENT_NAMES, (
                f"the treatment ({report.transform}) claims no per-rating differential privacy the audit can "
                "test (randomized response only).")))
            return
        if not math.isfinite(float(eps)):
            missing.update(dict.fromkeys(_TREATMENT_NAMES, "the treatment claims no guarantee (epsilon = inf)."))
            return
        held = _binary(target.original)
        released = _binary(target.released)
        n_cells = held.shape[0] * held.shape[1]
        n_held = held.nnz
        kept = int(held.multiply(released).nnz)
        flipped = released.nnz - kept
        if n_held == 0 or n_cells - n_held == 0:
            missing.update(dict.fromkeys(_TREATMENT_NAMES, (
                f"need held and not-held cells; got {n_held} held of {n_cells}.")))
            return
        bound = rating_epsilon_lower_bound(kept, n_held, flipped, n_cells - n_held, confidence=self.confidence)
        metrics.update({
            "epsilon_lower_bound_treatment": bound,
            "epsilon_claimed_treatment": float(eps),
            "dp_bound_violated_treatment": 1.0 if bound > float(eps) else 0.0,
        })


# ---------------------------------------------------------------------- the bounds
def clopper_pearson(successes: int, trials: int, *, confidence: float, sided: str = "two") -> tuple[float, float]:
    """Clopper--Pearson interval of a binomial proportion: ``(lower, upper)`` from ``scipy.stats.beta``.

    ``sided="two"``: each tail ``(1 - confidence) / 2``; ``"lower"``: a one-sided lower bound at ``confidence``
    (upper = 1); ``"upper"``: a one-sided upper bound (lower = 0). An empty tail is 0 or 1 exactly."""
    from scipy.stats import beta

    alpha = 1.0 - confidence
    tail_low = alpha / 2 if sided == "two" else (alpha if sided == "lower" else 0.0)
    tail_high = alpha / 2 if sided == "two" else (alpha if sided == "upper" else 0.0)
    lower = 0.0 if successes == 0 or tail_low == 0 else float(beta.ppf(tail_low, successes, trials - successes + 1))
    upper = (1.0 if successes == trials or tail_high == 0
             else float(beta.ppf(1.0 - tail_high, successes + 1, trials - successes)))
    return lower, upper


def one_run_p_value(correct: int, guesses: int, *, m: int, epsilon: float, delta: float) -> float:
    """P[at least ``correct`` of ``guesses`` right] under an ``(epsilon, delta)``-DP mechanism with ``m``
    canaries included with probability 1/2 (Steinke, Nasr & Jagielski 2023: the binomial tail at accuracy
    ``e^eps / (1 + e^eps)`` plus, for ``delta > 0``, their additive term; the algorithm of their Appendix D)."""
    from scipy.stats import binom

    q = 1.0 / (1.0 + math.exp(-epsilon))
    p = float(binom.sf(correct - 1, guesses, q))
    if delta > 0 and correct > 0:
        pmf = binom.pmf(np.arange(correct - 1, -1, -1), guesses, q)  # P[Bin = v-1], P[Bin = v-2], ...
        alpha = float(np.max(np.cumsum(pmf) / np.arange(1, correct + 1)))
        p += 2.0 * m * delta * alpha
    return min(p, 1.0)


def one_run_epsilon_lower_bound(correct: int, guesses: int, *, m: int, delta: float, confidence: float) -> float:
    """The largest epsilon that ``correct`` of ``guesses`` rules out at ``confidence`` (0 when none is).

    With ``delta = 0`` this is ``max(0, logit(p_lb))`` for the one-sided Clopper--Pearson lower bound ``p_lb``
    of the accuracy; with ``delta > 0`` the p-value of :func:`one_run_p_value` is inverted by bisection."""
    if not 0 <= correct <= guesses <= m or guesses < 1:
        raise ValueError(f"need 0 <= correct <= guesses <= m and guesses >= 1; got {correct}, {guesses}, m={m}.")
    beta = 1.0 - confidence
    if delta == 0:
        p_lb, _ = clopper_pearson(correct, guesses, confidence=confidence, sided="lower")
        return max(0.0, math.log(p_lb / (1.0 - p_lb))) if 0 < p_lb < 1 else 0.0
    if one_run_p_value(correct, guesses, m=m, epsilon=0.0, delta=delta) >= beta:
        return 0.0
    low, high = 0.0, 1.0
    while one_run_p_value(correct, guesses, m=m, epsilon=high, delta=delta) < beta:
        low, high = high, 2 * high
    for _ in range(_BISECTIONS):
        mid = (low + high) / 2
        if one_run_p_value(correct, guesses, m=m, epsilon=mid, delta=delta) < beta:
            low = mid
        else:
            high = mid
    return low


def rating_epsilon_lower_bound(kept: int, held: int, flipped: int, not_held: int, *, confidence: float) -> float:
    """``max(0, log(TPR_lb / FPR_ub), log((1 - FPR_ub) / (1 - TPR_lb)))`` from two-sided Clopper--Pearson
    intervals of the true-positive rate ``kept / held`` and false-positive rate ``flipped / not_held``
    (each at ``(1 + confidence) / 2``, so both hold together at ``confidence``)."""
    tpr_lb, _ = clopper_pearson(kept, held, confidence=confidence)
    _, fpr_ub = clopper_pearson(flipped, not_held, confidence=confidence)
    bound = 0.0
    if tpr_lb > 0 and fpr_ub > 0:
        bound = max(bound, math.log(tpr_lb / fpr_ub))
    elif tpr_lb > 0:
        bound = math.inf
    if fpr_ub < 1 and tpr_lb < 1:
        bound = max(bound, math.log((1.0 - fpr_ub) / (1.0 - tpr_lb)))
    elif fpr_ub < 1:
        bound = math.inf
    return bound


# ---------------------------------------------------------------------- the claim
def _model_claim(model: Any) -> tuple[float, float, str] | str:
    """``(epsilon, delta, unit)`` the model claims, or why there is nothing to audit (cheap: no computation)."""
    if model is None:
        return "no model was given."
    name = type(model).__name__
    get = getattr(model, "privacy_report", None)
    report = get() if callable(get) else None
    if report is None:
        return f"the model ({name}) makes no differential-privacy claim (privacy_report() is None)."
    metrics = getattr(report, "metrics", None) or {}
    if "epsilon" not in metrics:
        return f"the model's privacy report ({name}) has no epsilon."
    epsilon = float(metrics["epsilon"])
    if not math.isfinite(epsilon):
        return f"the model ({name}) claims no guarantee (epsilon = inf)."
    delta = float(metrics.get("delta", 0.0))
    units = list((getattr(report, "groups", None) or {}).get("unit", {}))
    unit = units[0] if len(units) == 1 else getattr(model, "unit", None)
    if unit not in _UNITS:
        return f"the model's privacy unit must be one of {list(_UNITS)} to be audited; got {unit!r}."
    return epsilon, delta, str(unit)


def _unfitted_copy(model: Any) -> Any:
    """A fresh copy of a dataclass model with the same hyperparameters (learned state is not a field)."""
    return dataclasses.replace(model)


def _released_state(model: Any) -> str | None:
    """Which released output the statistic reads: item factors, an item-item similarity, or none."""
    get = getattr(model, "item_embeddings", None)
    if callable(get) and get() is not None:  # the model is fitted: it reported its guarantee
        return "factors"
    if sp.issparse(getattr(model, "similarity_", None)):
        return "similarity"
    return None


# ---------------------------------------------------------------------- the canary game
@dataclass(frozen=True, eq=False)
class _Game:
    """``fixed``: the training data of both worlds (no canary). Canary ``c`` is user ``users[c]``; its
    contribution is the interactions ``(var_item, var_weight)`` with ``var_owner == c``; its scoring row is its
    fixed row plus that contribution; its canary items are the contribution's items. ``reference``: whether
    the statistic subtracts the same under a fit on ``fixed`` alone (real canaries)."""

    fixed: Dataset
    users: NDArray[np.int64]
    var_owner: NDArray[np.int64]
    var_item: NDArray[np.int64]
    var_weight: NDArray[np.float32]
    reference: bool = True

    def world(self, included: NDArray[np.bool_]) -> Dataset:
        """The fixed data plus the included canaries' contributions (vocabularies unchanged)."""
        keep = included[self.var_owner]
        f = self.fixed
        return f.with_interactions(
            np.concatenate([f.user_idx, self.users[self.var_owner[keep]]]),
            np.concatenate([f.item_idx, self.var_item[keep]]),
            np.concatenate([f.weight, self.var_weight[keep]]), None)

    def statistic(self, model: Any, kind: str) -> NDArray[np.float64]:
        """Mean score of each canary's own canary items, computed from the model's released state only."""
        m, n_items = len(self.users), self.fixed.n_items
        fixed = self.fixed.to_csr()[self.users]
        var = sp.csr_matrix((self.var_weight.astype(np.float64), (self.var_owner, self.var_item)), shape=(m, n_items))
        rows = (fixed.astype(np.float64) + var).tocsr()
        rows.sum_duplicates()
        pairs = np.unique(self.var_owner * n_items + self.var_item)  # a repeated (canary, item) pair counts once
        pair_c, pair_j = pairs // n_items, pairs % n_items
        if kind == "factors":
            scores = _local_factor_scores(model, rows, pair_c, pair_j)
        else:
            scores = _local_similarity_scores(model.similarity_, rows, pair_c, pair_j)
        return np.bincount(pair_c, weights=scores, minlength=m) / np.maximum(np.bincount(pair_c, minlength=m), 1)


def _build_game(released: Dataset, *, unit: str, design: str, m: int, rng: np.random.Generator) -> _Game | str:
    """The canaries of one audit (all draws from ``rng``), or why there cannot be enough of them."""
    n_users, n_items = released.n_users, released.n_items
    counts = np.bincount(released.user_idx, minlength=n_users)
    weight = float(released.weight.max()) if released.n_interactions else 1.0
    if design == "crafted":
        m = min(m, n_items, n_users if unit == "user" else int(np.count_nonzero(counts)))
        if m < 2:
            return f"need at least 2 canaries; got {m} (users or items available)."
        if unit == "user":
            users = np.sort(rng.choice(n_users, size=m, replace=False))
        else:  # the users with the fewest released interactions (ties at random): one more weighs most there,
            # and a model that bounds contributions per user keeps all of it
            light = np.lexsort((rng.random(n_users), counts))
            users = np.sort(light[counts[light] > 0][:m])
        is_canary = np.zeros(n_users, dtype=bool)
        is_canary[users] = True
        fixed = released.subset(~is_canary[released.user_idx]) if unit == "user" else released
        popularity = np.bincount(fixed.item_idx, minlength=n_items)  # pairs, not distinct users: a ranking only
        rare = np.lexsort((rng.random(n_items), popularity))[:m]
        items = rare[rng.permutation(m)].astype(np.int64)
        # the canary items are emptied in both worlds: nobody but its canary holds one (a canary user of the
        # interaction unit keeps its other rows)
        is_rare = np.zeros(n_items, dtype=bool)
        is_rare[rare] = True
        fixed = fixed.subset(~is_rare[fixed.item_idx])
        return _Game(fixed=fixed, users=users, var_owner=np.arange(m), var_item=items,
                     var_weight=np.full(m, weight, dtype=np.float32), reference=False)
    # real canaries: users' own released rows, or one of their released items
    pool = np.flatnonzero(counts >= (1 if unit == "user" else 2))
    m = min(m, len(pool))
    if m < 2:
        return f"need at least 2 canaries; got {m} users with enough released interactions."
    users = np.sort(rng.choice(pool, size=m, replace=False))
    position = np.full(n_users, -1, dtype=np.int64)
    position[users] = np.arange(m)
    if unit == "user":
        var = position[released.user_idx] >= 0
    else:  # one random released interaction per canary user (all rows of that (user, item) pair)
        pair_key = released.user_idx.astype(np.int64) * n_items + released.item_idx
        rows_of = np.flatnonzero(position[released.user_idx] >= 0)
        owner_of = position[released.user_idx[rows_of]]
        order = np.lexsort((rng.random(len(rows_of)), owner_of))
        first = order[np.r_[True, owner_of[order][1:] != owner_of[order][:-1]]]
        var = np.zeros(released.n_interactions, dtype=bool)
        var[rows_of] = np.isin(pair_key[rows_of], pair_key[rows_of[first]])
    owner = position[released.user_idx[var]]
    return _Game(fixed=released.subset(~var), users=users, var_owner=owner,
                 var_item=released.item_idx[var].astype(np.int64), var_weight=released.weight[var].astype(np.float32),
                 reference=True)


# ---------------------------------------------------------------------- local scores from released state
def _local_factor_scores(model: Any, rows: sp.csr_matrix, pair_c: NDArray[np.int64],
                         pair_j: NDArray[np.int64]) -> NDArray[np.float64]:
    """Score of item ``pair_j`` for canary ``pair_c``: the canary's factor solved from its own row against the
    released item factors (the implicit-ALS user step: confidences ``alpha * weight``, ridge ``regularization``)."""
    Y = np.asarray(model.item_embeddings(), dtype=np.float64)
    d = Y.shape[1]
    reg = float(getattr(model, "regularization", 0.0) or 0.0)
    conf = rows.copy()
    conf.data = conf.data * float(getattr(model, "alpha", 1.0) or 1.0)
    base = Y.T @ Y + reg * np.eye(d)
    rhs = np.asarray(conf @ Y)
    extra = conf.copy()
    extra.data = extra.data - 1.0  # the Gram term of confidences other than 1
    if np.any(extra.data != 0):
        outer = (Y[:, :, None] * Y[:, None, :]).reshape(len(Y), d * d)
        A = np.asarray(extra @ outer).reshape(-1, d, d) + base
        X = np.linalg.solve(A + 1e-12 * np.eye(d), rhs[..., None])[..., 0]
    else:
        X = np.linalg.solve(base + 1e-12 * np.eye(d), rhs.T).T
    return np.einsum("pd,pd->p", X[pair_c], Y[pair_j])


def _local_similarity_scores(similarity: Any, rows: sp.csr_matrix, pair_c: NDArray[np.int64],
                             pair_j: NDArray[np.int64]) -> NDArray[np.float64]:
    """Score of item ``pair_j`` for canary ``pair_c``: ``row @ similarity`` at that item."""
    scores = (rows @ sp.csr_matrix(similarity, dtype=np.float64)).tocsr()
    return np.asarray(scores[pair_c, pair_j]).ravel()


def _binary(data: Dataset) -> sp.csr_matrix:
    m = data.to_csr(binary=True)
    m.sort_indices()
    return m
