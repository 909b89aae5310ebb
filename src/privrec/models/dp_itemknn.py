"""Differentially private item-based nearest neighbours from noisy item-item statistics (McSherry & Mironov,
KDD 2009)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from privrec.errors import DataValidationError
from privrec.models._common import (
    check_choice,
    check_fallback,
    check_float,
    check_int,
    top_k_scores,
)
from privrec.models._routing import RoutedModel
from privrec.models.base import Recommender
from privrec.models.dp_als import bound_contributions, checked, fit_report
from privrec.privacy.accounting import (
    ACCOUNTANTS,
    MECHANISMS,
    UNITS,
    calibrate_noise_multiplier,
    check_delta,
    check_epsilon,
    epsilon_spent,
)
from privrec.privacy.base import PrivacyReport

__all__ = ["DPItemKNN"]

#: Largest ``n_items ** 2`` the dense noisy item-item matrix may have (2 GiB of float64).
MAX_DENSE_CELLS = 1 << 28


@dataclass(kw_only=True, eq=False)
class DPItemKNN(RoutedModel):
    """Item-based kNN (cosine, like :class:`~privrec.models.ItemKNN`) on differentially private item-item
    statistics, after McSherry & Mironov, *Differentially Private Recommender Systems: Building Privacy into
    the Netflix Prize Contenders*, KDD 2009: bound each user's contribution, add noise once to the item
    counts and item-item co-occurrences, and compute every similarity from the noisy statistics alone.
    (Their paper works with ratings and a covariance; with implicit feedback the co-occurrence matrix of
    the confidence weights plays that role, and the similarity is the cosine ItemKNN uses.)

    **Guarantee.** The item-item similarity matrix (and so everything computed from it alone, e.g. the items
    recommended to *other* users) is ``(epsilon, delta)``-differentially private for neighbouring training
    sets that differ by adding or removing one *user* with all their interactions (``unit="user"``) or one
    *interaction* (``unit="interaction"``). One release; ``epsilon`` is the accountant's for the noise used.

    **What it does not protect.** A user's recommendations are ``their own interactions @ similarity``:
    computed from their raw data, so they reveal that user's data to whoever sees them. The catalogue, the
    number of users, and which users have training data (they are routed to the fallback) are public.
    ``epsilon = inf`` protects nothing: no noise, no bounds -- exact cosine item-kNN.

    **Mechanism.**

    1. Contribution bounds: each user keeps at most ``max_items_per_user`` interactions (a uniform random
       subset drawn from ``rng``), weights clipped to ``[0, max_weight]``, and -- McSherry & Mironov's
       per-user weighting -- the user's outer product counts ``1 / n_u`` (``n_u``: items the user kept), so
       heavy users weigh no more than light ones and the L2 sensitivity does not grow with their history.
    2. Statistics: ``C = sum_u x_u x_u^T / n_u`` over the bounded rows ``x_u`` -- the diagonal holds the
       (weighted) item counts, the rest the co-occurrences. Noise is added to the upper triangle (diagonal
       included) and mirrored: Gaussian with std ``noise_multiplier * L2 sensitivity`` or Laplace with scale
       ``noise_multiplier * L1 sensitivity`` (``mechanism``).
    3. Post-processing: ``sim(i, j) = C_ij / sqrt((max(C_ii, 0) + s) (max(C_jj, 0) + s))`` with
       ``s = shrinkage * noise_std`` (shrinks the similarities of rarely seen items towards 0, as McSherry &
       Mironov shrink their noisy averages; ``s = 0`` without noise); each item keeps its ``K`` most similar
       items (itself included, as implicit does); a user's score for item ``j`` is
       ``sum_i weight(user, i) * sim(i, j)`` over the user's own (unbounded) interactions.

    **Sensitivity** of the released triangle (``k = max_items_per_user``, ``W = max_weight``; a user with
    ``n`` kept items contributes entries ``x_a x_b / n <= W^2 / n`` for ``n (n + 1) / 2`` pairs ``a <= b``):

    - user: L2 ``W^2 max_n sqrt((n + 1) / (2 n)) = W^2`` (``n = 1``), whatever ``k``; L1 ``W^2 (k + 1) / 2``.
    - interaction: adding one to ``n >= 1`` kept items rescales the old pairs by ``1/n - 1/(n+1)`` and adds
      ``n + 1`` pairs ``<= W^2 / (n + 1)`` (L2^2 ``<= 3/4 W^4``); to none adds one entry ``<= W^2``; when the
      user is at ``k`` and the new item displaces a kept one, ``2 k`` entries ``<= W^2 / k`` change (L2^2
      ``<= 2 W^4 / k``, L1 ``<= 2 W^2``). So L2 ``W^2 max(1, sqrt(2 / k))``, L1 ``2 W^2``. With the per-user
      weighting an interaction costs as much noise as a whole user.

    Without noise (``epsilon = inf``) none of the bounds or weights apply: ``C = X^T X`` and the similarity is
    plain cosine, as :class:`~privrec.models.ItemKNN` (``similarity="cosine"``) computes it.

    **Accounting.** One Gaussian (or Laplace) release, calibrated with `dp-accounting` (PLD accountant by
    default, RDP with ``accountant="rdp"``; add/remove neighbouring relation), see
    :mod:`privrec.privacy.accounting`.

    Memory is ``O(n_items^2)`` (the noisy matrix is dense: every pair gets noise); ``fit`` refuses catalogues
    above ``sqrt(MAX_DENSE_CELLS)`` items. No user embeddings. Deterministic for a seeded ``rng``.

    Learned state: ``similarity_`` (items x items CSR, float32, ``K`` entries per row) and the report
    values ``noise_multiplier_``, ``sensitivity_``, ``noise_std_``, ``max_items_contributed_``,
    ``max_weight_used_``, ``users_bounded_``, ``interactions_dropped_``, ``epsilon_spent_``; plus the state of
    every model with a fallback.
    """

    K: int = 400
    epsilon: float | str = 1.0
    delta: float = 1e-5
    unit: str = "user"
    max_items_per_user: int = 1000
    max_weight: float = 1.0
    mechanism: str = "gaussian"
    shrinkage: float = 100.0
    accountant: str = "pld"
    fallback: Recommender | None = None

    _owner: ClassVar[str] = "dp_itemknn"

    def __post_init__(self) -> None:
        owner = self._owner
        checked(owner, check_int, "K", self.K, minimum=1)
        self.epsilon = check_epsilon(owner, self.epsilon)
        self.delta = check_delta(owner, self.delta)
        checked(owner, check_choice, "unit", self.unit, choices=UNITS)
        checked(owner, check_int, "max_items_per_user", self.max_items_per_user, minimum=1)
        checked(owner, check_float, "max_weight", self.max_weight, low=0.0, low_open=True)
        checked(owner, check_choice, "mechanism", self.mechanism, choices=MECHANISMS)
        checked(owner, check_float, "shrinkage", self.shrinkage, low=0.0)
        checked(owner, check_choice, "accountant", self.accountant, choices=ACCOUNTANTS)
        check_fallback(self.fallback)

    # ------------------------------------------------------------------ privacy parameters
    @property
    def private(self) -> bool:
        """Whether the fit adds noise (``epsilon < inf``)."""
        return not math.isinf(float(self.epsilon))

    def sensitivity(self) -> float:
        """Sensitivity of the released triangle for the configured unit: L2 (Gaussian) or L1 (Laplace)."""
        k, w2 = float(self.max_items_per_user), float(self.max_weight) ** 2
        if self.mechanism == "gaussian":
            return w2 if self.unit == "user" else w2 * max(1.0, math.sqrt(2.0 / k))
        return w2 * (k + 1) / 2 if self.unit == "user" else 2.0 * w2

    def noise_multiplier(self) -> float:
        """The noise multiplier dp-accounting implies for (epsilon, delta) and one release; 0 at inf."""
        return calibrate_noise_multiplier(float(self.epsilon), float(self.delta), releases=1,
                                          mechanism=self.mechanism, accountant=self.accountant)

    # ------------------------------------------------------------------ fitting
    def _fit_known(self, user_items: sp.csr_matrix, *, rng: np.random.Generator) -> None:
        n_items = user_items.shape[1]
        if n_items * n_items > MAX_DENSE_CELLS:
            raise DataValidationError(
                f"DPItemKNN.fit train must have at most {math.isqrt(MAX_DENSE_CELLS)} items (the noisy item-item "
                f"matrix is dense); got {n_items}. Filter the catalogue (e.g. preprocess.item_core) first."
            )
        z = noise = 0.0
        if self.private:
            bounded = bound_contributions(user_items, int(self.max_items_per_user), rng).astype(np.float64)
            bounded.data = np.clip(bounded.data, 0.0, float(self.max_weight))
            kept = np.diff(bounded.indptr)
            # McSherry & Mironov's per-user weight: the user's outer product counts 1 / (items kept)
            bounded.data /= np.sqrt(np.repeat(np.maximum(kept, 1), kept))
            z = self.noise_multiplier()
            noise = z * self.sensitivity()  # Gaussian std or Laplace scale
        else:
            bounded = user_items.astype(np.float64)
        counts = np.diff(bounded.indptr)
        C = (bounded.T @ bounded).toarray()
        if noise > 0:
            C += self._symmetric_noise(rng, noise, n_items)
        noise_std = noise if self.mechanism == "gaussian" else noise * math.sqrt(2.0)
        norms = np.sqrt(np.maximum(np.diag(C), 0.0) + float(self.shrinkage) * noise_std)
        with np.errstate(divide="ignore", invalid="ignore"):
            S = C / norms[:, None] / norms[None, :]
        S[~np.isfinite(S)] = 0.0  # items nobody has, without noise: 0 / 0
        self.similarity_ = self._top_k(S)

        self.noise_multiplier_ = z
        self.sensitivity_ = self.sensitivity() if self.private else math.inf
        self.noise_std_ = noise_std
        self.max_items_contributed_ = int(counts.max(initial=0))
        self.max_weight_used_ = float(np.abs(bounded.data).max(initial=0.0))
        self.users_bounded_ = int(np.count_nonzero(np.diff(user_items.indptr) > counts))
        self.interactions_dropped_ = int(user_items.nnz - bounded.nnz)
        self.epsilon_spent_ = (epsilon_spent(z, float(self.delta), releases=1, mechanism=self.mechanism,
                                             accountant=self.accountant) if self.private else math.inf)

    def _symmetric_noise(self, rng: np.random.Generator, scale: float, n: int) -> NDArray[np.float64]:
        """Noise on the upper triangle (diagonal included), mirrored below: ``n (n + 1) / 2`` draws."""
        rows, cols = np.triu_indices(n)
        draws = (rng.normal(0.0, scale, len(rows)) if self.mechanism == "gaussian"
                 else rng.laplace(0.0, scale, len(rows)))
        out = np.zeros((n, n))
        out[rows, cols] = draws
        out[cols, rows] = draws
        return out

    def _top_k(self, S: NDArray[np.float64]) -> sp.csr_matrix:
        """Each row's ``K`` largest similarities (ties: lower item index first) as CSR float32."""
        n = S.shape[0]
        k = min(int(self.K), n)
        top, valid = top_k_scores(S.astype(np.float32), k)
        rows = np.repeat(np.arange(n), k)
        keep = valid.ravel()
        cols = top.ravel()[keep]
        values = S[rows[keep], cols].astype(np.float32)
        out = sp.csr_matrix((values, (rows[keep], cols)), shape=(n, n), dtype=np.float32)
        out.eliminate_zeros()
        out.sort_indices()
        return out

    # ------------------------------------------------------------------ serving
    def _known_scores(self, users: NDArray[np.int64]) -> NDArray[np.float32]:
        return np.asarray((self.user_items_[users] @ self.similarity_).toarray(), dtype=np.float32)

    # ------------------------------------------------------------------ report
    def privacy_report(self) -> PrivacyReport | None:
        """The guarantee of the fitted model, from what the fit used (``None`` before ``fit``)."""
        if getattr(self, "user_items_", None) is None:
            return None
        eps = float(self.epsilon_spent_)
        extra = {"max_weight": float(self.max_weight) if self.private else math.inf,
                 "max_weight_used": float(self.max_weight_used_)}
        if self.private:
            guarantee = (
                f"({eps:.4g}, {self.delta:g})-DP for the item-item similarities, unit: {self.unit} (add/remove "
                f"one {self.unit}); noisy item counts and co-occurrences after McSherry & Mironov 2009, one "
                f"{self.mechanism} release, noise multiplier {self.noise_multiplier_:.4g}, accounted with "
                f"dp-accounting ({self.accountant}). A user's own list is computed from their raw data and is "
                "not protected; the catalogue and which users have data are public."
            )
        else:
            guarantee = (f"no guarantee (epsilon=inf), unit: {self.unit}: exact cosine item-kNN, no noise and "
                         "no contribution bounds.")
        return fit_report(self, releases=1, extra=extra, guarantee=guarantee)

