"""Recommenders: wrappers around implicit, popularity, and the fallback for users without data.

Every model follows :class:`Recommender`: ``fit(train, *, rng)`` returns self, learned state ends in ``_``,
``recommend``/``score`` before ``fit`` raise :class:`~privrec.errors.NotFittedError`, and users with no
training rows are served by the fallback (:class:`Popularity` unless configured otherwise).
"""

from privrec.models.base import Recommendations, Recommender
from privrec.models.demographic import DemographicPopularity
from privrec.models.implicit_models import ALS, BPR, LMF, ImplicitRecommender, ItemKNN
from privrec.models.popularity import Popularity

__all__ = sorted(
    ["ALS", "BPR", "DemographicPopularity", "ImplicitRecommender", "ItemKNN", "LMF", "Popularity", "Recommendations", "Recommender"]
)
