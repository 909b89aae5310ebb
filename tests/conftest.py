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


# Property tests draw the same examples on every run (reproducible CI); explore new ones with
# HYPOTHESIS_PROFILE=explore (or pytest --hypothesis-seed=N).
from hypothesis import settings  # noqa: E402

settings.register_profile("privrec", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "privrec"))
