"""Regenerate docs/ui_runs.png: the MLflow runs view that `privrec ui` opens on, as a real headless Chromium
renders it (Debian's `chromium`, driven by Playwright).

    python docs/make_screenshot.py

It runs the end-to-end test tests/test_ui_browser.py (a two-job sweep `attack=none privacy.rate=0,0.5` in a
temporary SQLite store, `privrec ui` on it, the sweep's parent run expanded) and keeps its screenshot here.
Needs ML-100K (PRIVREC_DATA_DIR, or ./data) and `apt-get install -y chromium`.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "ui_runs.png"

if __name__ == "__main__":
    env = dict(os.environ, PRIVREC_UI_SCREENSHOT=str(OUT))
    test = "tests/test_ui_browser.py::test_chromium_shows_the_sweep_parent_run_in_the_runs_table"
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-rs", test], cwd=ROOT, env=env)
    if code == 0 and OUT.is_file():
        print(f"wrote {OUT.relative_to(ROOT)}")
    sys.exit(code)
