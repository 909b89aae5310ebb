import os

import pandas as pd
import pytest
from reporting_helpers import build_runs

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def runs() -> pd.DataFrame:
    return build_runs()
