"""Shared helpers for the tracking tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def empty_mlflow_store(request):
    """``make(db)`` writes an empty, initialised MLflow SQLite store at ``db``."""
    return lambda db: _empty_store(request, db)


def _empty_store(request, db: Path) -> None:
    """An empty store at ``db``. Creating MLflow's schema (alembic migrations) takes ~5 s, so an empty store is
    kept in pytest's cache per MLflow version and copied (a fresh one when the cache plugin is off)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    cache = getattr(request.config, "cache", None)
    template = cache.mkdir(f"privrec-mlflow-{mlflow.__version__}") / "empty.db" if cache is not None else None
    if template is not None and template.is_file():
        shutil.copyfile(template, db)
        return
    MlflowClient(f"sqlite:///{db}").search_experiments()  # creates the schema
    if template is not None:
        partial = template.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(db, partial)
        os.replace(partial, template)


