import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]


def find_data_dir() -> Path | None:
    """The folder holding ``ml-100k/`` for the tests: ``$PRIVREC_DATA_DIR`` when set; else ``./data`` (where the
    first ``privrec run`` or ``privrec data fetch`` put it: the working directory's, then the checkout's); else the
    project machines' shared copy ``<repo>/../shared/datasets``; else None (the tests that need it skip)."""
    env = os.environ.get("PRIVREC_DATA_DIR")
    if env:
        return Path(env).resolve()
    for candidate in (Path.cwd() / "data", REPO / "data", REPO.parent / "shared" / "datasets"):
        if (candidate / "ml-100k" / "u.data").is_file():
            return candidate.resolve()
    return None


DATA_DIR = find_data_dir()
if DATA_DIR is not None:
    # Test modules and the commands they start read $PRIVREC_DATA_DIR: one copy for all of them.
    os.environ.setdefault("PRIVREC_DATA_DIR", str(DATA_DIR))
SHARED = DATA_DIR or REPO / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    if not (SHARED / "ml-100k" / "u.data").is_file():
        pytest.skip(f"ML-100K not found under {SHARED}; set PRIVREC_DATA_DIR or run `privrec data fetch ml-100k`")
    return SHARED


# Property tests draw the same examples on every run (reproducible CI); explore new ones with
# HYPOTHESIS_PROFILE=explore (or pytest --hypothesis-seed=N).
from hypothesis import settings  # noqa: E402

settings.register_profile("privrec", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "privrec"))
