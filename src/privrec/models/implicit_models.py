"""Wrappers around the CPU models of `implicit <https://github.com/benfred/implicit>`_ (0.7.x).

Each wrapper is a keyword-only dataclass whose fields are implicit's own hyperparameter names (so its Hydra
node is ``_target_: privrec.models.ALS`` plus those fields), validated when built. On top of implicit they
add the privrec model contract:

- ``fit(train, *, rng)`` builds the users x items CSR of confidences from ``train``, creates a **fresh**
  implicit model (a second ``fit`` of the same implicit object would warm-start from the old factors), seeds
  it with ``int_seed(rng)``, trains with BLAS limited to one thread, and fits the fallback (default
  :class:`~privrec.models.Popularity`) on the same data with an independent child generator.
- ``recommend`` serves users with training rows through implicit's batched ``recommend`` and every other
  user through the fallback (``Recommendations.fallback`` true), merged in input order, padded with -1/-inf.
- ``score`` returns dense scores that reproduce implicit's ranking.
- ALS, BPR and LMF are :class:`~privrec.models.FactorizationModel` subclasses: ``score``,
  ``user_embeddings`` / ``item_embeddings`` (implicit's ``user_factors`` / ``item_factors``, bias columns
  included) and the fallback come from there; only fitting (implicit) and the top-n selection (implicit's
  own, so lists keep its exact tie order) are implicit's. Attacks use the embeddings, never ``model_``.
- ``deterministic``: ALS and item-kNN always; BPR and LMF only with ``num_threads=1``; and in every case
  only when the fallback is deterministic too.

Quirks of implicit 0.7.3 handled here (checked against the installed source):

- The matrix-factorisation ``recommend`` with ``N`` larger than the catalogue fills the extra slots with
  item 0 and score 0 (uninitialised output), so ``N`` is capped at the number of items.
- Filtered (seen) items are not removed but returned last with score ``-FLT_MAX`` when ``N`` exceeds the
  number of unseen items; such slots become padding.
- The nearest-neighbour scorer "removes" seen items by setting their score to 0, so they can still appear
  in the list (after the positive scores); we drop them, over-fetching by the user's number of seen items.
  It returns only items that share a neighbour with the user's items, padding with -1/``-FLT_MAX``.
- Factors: ALS has none extra; BPR appends an item-bias column to ``item_factors`` and a constant 1 to
  ``user_factors``; LMF appends two (user bias / item bias pairs). ``user_factors @ item_factors.T`` is
  therefore exactly implicit's score for every model, which ``score`` uses.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import implicit.cpu.als
import implicit.cpu.bpr
import implicit.cpu.lmf
import implicit.nearest_neighbours
import implicit.utils
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from privrec.models._common import (
    check_choice,
    check_fallback,
    check_float,
    check_int,
    empty_lists,
    normalize_lists,
    track_progress,
)
from privrec.models._routing import RoutedModel
from privrec.models.base import Recommender
from privrec.models.factorization import FactorizationModel
from privrec.random import int_seed

__all__ = ["ALS", "BPR", "ImplicitRecommender", "ItemKNN", "LMF"]


class ImplicitRecommender(RoutedModel):
    """Shared logic of the implicit wrappers (see the module docstring for the contract).

    Subclasses are dataclasses with the hyperparameter fields (including ``num_threads`` and ``fallback``)
    and implement :meth:`_new_model`; :class:`ItemKNN` also scores, the factor models inherit scoring,
    embeddings and the rest of the plumbing from :class:`~privrec.models.FactorizationModel`.

    Learned state: ``model_`` (the implicit model), ``fallback_`` (the fitted fallback, a copy of
    ``fallback``), ``user_items_`` (CSR confidences, users x items), ``has_data_`` (users with at least one
    training row), ``n_fallback_users_``, ``n_users_``, ``n_items_``.
    """

    num_threads: int
    fallback: Recommender | None

    #: Whether implicit's recommend may return seen items with a real-looking score (nearest neighbours).
    _returns_seen: ClassVar[bool] = False

    # ------------------------------------------------------------------ hooks
    def _new_model(self, random_state: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_model(self, model: Any, user_items: sp.csr_matrix) -> None:
        """implicit's ``fit``, its iterations reported through :mod:`privrec.progress` (implicit's public
        ``callback``, called after every iteration; its own tqdm bar stays off)."""
        name = f"fit {type(self).__name__}"
        with track_progress(name, int(getattr(model, "iterations", 0) or 0), unit="iterations") as bar:
            model.fit(user_items, show_progress=False, callback=lambda *_: bar.update(1))

    def _check_common(self) -> None:
        check_int("num_threads", self.num_threads, minimum=0)
        check_fallback(self.fallback)

    # ------------------------------------------------------------------ fitting
    def _fit_implicit(self, user_items: sp.csr_matrix, rng: np.random.Generator) -> Any:
        """A fresh implicit model (a second fit of the same object would warm-start), seeded from ``rng``
        and trained with BLAS limited to one thread."""
        random_state = int_seed(rng)  # implicit wants an int or a Generator; a RandomState crashes it
        with threadpool_limits(1, "blas"):
            model = self._new_model(random_state)
            self._fit_model(model, user_items)
        return model

    def _fit_known(self, user_items: sp.csr_matrix, *, rng: np.random.Generator) -> None:
        self.model_ = self._fit_implicit(user_items, rng)

    # ------------------------------------------------------------------ serving
    def _recommend_known(
        self, users: NDArray[np.int64], n: int, exclude_seen: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """implicit's batched recommend, in chunks of users so the (users x fetched) arrays stay bounded."""
        items, scores = empty_lists(len(users), n)
        extra = 0
        if exclude_seen and self._returns_seen:
            extra = int(np.diff(self.user_items_.indptr)[users].max())  # seen items may take slots
        n_fetch = min(n + extra, self.n_items_)  # beyond the catalogue implicit returns garbage (item 0, score 0)
        chunk = max(1, self.block_elements // n_fetch)
        for start in range(0, len(users), chunk):
            u = users[start : start + chunk]
            rows = self.user_items_[u]
            ids, sc = self.model_.recommend(u, rows, N=n_fetch, filter_already_liked_items=exclude_seen)
            items[start : start + len(u)], scores[start : start + len(u)] = normalize_lists(
                ids, sc, n, seen=rows if exclude_seen else None
            )
        return items, scores


class _ImplicitFactorModel(FactorizationModel, ImplicitRecommender):
    """An implicit matrix-factorisation model: its factors feed :class:`FactorizationModel` (scores,
    embeddings, fallback); lists keep implicit's own top-k, so they are exactly implicit's, tie order
    included."""

    def _fit_factors(self, user_items: sp.csr_matrix, *, rng: np.random.Generator) -> tuple[NDArray, NDArray]:
        model = self._fit_implicit(user_items, rng)
        self.model_ = model
        return model.user_factors, model.item_factors

    _recommend_known = ImplicitRecommender._recommend_known


class _SGDFactorModel(_ImplicitFactorModel):
    def _fit_is_deterministic(self) -> bool:
        """SGD threads race on shared factors: bit-reproducible with one thread only."""
        return int(self.num_threads) == 1


@dataclass(kw_only=True, eq=False)
class ALS(_ImplicitFactorModel):
    """Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren & Volinsky, 2008),
    with the conjugate-gradient solver of Takács, Pilászy & Tikk (2011): ``implicit.cpu.als.AlternatingLeastSquares``.

    Confidence is ``alpha * weight`` for observed pairs. Seeded ALS is deterministic for any ``num_threads``.
    """

    factors: int = 64
    regularization: float = 0.01
    alpha: float = 1.0
    iterations: int = 15
    num_threads: int = 1
    fallback: Recommender | None = None

    def __post_init__(self) -> None:
        check_int("factors", self.factors, minimum=1)
        check_float("regularization", self.regularization, low=0.0)
        check_float("alpha", self.alpha, low=0.0, low_open=True)
        check_int("iterations", self.iterations, minimum=1)
        self._check_common()

    def _new_model(self, random_state: int) -> implicit.cpu.als.AlternatingLeastSquares:
        return implicit.cpu.als.AlternatingLeastSquares(
            factors=int(self.factors),
            regularization=float(self.regularization),
            alpha=float(self.alpha),
            iterations=int(self.iterations),
            num_threads=int(self.num_threads),
            random_state=random_state,
        )


@dataclass(kw_only=True, eq=False)
class BPR(_SGDFactorModel):
    """Bayesian Personalized Ranking (Rendle et al., 2009) by SGD: ``implicit.cpu.bpr.BayesianPersonalizedRanking``.

    Weights are ignored (every stored pair is a positive). Deterministic for a fixed seed only with
    ``num_threads=1``: threads race on shared factors.
    """

    factors: int = 64
    learning_rate: float = 0.01
    regularization: float = 0.01
    iterations: int = 100
    num_threads: int = 1
    fallback: Recommender | None = None

    def __post_init__(self) -> None:
        check_int("factors", self.factors, minimum=1)
        check_float("learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_float("regularization", self.regularization, low=0.0)
        check_int("iterations", self.iterations, minimum=1)
        self._check_common()

    def _new_model(self, random_state: int) -> implicit.cpu.bpr.BayesianPersonalizedRanking:
        return implicit.cpu.bpr.BayesianPersonalizedRanking(
            factors=int(self.factors),
            learning_rate=float(self.learning_rate),
            regularization=float(self.regularization),
            iterations=int(self.iterations),
            num_threads=int(self.num_threads),
            random_state=random_state,
        )


@dataclass(kw_only=True, eq=False)
class LMF(_SGDFactorModel):
    """Logistic Matrix Factorization (Johnson, 2014): ``implicit.cpu.lmf.LogisticMatrixFactorization``.

    ``neg_prop`` negatives are sampled per positive. Deterministic for a fixed seed with ``num_threads=1``.
    """

    factors: int = 30
    learning_rate: float = 1.0
    regularization: float = 0.6
    iterations: int = 30
    neg_prop: int = 30
    num_threads: int = 1
    fallback: Recommender | None = None

    def __post_init__(self) -> None:
        check_int("factors", self.factors, minimum=1)
        check_float("learning_rate", self.learning_rate, low=0.0, low_open=True)
        check_float("regularization", self.regularization, low=0.0)
        check_int("iterations", self.iterations, minimum=1)
        check_int("neg_prop", self.neg_prop, minimum=1)
        self._check_common()

    def _new_model(self, random_state: int) -> implicit.cpu.lmf.LogisticMatrixFactorization:
        return implicit.cpu.lmf.LogisticMatrixFactorization(
            factors=int(self.factors),
            learning_rate=float(self.learning_rate),
            regularization=float(self.regularization),
            iterations=int(self.iterations),
            neg_prop=int(self.neg_prop),
            num_threads=int(self.num_threads),
            random_state=random_state,
        )


_SIMILARITIES = ("cosine", "bm25")


@dataclass(kw_only=True, eq=False)
class ItemKNN(ImplicitRecommender):
    """Item-based nearest neighbours (Sarwar et al., 2001): ``implicit.nearest_neighbours.CosineRecommender``
    or ``BM25Recommender`` (Robertson & Zaragoza, 2009 weighting; ``K1`` and ``B`` apply to ``bm25`` only).

    Keeps the ``K`` most similar items per item; a user's score for item *j* is
    ``sum_i weight(user, i) * similarity(i, j)``. Items sharing no neighbour with the user's items are never
    recommended (lists are padded instead). Deterministic; ``rng`` only seeds the fallback.

    Extra learned state: ``similarity_`` (item x item CSR, float32, the matrix implicit's scorer uses).
    """

    similarity: str = "cosine"
    K: int = 20
    K1: float = 1.2
    B: float = 0.75
    num_threads: int = 1
    fallback: Recommender | None = None

    _returns_seen: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_choice("similarity", self.similarity, _SIMILARITIES)
        check_int("K", self.K, minimum=1)
        check_float("K1", self.K1, low=0.0)
        check_float("B", self.B, low=0.0, high=1.0)
        self._check_common()

    def _new_model(self, random_state: int) -> implicit.nearest_neighbours.ItemItemRecommender:
        if self.similarity == "bm25":
            return implicit.nearest_neighbours.BM25Recommender(
                K=int(self.K), K1=float(self.K1), B=float(self.B), num_threads=int(self.num_threads)
            )
        return implicit.nearest_neighbours.CosineRecommender(K=int(self.K), num_threads=int(self.num_threads))

    def _fit_model(self, model: Any, user_items: sp.csr_matrix) -> None:
        with warnings.catch_warnings():
            # implicit converts its own weighted matrix from COO and warns about it; nothing for callers to fix
            warnings.simplefilter("ignore", implicit.utils.ParameterWarning)
            model.fit(user_items, show_progress=False)

    def _fit_known(self, user_items: sp.csr_matrix, *, rng: np.random.Generator) -> None:
        super()._fit_known(user_items, rng=rng)
        self.similarity_ = self.model_.similarity.astype(np.float32)  # the precision implicit's scorer uses

    def _known_scores(self, users: NDArray[np.int64]) -> NDArray[np.float32]:
        return np.asarray((self.user_items_[users] @ self.similarity_).toarray(), dtype=np.float32)
