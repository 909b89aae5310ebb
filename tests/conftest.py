import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PRIVREC_DATA_DIR", REPO.parent / "shared" / "datasets")).resolve()


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    if not (SHARED / "ml-100k" / "u.data").is_file():
        pytest.skip(f"ML-100K not found under {SHARED}; set PRIVREC_DATA_DIR")
    return SHARED
