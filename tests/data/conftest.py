"""Fixtures for the data-layer tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_datasets_dir() -> Path:
    """``$PRIVREC_DATA_DIR``, else ``<repo>/../shared/datasets``."""
    env = os.environ.get("PRIVREC_DATA_DIR")
    return Path(env) if env else Path(__file__).parents[2] / ".." / "shared" / "datasets"


@pytest.fixture
def datasets_dir() -> Path:
    """The folder holding ``ml-100k/``; skips the test when there is no copy."""
    root = shared_datasets_dir()
    if not (root / "ml-100k" / "u.data").is_file() or not (root / "ml-100k" / "u.user").is_file():
        pytest.skip(f"no ML-100K copy under {root}")
    return root
