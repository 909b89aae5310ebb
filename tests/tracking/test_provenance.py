"""Which code a run ran, recorded for editable and non-editable installs alike, and tags that do not change
between identical runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from privrec.experiment import BUILD_INFO_FILE, code_version, git_state

REPO = Path(__file__).resolve().parents[2]
PRIVREC = [sys.executable, "-m", "privrec.cli"]
#: Tags that differ between identical runs by design: who wrote the run and when (none of privrec's other tags).
VOLATILE = {"privrec.liveness"}


def _git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org")
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


def _checkout(tmp_path: Path) -> Path:
    """A fresh git checkout of the working tree as it is now (committed once), without caches."""
    src = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "_build_info.json")
    src.mkdir()
    for name in ("pyproject.toml", "hatch_build.py", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "conf", src / "conf", ignore=ignore)
    for package in ("privrec", "hydra_plugins"):
        shutil.copytree(REPO / "src" / package, src / "src" / package, ignore=ignore)
    _git(src, "init", "-q")
    _git(src, "add", "-A")
    _git(src, "commit", "-qm", "snapshot")
    return src


@pytest.mark.slow
def test_a_wheel_built_from_a_checkout_records_its_commit(tmp_path):
    """``pip wheel .`` from a git checkout: hatch_build.py writes privrec/_build_info.json; the installed copy
    (no git around it) then records that commit as ``git.commit`` / ``mlflow.source.git.commit``."""
    src = _checkout(tmp_path)
    commit = _git(src, "rev-parse", "HEAD")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(tmp_path / "dist")],
                          cwd=src, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0 and "hatchling" in proc.stderr and ("Could not find" in proc.stderr
                                                                 or "No matching distribution" in proc.stderr):
        pytest.skip("pip could not fetch hatchling for the isolated build (no package index here)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("privrec-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        info = json.loads(zf.read(f"privrec/{BUILD_INFO_FILE}"))
        zf.extractall(tmp_path / "site")
    assert info == {"git_commit": commit, "git_dirty": False, "version": "0.1.0"}
    assert not (src / "src" / "privrec" / BUILD_INFO_FILE).exists()  # the source tree is left as it was
    installed = code_version(tmp_path / "site" / "privrec")
    assert installed == {"git.commit": commit, "git.dirty": "false", "mlflow.source.git.commit": commit,
                         "privrec.code_source": "build"}


def test_an_editable_checkout_reports_its_live_git_state():
    tags = code_version(REPO / "src" / "privrec")
    assert tags["privrec.code_source"] == "checkout"
    assert tags["git.commit"] == tags["mlflow.source.git.commit"] == _git(REPO, "rev-parse", "HEAD")


def test_a_package_inside_another_repository_is_not_its_checkout(tmp_path):
    """An installed copy in a virtualenv inside some project's repository must not report that project's commit."""
    _git(tmp_path, "init", "-q")
    package = tmp_path / ".venv" / "lib" / "site-packages" / "privrec"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "x")
    assert git_state(package) == {}
    assert code_version(package) == {"privrec.code_source": "unknown"}
    (package / BUILD_INFO_FILE).write_text(json.dumps({"git_commit": "ab" * 20, "git_dirty": True}))
    assert code_version(package)["git.commit"] == "ab" * 20 and code_version(package)["git.dirty"] == "true"


def _run(args, cwd, data_dir):
    env = dict(os.environ, PRIVREC_DATA_DIR=str(data_dir), MLFLOW_TRACKING_URI=f"sqlite:///{cwd}/mlflow.db",
               PRIVREC_JOBS="1")
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run(PRIVREC + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.slow
def test_identical_runs_have_identical_tags(tmp_path, shared_data_dir):
    """Two identical runs (each its own process) carry the same tags, BLAS order included; a one-job sweep's
    worker (other import order) records the same BLAS tag."""
    from mlflow.tracking import MlflowClient

    args = ["run", "model.iterations=2", "model.factors=8", "progress=false", "parallel_attacks=false"]
    _run(args, tmp_path, shared_data_dir)
    _run(args, tmp_path, shared_data_dir)
    _run(["run", "-m", *args[1:]], tmp_path, shared_data_dir)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("privrec").experiment_id],
                              order_by=["attributes.start_time ASC"])
    first, second, job = (r for r in runs if r.data.tags.get("privrec.sweep") != "true")
    differ = {k for k in first.data.tags.keys() | second.data.tags.keys()
              if first.data.tags.get(k) != second.data.tags.get(k)}
    assert differ <= VOLATILE, differ
    assert first.info.run_name == second.info.run_name == job.info.run_name == "ConsentDrop ALS seed=0"
    assert job.data.tags["blas"] == first.data.tags["blas"]
    assert first.data.tags["mlflow.source.type"] == "LOCAL" and job.data.tags["mlflow.source.type"] == "JOB"
