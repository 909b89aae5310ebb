"""Hatchling build hook: records the code version in the package when it is built from a git checkout.

``pip install .`` (not editable) copies the package into site-packages, where no git checkout is left to ask,
so a run could not record which commit it ran. This hook writes ``privrec/_build_info.json`` into the wheel
(and ``src/privrec/_build_info.json`` into the sdist, so a wheel built from the sdist keeps it):
``{"version", "git_commit", "git_dirty"}``. At run time :func:`privrec.experiment.code_version` prefers the
live git state of an editable checkout and falls back to this file.

Nothing is written for an editable install (the checkout itself is read at run time) or when the source tree
is not a git checkout (then a ``_build_info.json`` already in the tree, e.g. from an sdist, is packaged as is).
The file is generated in a temporary folder and added with ``force_include``: the source tree is never changed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUILD_INFO = "_build_info.json"


def git_info(root: str | Path) -> dict[str, Any] | None:
    """``{"git_commit", "git_dirty"}`` of the checkout whose top level is ``root``; None when it is not one."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False)

    try:
        top = git("rev-parse", "--show-toplevel")
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != Path(root).resolve():
            return None  # not a checkout, or a folder inside some other repository
        commit = git("rev-parse", "HEAD")
        if commit.returncode != 0:
            return None  # a repository without commits
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"git_commit": commit.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        self._tmp: str | None = None
        if version == "editable":
            return
        info = git_info(self.root)
        if info is None:
            return
        self._tmp = tempfile.mkdtemp(prefix="privrec-build-info-")
        path = Path(self._tmp) / BUILD_INFO
        path.write_text(json.dumps({"version": self.metadata.version, **info}, indent=1, sort_keys=True) + "\n",
                        encoding="utf-8")
        inside = f"src/privrec/{BUILD_INFO}" if self.target_name == "sdist" else f"privrec/{BUILD_INFO}"
        build_data["force_include"][str(path)] = inside

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if getattr(self, "_tmp", None):
            shutil.rmtree(self._tmp, ignore_errors=True)
