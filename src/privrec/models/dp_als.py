"""Differentially private alternating least squares (Chien et al., ICML 2021), in vectorised numpy."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from privrec.errors import ConfigError
from privrec.models._common import check_choice, check_fallback, check_float, check_int
from privrec.models.base import Recommender
from privrec.models.factorization import FactorizationModel
from privrec.privacy.accounting import (
    ACCOUNTANTS,
    UNITS,
    calibrate_noise_multiplier,
    check_delta,
    check_epsilon,
    epsilon_spent,
)
from privrec.privacy.base import PrivacyReport

__all__ = ["DPALS"]

#: Upper bound on the float64 elements of one gathered block when building per-row Gram matrices.
_GRAM_BLOCK = 1 << 21


def checked(owner: str, check: Callable[..., Any], name: str, value: object, **kwargs: Any) -> Any:
    """Run one of the shared model checks, naming the model (``dp_als.factors``) instead of ``model.``."""
    try:
        return check(name, value, **kwargs)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("model.", f"{owner}.", 1)) from None


def bound_contributions(user_items: sp.csr_matrix, k: int, rng: np.random.Generator) -> sp.csr_matrix:
    """Keep at most ``k`` stored entries per row, a uniform random subset (one uniform key per entry; the
    ``k`` smallest keys of a row are kept). Rows with ``<= k`` entries are unchanged. Vectorised."""
    counts = np.diff(user_items.indptr)
    keys = rng.random(user_items.nnz)
    if counts.max(initial=0) <= k:
        return user_items.copy()
    rows = np.repeat(np.arange(user_items.shape[0]), counts)
    order = np.lexsort((keys, rows))  # by row, then key
    rank = np.empty(user_items.nnz, dtype=np.int64)
    rank[order] = np.arange(user_items.nnz) - user_items.indptr[rows[order]]
    keep = rank < k
    out = sp.csr_matrix((user_items.data[keep], user_items.indices[keep], np.concatenate(
        ([0], np.cumsum(np.minimum(counts, k))))), shape=user_items.shape)
    out.has_sorted_indices = user_items.has_sorted_indices
    return out


def weighted_grams(m: sp.csr_matrix, F: NDArray[np.float64]) -> NDArray[np.float64]:
    """``out[r] = sum_j m[r, j] * F[j] F[j]^T`` for every row ``r`` of ``m``: ``(n_rows, d, d)``.

    Rows are sorted by length and gathered in zero-padded blocks of similar length, each block one stacked
    ``matmul`` (no Python loop over rows)."""
    n_rows, d = m.shape[0], F.shape[1]
    out = np.zeros((n_rows, d, d))
    lengths = np.diff(m.indptr)
    order = np.argsort(lengths, kind="stable")
    order = order[lengths[order] > 0]
    sorted_lengths = lengths[order]
    start = 0
    while start < len(order):
        # the next rows in length order, as many as fit the budget at the width of the block's longest row
        stops = np.arange(start + 1, len(order) + 1)
        size = (stops - start) * sorted_lengths[stops - 1] * d  # non-decreasing in the stop
        stop = int(stops[max(0, int(np.searchsorted(size, _GRAM_BLOCK, side="right")) - 1)])
        rows = order[start:stop]
        width = int(sorted_lengths[stop - 1])
        offsets = np.arange(width)
        valid = offsets[None, :] < lengths[rows, None]
        pos = np.minimum(m.indptr[rows, None] + offsets[None, :], m.nnz - 1)
        gathered = F[np.where(valid, m.indices[pos], 0)]  # (rows, width, d)
        weights = np.where(valid, m.data[pos], 0.0)
        out[rows] = np.matmul((gathered * weights[..., None]).transpose(0, 2, 1), gathered)
        start = stop
    return out


def _confidence_parts(c: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix, bool]:
    """implicit's reading of a confidence matrix: ``b`` uses ``c`` where ``c > 0`` (a negative value is a
    disliked item: preference 0), the Gram matrix adds ``(|c| - 1) y y^T``. Returns the right-hand-side
    matrix, the Gram-weight matrix and whether any Gram weight is non-zero."""
    rhs = c.copy()
    rhs.data = np.where(c.data > 0, c.data, 0.0)
    gram = c.copy()
    gram.data = np.abs(c.data) - 1.0
    return rhs, gram, bool(np.any(gram.data != 0))


def _add_symmetric_noise(rng: np.random.Generator, sigma: float, M: NDArray[np.float64]) -> None:
    """Add Gaussian noise with std ``sigma`` to the upper triangle (diagonal included) of every ``d x d`` matrix
    of the stack ``M`` and mirror it below, in place: ``d (d + 1) / 2`` draws per matrix."""
    d = M.shape[-1]
    rows, cols = np.triu_indices(d)
    draws = rng.normal(0.0, sigma, (*M.shape[:-2], len(rows)))
    M[..., rows, cols] += draws
    off = rows != cols
    M[..., cols[off], rows[off]] += draws[..., off]


def _psd_solve(A: NDArray[np.float64], b: NDArray[np.float64], floor: float) -> NDArray[np.float64]:
    """Solve ``A x = b`` for a stack of symmetric ``A`` after raising their eigenvalues to ``floor`` (a noisy
    Gram matrix can be indefinite; this is post-processing of released values). When every eigenvalue of
    every matrix exceeds ``floor`` (a Cholesky factorisation of ``A - floor I`` exists) the stack is solved
    directly; otherwise through a batched eigendecomposition (the slow part of the weighted path)."""
    d = A.shape[-1]
    try:
        np.linalg.cholesky(A - floor * np.eye(d))
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(A)
        coef = np.einsum("...ji,...j->...i", vectors, b) / np.maximum(values, floor)
        return np.einsum("...ij,...j->...i", vectors, coef)
    return np.asarray(np.linalg.solve(A, b[..., None])[..., 0], dtype=np.float64)


@dataclass(kw_only=True, eq=False)
class DPALS(FactorizationModel):
    """Differentially private implicit-feedback ALS after Chien et al., *Private Alternating Least Squares:
    Practical Private Matrix Completion with Tighter Rates*, ICML 2021 (the "DPALS" algorithm), on the
    confidence-weighted objective of Hu, Koren & Volinsky (2008) that :class:`~privrec.models.ALS` fits.

    **Guarantee.** The sequence of item-factor matrices (and everything computed from them alone: another
    user's recommendations, :meth:`item_embeddings`) is ``(epsilon, delta)``-differentially private, with
    ``delta`` as configured and ``epsilon`` as reported, for neighbouring training sets that differ by
    adding or removing one *user* with all their interactions (``unit="user"``) or one *interaction*
    (``unit="interaction"``). This is joint DP in the billboard model: item factors are published; each user
    solves their own factor locally from the published item factors and their own data, exactly and without
    noise.

    **What it does not protect.** A user's own factor (:meth:`user_embeddings`) and own recommendations are
    computed from that user's raw data: whoever sees them learns about that user (attacks that read user
    embeddings measure exactly this). Item identities and the catalogue, the number of users, and which
    users have any training data (they are routed to the fallback) are public. ``epsilon = inf`` protects
    nothing: no noise, no bounds -- plain ALS with exact solves.

    **Algorithm** (one noisy release per iteration, ``iterations`` releases in all):

    1. Contribution bounds: each user keeps at most ``max_items_per_user`` interactions for the item
       statistics (a uniform random subset drawn from ``rng`` once per fit); confidences there are
       ``alpha * clip(weight, min_weight, max_weight)``.
    2. Item factors start random (``rng``, data-independent). Each iteration, every user solves
       ``x_u = (Y^T C_u Y + regularization I)^-1 Y^T C_u p_u`` exactly from their *full* data; before
       ``x_u`` enters any item statistic it is clipped to L2 norm ``clip`` or, with ``normalize`` (the
       default), rescaled to norm exactly ``clip``. Both respect the bound the sensitivity pays for;
       rescaling also lifts short factors to it, so every user's signal uses the whole noise budget (on
       ML-100K at epsilon=1 it lifted validation nDCG@10 from about 0.04 to about 0.13).
    3. Noisy sufficient statistics: ``G = sum_u x_u x_u^T`` (all users), per item ``D_j = sum_u (c_uj - 1)
       x_u x_u^T`` (only when some confidence can differ from 1) and ``b_j = sum_u c_uj x_u``, each with
       Gaussian noise of std ``sigma = noise_multiplier * sensitivity`` (symmetric matrices: noise on the
       upper triangle, mirrored). Item factors ``y_j = (G + D_j + regularization I)^-1 b_j``, after raising
       the noisy matrix's eigenvalues to ``regularization`` (post-processing).
    4. After the last release every user solves their factor once more against the final item factors.

    **Sensitivity** (L2, of one release = the upper triangles of ``G`` and every ``D_j`` and all ``b_j``;
    ``k = max_items_per_user``, ``Gamma = clip``, ``c_hi = alpha * max_weight``, ``B = max |c - 1|`` over
    ``c`` in ``alpha * [min_weight, max_weight]`` (0 when every confidence is 1: then no ``D_j`` is released)):

    - user: one user adds ``x x^T`` to ``G`` (Frobenius ``<= Gamma^2``), ``(c - 1) x x^T`` to at most ``k``
      of the ``D_j`` and ``c x`` to at most ``k`` of the ``b_j``:
      ``Delta^2 = Gamma^4 + k B^2 Gamma^4 + k c_hi^2 Gamma^2``.
    - interaction: the user stays, but their factor ``x`` may move anywhere in the clip ball (it is solved
      from all their data) and one kept item may be swapped: ``Delta^2 = 2 Gamma^4 + 2 k B^2 Gamma^4 + 4 k
      c_hi^2 Gamma^2`` (``|x x^T - x' x'^T|_F <= sqrt(2) Gamma^2``, ``|x - x'| <= 2 Gamma``). For ALS this
      costs more noise than ``unit="user"`` at the same epsilon: a user's factor, which weights all their
      items' statistics, depends on every one of their interactions.

    **Accounting.** The ``iterations`` releases are an adaptive composition of Gaussian mechanisms; the noise
    multiplier is calibrated with `dp-accounting` (privacy-loss-distribution accountant by default, RDP with
    ``accountant="rdp"``; add/remove neighbouring relation) so that the composition is exactly
    ``(epsilon, delta)``-DP (see :mod:`privrec.privacy.accounting`). The report's ``epsilon`` is recomputed
    by the accountant for the multiplier and the number of releases the fit actually used.

    Hyperparameters: implicit's names for ALS (``factors``, ``regularization``, ``alpha``, ``iterations``);
    ``epsilon`` (``inf`` or ``"inf"``: no noise, no bounds), ``delta``, ``unit``, ``max_items_per_user``,
    ``clip``, ``normalize``, ``min_weight`` / ``max_weight`` (confidence clipping), ``accountant``. The
    defaults (8 factors, 2 iterations, ``regularization=0.1``, 50 items per user) were picked on a
    validation split of ML-100K's training data at epsilon=1: every iteration is one more noisy release.
    Deterministic for a seeded ``rng`` (every random draw comes from it; BLAS runs on one thread).

    Extra learned state: ``noise_multiplier_``, ``sensitivity_``, ``noise_std_``, ``releases_``,
    ``max_items_contributed_``, ``max_factor_norm_``, ``max_confidence_``, ``users_bounded_``,
    ``interactions_dropped_``, ``epsilon_spent_``.
    """

    factors: int = 8
    regularization: float = 0.1
    alpha: float = 1.0
    iterations: int = 2
    epsilon: float | str = 1.0
    delta: float = 1e-5
    unit: str = "user"
    max_items_per_user: int = 50
    clip: float = 1.0
    normalize: bool = True
    min_weight: float = 1.0
    max_weight: float = 1.0
    accountant: str = "pld"
    fallback: Recommender | None = None

    _owner: ClassVar[str] = "dp_als"

    def __post_init__(self) -> None:
        owner = self._owner
        checked(owner, check_int, "factors", self.factors, minimum=1)
        checked(owner, check_float, "regularization", self.regularization, low=0.0)
        checked(owner, check_float, "alpha", self.alpha, low=0.0, low_open=True)
        checked(owner, check_int, "iterations", self.iterations, minimum=1)
        self.epsilon = check_epsilon(owner, self.epsilon)
        self.delta = check_delta(owner, self.delta)
        checked(owner, check_choice, "unit", self.unit, choices=UNITS)
        checked(owner, check_int, "max_items_per_user", self.max_items_per_user, minimum=1)
        checked(owner, check_float, "clip", self.clip, low=0.0, low_open=True)
        if not isinstance(self.normalize, (bool, np.bool_)):
            raise ConfigError(f"{owner}.normalize must be true or false; got {self.normalize!r}.")
        checked(owner, check_float, "min_weight", self.min_weight, low=0.0)
        checked(owner, check_float, "max_weight", self.max_weight, low=0.0, low_open=True)
        if self.min_weight > self.max_weight:
            raise ConfigError(f"{owner}.min_weight must be <= max_weight ({self.max_weight:g}); "
                              f"got {self.min_weight:g}.")
        checked(owner, check_choice, "accountant", self.accountant, choices=ACCOUNTANTS)
        check_fallback(self.fallback)

    # ------------------------------------------------------------------ privacy parameters
    @property
    def private(self) -> bool:
        """Whether the fit adds noise (``epsilon < inf``)."""
        return not math.isinf(float(self.epsilon))

    def _confidence_bounds(self) -> tuple[float, float]:
        """``(B, c_hi)``: the largest ``|c - 1|`` and the largest ``c`` a bounded confidence can take."""
        lo, hi = self.alpha * self.min_weight, self.alpha * self.max_weight
        return max(abs(lo - 1.0), abs(hi - 1.0)), hi

    def sensitivity(self) -> float:
        """L2 sensitivity of one release for the configured unit and bounds (see the class docstring)."""
        k, gamma = float(self.max_items_per_user), float(self.clip)
        b, c_hi = self._confidence_bounds()
        if self.unit == "user":
            squared = gamma**4 + k * b**2 * gamma**4 + k * c_hi**2 * gamma**2
        else:
            squared = 2 * gamma**4 + 2 * k * b**2 * gamma**4 + 4 * k * c_hi**2 * gamma**2
        return math.sqrt(squared)

    def noise_multiplier(self) -> float:
        """The Gaussian noise multiplier dp-accounting implies for (epsilon, delta, iterations); 0 at inf."""
        return calibrate_noise_multiplier(float(self.epsilon), float(self.delta), releases=int(self.iterations),
                                          mechanism="gaussian", accountant=self.accountant)

    # ------------------------------------------------------------------ fitting
    def _fit_factors(self, user_items: sp.csr_matrix, *, rng: np.random.Generator) -> tuple[NDArray, NDArray]:
        with threadpool_limits(1, "blas"):
            return self._fit(user_items, rng)

    def _fit(self, user_items: sp.csr_matrix, rng: np.random.Generator) -> tuple[NDArray, NDArray]:
        n_items = user_items.shape[1]
        d, reg = int(self.factors), float(self.regularization)
        full = user_items.astype(np.float64) * float(self.alpha)  # the users' own data: never bounded
        full_rhs, full_gram, full_has_gram = _confidence_parts(full)

        z = sigma = 0.0
        if self.private:
            bounded = bound_contributions(user_items, int(self.max_items_per_user), rng).astype(np.float64)
            bounded.data = float(self.alpha) * np.clip(bounded.data, self.min_weight, self.max_weight)
            z = self.noise_multiplier()
            sigma = z * self.sensitivity()
            release_gram = self._confidence_bounds()[0] > 0
        else:
            bounded, release_gram = full, full_has_gram
        item_rhs, item_gram, _ = _confidence_parts(bounded.T.tocsr())
        counts = np.diff(bounded.indptr)

        Y = rng.random((n_items, d)) * 0.01  # data-independent start, implicit's scale
        max_norm = 0.0
        for _ in range(int(self.iterations)):
            X = _solve_users(full_rhs, full_gram if full_has_gram else None, Y, reg)
            if self.private:
                norms = np.linalg.norm(X, axis=1)
                scale = float(self.clip) / np.maximum(norms, 1e-300)
                X = X * (scale if self.normalize else np.minimum(1.0, scale))[:, None]
                max_norm = max(max_norm, float(np.linalg.norm(X, axis=1).max(initial=0.0)))
            Y = self._item_step(X, rhs=item_rhs, gram=item_gram if release_gram else None, reg=reg, sigma=sigma,
                                rng=rng)
        X = _solve_users(full_rhs, full_gram if full_has_gram else None, Y, reg)

        self.noise_multiplier_ = z
        self.sensitivity_ = self.sensitivity() if self.private else math.inf
        self.noise_std_ = sigma
        self.releases_ = int(self.iterations)
        self.max_items_contributed_ = int(counts.max(initial=0))
        self.max_factor_norm_ = max_norm if self.private else math.inf
        self.max_confidence_ = float(np.abs(bounded.data).max(initial=0.0))
        self.users_bounded_ = int(np.count_nonzero(np.diff(user_items.indptr) > counts))
        self.interactions_dropped_ = int(user_items.nnz - bounded.nnz)
        self.epsilon_spent_ = (epsilon_spent(z, float(self.delta), releases=self.releases_, accountant=self.accountant)
                               if self.private else math.inf)
        return X, Y

    def _item_step(self, X: NDArray[np.float64], *, rhs: sp.csr_matrix, gram: sp.csr_matrix | None, reg: float,
                   sigma: float, rng: np.random.Generator) -> NDArray[np.float64]:
        """Item factors from (noisy) sufficient statistics of the clipped user factors ``X``."""
        d = X.shape[1]
        G = X.T @ X
        b = rhs @ X
        D = weighted_grams(gram, X) if gram is not None else None
        if sigma > 0:
            _add_symmetric_noise(rng, sigma, G)
            b += rng.normal(0.0, sigma, b.shape)
            if D is not None:
                _add_symmetric_noise(rng, sigma, D)
        eye = reg * np.eye(d)
        if D is None:
            if sigma > 0:  # one noisy shared matrix: raise its eigenvalues to >= 0 (post-processing)
                values, vectors = np.linalg.eigh(G)
                G = (vectors * np.maximum(values, 0.0)) @ vectors.T
            return np.linalg.solve(G + eye, b.T).T
        A = D + G + eye
        if sigma > 0:
            return _psd_solve(A, b, reg)
        return np.linalg.solve(A, b[..., None])[..., 0]

    # ------------------------------------------------------------------ report
    def privacy_report(self) -> PrivacyReport | None:
        """The guarantee of the fitted model, from what the fit used (``None`` before ``fit``)."""
        if getattr(self, "user_items_", None) is None:
            return None
        eps = float(self.epsilon_spent_)
        extra = {"clip": float(self.clip) if self.private else math.inf,
                 "max_factor_norm": float(self.max_factor_norm_), "max_confidence": float(self.max_confidence_)}
        if self.private:
            guarantee = (
                f"({eps:.4g}, {self.delta:g})-DP for the item factors, unit: {self.unit} (add/remove one "
                f"{self.unit}); DP-ALS after Chien et al. 2021, {self.releases_} Gaussian releases, noise "
                f"multiplier {self.noise_multiplier_:.4g}, accounted with dp-accounting ({self.accountant}). "
                "Users' own factors and lists are computed from their raw data and are not protected; the "
                "catalogue and which users have data are public."
            )
        else:
            guarantee = (f"no guarantee (epsilon=inf), unit: {self.unit}: plain ALS with exact solves, no noise "
                         "and no contribution bounds.")
        return fit_report(self, releases=self.releases_, extra=extra, guarantee=guarantee)


def fit_report(model: Any, *, releases: float, extra: Mapping[str, float], guarantee: str) -> PrivacyReport:
    """A fitted DP model's report, from what its fit used: the measures every DP model shares (budget spent and
    targeted, noise, sensitivity, releases, contribution bounds), the model's own (``extra``) and its unit."""
    eps = float(model.epsilon_spent_)
    metrics = {
        "epsilon": eps,
        "epsilon_target": float(model.epsilon),
        "delta": float(model.delta),
        "noise_multiplier": float(model.noise_multiplier_),
        "noise_std": float(model.noise_std_),
        "sensitivity": float(model.sensitivity_),
        "iterations": float(releases),
        "max_items_per_user": float(model.max_items_per_user) if model.private else math.inf,
        "max_items_contributed": float(model.max_items_contributed_),
        "users_bounded": float(model.users_bounded_),
        "interactions_dropped": float(model.interactions_dropped_),
        **extra,
        "unit_is_user": 1.0 if model.unit == "user" else 0.0,
    }
    return PrivacyReport(transform=model._owner, guarantee=guarantee, metrics=metrics,
                         groups={"unit": {model.unit: {"epsilon": eps, "delta": float(model.delta)}}})


def _solve_users(rhs: sp.csr_matrix, gram: sp.csr_matrix | None, Y: NDArray[np.float64],
                 reg: float) -> NDArray[np.float64]:
    """Exact ALS user factors ``(Y^T Y + reg I + sum_j (|c_uj| - 1) y_j y_j^T)^-1 sum_j c_uj^+ y_j``, batched."""
    d = Y.shape[1]
    A = Y.T @ Y + reg * np.eye(d)
    B = rhs @ Y
    if gram is None:  # every confidence is 1: one shared matrix
        return np.linalg.solve(A, B.T).T
    X = np.zeros_like(B)
    active = np.flatnonzero(np.diff(gram.indptr) > 0)
    if active.size:
        stack = weighted_grams(gram[active], Y) + A
        X[active] = np.linalg.solve(stack, B[active][..., None])[..., 0]
    inactive = np.setdiff1d(np.arange(B.shape[0]), active)
    if inactive.size:
        X[inactive] = np.linalg.solve(A, B[inactive].T).T
    return X
