"""Recommenders: wrappers around implicit, popularity, and the fallback for users without data.

Every model follows :class:`Recommender`: ``fit(train, *, rng)`` returns self, learned state ends in ``_``,
``recommend``/``score`` before ``fit`` raise :class:`~privrec.errors.NotFittedError`, and users with no
training rows are served by the fallback (:class:`Popularity` unless configured otherwise). Every model also
says whether it is ``deterministic``, exposes ``user_embeddings()`` (``None`` without a learned user
representation) and ``privacy_report()`` (``None`` unless the model is itself a privacy mechanism).
A new matrix-factorisation model subclasses :class:`FactorizationModel` and implements ``_fit_factors``.
:class:`DPALS` and :class:`DPItemKNN` are themselves privacy mechanisms (central differential privacy) and
report their guarantee through ``privacy_report()``.
"""

from privrec.models.base import Recommendations, Recommender
from privrec.models.demographic import DemographicPopularity
from privrec.models.dp_als import DPALS
from privrec.models.dp_itemknn import DPItemKNN
from privrec.models.factorization import FactorizationModel
from privrec.models.implicit_models import ALS, BPR, LMF, ImplicitRecommender, ItemKNN
from privrec.models.popularity import Popularity

__all__ = [  # plain sorted(), as tests/models/test_models_package.py checks
    "ALS",
    "BPR",
    "DPALS",
    "DPItemKNN",
    "DemographicPopularity",
    "FactorizationModel",
    "ImplicitRecommender",
    "ItemKNN",
    "LMF",
    "Popularity",
    "Recommendations",
    "Recommender",
]
