"""Ranking and beyond-accuracy metrics, and per-segment evaluation of a fitted recommender.

Segments smaller than ``evaluation.min_segment_users`` are never published on their own
(:func:`published_segments`).

Definitions and normalisations: ``docs/metrics.md``.
"""

from privrec.evaluation.evaluate import (
    Evaluation,
    check_max_users,
    evaluate,
    mean_interval,
    metric_key,
    sample_users,
)
from privrec.evaluation.metrics import (
    RANKING_METRICS,
    auc,
    gini_exposure,
    item_coverage,
    mean_popularity,
    ranking_metrics,
)
from privrec.evaluation.segments import (
    MIN_SEGMENT_USERS,
    attribute_segments,
    check_min_segment_users,
    published_segments,
)

__all__ = [
    "Evaluation",
    "MIN_SEGMENT_USERS",
    "RANKING_METRICS",
    "attribute_segments",
    "auc",
    "check_max_users",
    "check_min_segment_users",
    "evaluate",
    "gini_exposure",
    "item_coverage",
    "mean_interval",
    "mean_popularity",
    "metric_key",
    "published_segments",
    "ranking_metrics",
    "sample_users",
]
