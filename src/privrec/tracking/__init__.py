"""Experiment tracking. The only package that imports mlflow (lazily, so importing it stays cheap)."""

from privrec.tracking.base import MemoryTracker, Tracker
from privrec.tracking.mlflow_tracker import DEFAULT_TRACKING_URI, MlflowTracker, ensure_store, resolve_tracking_uri

__all__ = sorted(["DEFAULT_TRACKING_URI", "MemoryTracker", "MlflowTracker", "Tracker", "ensure_store",
                  "resolve_tracking_uri"])
