"""Ranking and beyond-accuracy metrics, and per-segment evaluation of a fitted recommender.

Definitions and normalisations: ``docs/metrics.md``.
"""

from privrec.evaluation.evaluate import Evaluation, attribute_segments, evaluate, metric_key
from privrec.evaluation.metrics import (
    RANKING_METRICS,
    auc,
    gini_exposure,
    item_coverage,
    mean_popularity,
    ranking_metrics,
)

__all__ = [
    "Evaluation",
    "RANKING_METRICS",
    "attribute_segments",
    "auc",
    "evaluate",
    "gini_exposure",
    "item_coverage",
    "mean_popularity",
    "metric_key",
    "ranking_metrics",
]
