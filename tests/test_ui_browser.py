"""``privrec ui`` end to end: a real sweep in a temporary SQLite store, ``privrec ui`` as a real process, the page
rendered by a real headless Chromium (Debian's ``chromium``, driven by Playwright; never Playwright's own browser
download), and the runs table checked for the sweep's parent run and its jobs.

``PRIVREC_UI_SCREENSHOT=docs/ui_runs.png`` keeps the screenshot there (``python docs/make_screenshot.py`` does
that); otherwise it goes to the test's temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

PRIVREC = [sys.executable, "-m", "privrec.cli"]
CHROMIUM = os.environ.get("PRIVREC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
RUNS_URL = re.compile(r"(http://127\.0\.0\.1:(\d+)/#/experiments/(\d+)/runs\?workflowType=machine_learning)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_DISABLE_TELEMETRY")}
    env.update(extra)
    return env


class _Lines:
    """The stdout of a process, line by line, readable with a timeout (a thread drains the pipe)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._drain, args=(proc,), daemon=True).start()

    def _drain(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            self.seen.append(line)
            match = pattern.search(line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern.pattern} within {timeout} s; got:\n{''.join(self.seen)}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started with ``start_new_session`` and everything in its session."""
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def sweep_store(tmp_path_factory, shared_data_dir):
    """A two-job sweep (privacy.rate=0,0.5, no attacks) in a fresh SQLite store: (uri, parent name, child names)."""
    from mlflow.tracking import MlflowClient

    folder = tmp_path_factory.mktemp("ui_store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    done = subprocess.run([*PRIVREC, "run", "-m", "attack=none", "privacy.rate=0,0.5"], cwd=folder,
                          env=_env(PRIVREC_DATA_DIR=str(shared_data_dir), MLFLOW_TRACKING_URI=uri,
                                   MLFLOW_DISABLE_TELEMETRY="true"),
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("privrec")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("privrec.sweep") == "true"]
    assert len(parents) == 1 and len(runs) == 3
    children = sorted(r.info.run_name for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id)
    assert len(children) == 2
    return uri, exp.experiment_id, parents[0].info.run_name, children


@pytest.fixture(scope="module")
def ui_server(sweep_store, tmp_path_factory):
    """``privrec ui`` on the sweep's store as a real process, shared by this module's tests (the last one stops
    it): (process, runs-view URL, experiment id)."""
    uri = sweep_store[0]
    port = _free_port()
    tmp_path = tmp_path_factory.mktemp("ui_cwd")
    # Telemetry deliberately not switched off here: privrec ui must do it for the server it starts.
    proc = subprocess.Popen([*PRIVREC, "ui", "--tracking-uri", uri, "--port", str(port)], cwd=tmp_path,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        lines = _Lines(proc)
        match = lines.wait_for(RUNS_URL, timeout=180)
        assert int(match.group(2)) == port
        yield proc, match.group(1), match.group(3)
    finally:
        _stop(proc)


def test_ui_prints_the_runs_view_binds_localhost_and_turns_telemetry_off(sweep_store, ui_server):
    import psutil

    proc, url, exp_id = ui_server
    assert exp_id == sweep_store[1]
    servers = psutil.Process(proc.pid).children(recursive=True)
    assert servers, "privrec ui started no MLflow server"
    listening = {(c.laddr.ip, c.laddr.port) for p in servers for c in p.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN}
    port = int(url.split(":")[2].split("/")[0])
    assert listening == {("127.0.0.1", port)}
    assert all(p.environ().get("MLFLOW_DISABLE_TELEMETRY") == "true" for p in servers)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ajax-api/3.0/mlflow/ui-telemetry", timeout=10) as r:
        assert b'"disable_ui_telemetry":true' in r.read().replace(b" ", b"")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install -y chromium)")
def test_chromium_shows_the_sweep_parent_run_in_the_runs_table(sweep_store, ui_server, tmp_path):
    from playwright.sync_api import sync_playwright

    _uri, _exp, parent, children = sweep_store
    _proc, url, _exp_id = ui_server
    shot = Path(os.environ.get("PRIVREC_UI_SCREENSHOT") or tmp_path / "ui_runs.png")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 640})
            page.goto(url)
            # the classic runs table (not the GenAI home page), with the sweep's parent run as a row
            parent_link = page.get_by_role("link", name=parent, exact=True)
            parent_link.wait_for(timeout=90_000)
            assert page.get_by_role("columnheader", name="Run Name", exact=True).count() >= 1
            assert page.get_by_role("link", name=children[0], exact=True).count() == 0  # collapsed under it
            cell = page.locator("[role=gridcell]", has=parent_link)
            cell.get_by_role("button").first.click()  # expand the parent (+)
            for child in children:
                page.get_by_role("link", name=child, exact=True).wait_for(timeout=30_000)
            close = page.get_by_role("button", name="Close")  # MLflow's assistant side panel, for the picture
            if close.count() == 1:
                close.click()
            page.wait_for_timeout(500)
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000


def test_ui_on_an_unreachable_server_is_one_line(tmp_path):
    port = _free_port()  # nothing listens there
    done = subprocess.run([*PRIVREC, "ui", "--tracking-uri", f"http://127.0.0.1:{port}"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "must be a reachable MLflow server" in done.stderr
    assert done.stdout == ""


def test_ui_without_a_store_is_one_line(tmp_path):
    done = subprocess.run([*PRIVREC, "ui", "--tracking-uri", "sqlite:///none.db"], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "needs an existing tracking store" in done.stderr and done.stderr.strip().count("\n") == 0
    assert not (tmp_path / "none.db").exists()


def test_ui_on_a_port_in_use_is_one_line(sweep_store, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([*PRIVREC, "ui", "--tracking-uri", sweep_store[0], "--port", str(port)], cwd=tmp_path,
                              env=_env(), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert f"--port must be free on 127.0.0.1; got {port}" in done.stderr


# Last: it stops the module's shared ui_server.
def test_terminating_privrec_ui_stops_its_server(ui_server):
    import psutil

    proc, _url, _exp = ui_server
    servers = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    _gone, alive = psutil.wait_procs(servers, timeout=30)
    assert not alive, f"{len(alive)} MLflow server process(es) outlived privrec ui"
