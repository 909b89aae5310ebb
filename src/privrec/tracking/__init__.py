"""Experiment tracking: run records and the stores they are written to. The only package that imports mlflow
(lazily, inside the store and query modules, so importing it stays cheap)."""

from privrec.tracking.record import RunRecord
from privrec.tracking.store import RunStore, Written, open_store, repair, write_record
from privrec.tracking.uri import DEFAULT_TRACKING_URI, StoreURI, parse_tracking_uri, resolve_tracking_uri

__all__ = ["DEFAULT_TRACKING_URI", "RunRecord", "RunStore", "StoreURI", "Written", "open_store",
           "parse_tracking_uri", "repair", "resolve_tracking_uri", "write_record"]
