"""CLI polish: ``privrec --version``, Hydra's bash completion for ``privrec run`` in a real bash, help and log
names that say privrec, and the tests' data folder (``./data`` when the first run fetched it there)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import privrec

REPO = Path(__file__).resolve().parents[1]
PRIVREC = shutil.which("privrec") or str(Path(sys.executable).with_name("privrec"))
BASH = shutil.which("bash")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMP_", "HYDRA_"))}
    env["PATH"] = f"{Path(PRIVREC).parent}{os.pathsep}{env.get('PATH', '')}"  # the completion calls `privrec`
    env.update(extra)
    return env


def _privrec(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([PRIVREC, *args], check=False, cwd=cwd, env=_env(**env), capture_output=True, text=True,
                          timeout=300)


# ---------------------------------------------------------------------------------------------- --version
@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_names_the_release_and_the_commit(flag):
    proc = _privrec(flag)
    assert proc.returncode == 0 and proc.stderr == ""
    line = proc.stdout.strip()
    assert line.startswith(f"privrec {privrec.__version__}")
    git = shutil.which("git")
    head = (subprocess.run([git, "rev-parse", "HEAD"], check=False, cwd=REPO, capture_output=True, text=True)
            if git else None)
    if head is not None and head.returncode == 0:  # a checkout: the commit runs record
        assert f"(commit {head.stdout.strip()}" in line
    assert "\n" not in line


def test_run_version_names_privrec_then_hydra():
    proc = _privrec("run", "--version")
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0] == _privrec("--version").stdout.strip() and lines[1].startswith("Hydra ")


# ---------------------------------------------------------------------------------------------- completion
def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))


#: (command line, cursor position (None: the end), the candidates bash must offer; None: checked below)
CASES: list[tuple[str, int | None, list[str] | None]] = [
    ("privrec run mod", None, ["model.", "model="]),
    ("privrec run model=", None, [f"model={o}" for o in _options("model")]),
    ("privrec run model=b", None, ["model=bpr"]),
    ("privrec run privacy=k_anonymity privacy.k", None, ["privacy.k="]),
    ("privrec run -m privacy.r", None, ["privacy.rate=", "privacy.rates="]),
    ("privrec run experiment=kanon", None, ["experiment=kanon_tradeoff"]),
    ("privrec run mod seed=1", len("privrec run mod"), ["model.", "model="]),  # the cursor inside the line
    ("privrec rep", None, ["report", "reproduce"]),
    ("privrec ", None, None),
    ("privrec data ", None, None),
    ("privrec run ", None, None),
]


@pytest.fixture(scope="module")
def completions(tmp_path_factory) -> dict[str, tuple[list[str], str]]:
    """Source the script ``privrec run --shell-completion install=bash`` prints in ONE real bash and call its
    completion function as bash does on Tab (COMP_LINE, COMP_POINT, COMP_WORDS, COMP_CWORD set) for each case;
    -> line -> (candidates, what the call wrote to stderr)."""
    if BASH is None:
        pytest.skip("bash is not installed")
    out = tmp_path_factory.mktemp("completion")
    script = ['eval "$(privrec run --shell-completion install=bash)" || exit 3']
    for i, (line, cursor, _) in enumerate(CASES):
        point = len(line) if cursor is None else cursor
        cword = len(line[:point].split()) - (0 if line[:point].endswith(" ") else 1)
        script += [f"COMP_LINE='{line}'; COMP_POINT={point}; COMP_CWORD={cword}; COMP_WORDS=($COMP_LINE)",
                   f'COMPREPLY=(); hydra_bash_completion 2>"{out}/err{i}"',
                   f'printf "%s\\n" "${{COMPREPLY[@]}}" >"{out}/out{i}"']
    proc = subprocess.run([BASH, "--norc", "--noprofile", "-c", "\n".join(script)], check=False, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return {line: (sorted(c for c in (out / f"out{i}").read_text().splitlines() if c),
                   (out / f"err{i}").read_text()) for i, (line, _, _) in enumerate(CASES)}


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_install_script_registers_privrec_only():
    proc = subprocess.run([BASH, "--norc", "--noprofile", "-c",
                           'eval "$(privrec run -sc install=bash)"; complete -p privrec; complete -p run'],
                          check=False, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip().endswith("-F hydra_bash_completion privrec")
    assert proc.returncode != 0  # nothing registered for a command named `run`


@pytest.mark.parametrize(("line", "expected"), [(line, exp) for line, _, exp in CASES if exp is not None])
def test_bash_completes_commands_groups_options_and_keys(completions, line, expected):
    candidates, stderr = completions[line]
    assert candidates == expected
    assert stderr == ""


def test_bash_completes_subcommands_data_actions_and_every_group(completions):
    candidates, stderr = completions["privrec "]
    assert {"run", "data", "report", "reproduce", "release", "sync", "ui", "--version"} <= set(candidates)
    assert stderr == ""
    candidates, stderr = completions["privrec data "]
    assert {"fetch", "info"} <= set(candidates) and stderr == ""
    candidates, stderr = completions["privrec run "]
    groups = {p.name for p in (REPO / "conf").iterdir() if p.is_dir() and p.name != "hydra"}
    assert {f"{g}=" for g in groups} | {"seed=", "data_dir="} <= set(candidates) and stderr == ""


# ---------------------------------------------------------------------------------------------- help and log names
def test_run_help_says_privrec():
    proc = _privrec("run", "--help")
    assert proc.returncode == 0 and proc.stderr == ""
    text = proc.stdout
    assert text.startswith("privrec run: ")
    assert "powered by Hydra" not in text
    assert f"model: {', '.join(_options('model'))}" in text
    assert "privrec run --shell-completion install=bash" in text


@pytest.mark.slow
def test_the_log_file_is_privrec_log(tmp_path, shared_data_dir):
    proc = _privrec("run", "attack=none", "tracking.enabled=false", "model.iterations=2", "progress=false",
                    cwd=tmp_path, PRIVREC_DATA_DIR=str(shared_data_dir))
    assert proc.returncode == 0, proc.stderr
    logs = sorted(p.name for p in (tmp_path / "outputs").rglob("*.log"))
    assert logs == ["privrec.log"]
    hydra_yaml = next((tmp_path / "outputs").rglob(".hydra/hydra.yaml")).read_text()
    assert "    name: privrec\n" in hydra_yaml


# ---------------------------------------------------------------------------------------------- tests' data folder
def _conftest():
    spec = importlib.util.spec_from_file_location("privrec_root_conftest", REPO / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tests_use_the_data_folder_the_first_run_fetched(tmp_path, monkeypatch):
    (tmp_path / "data" / "ml-100k").mkdir(parents=True)
    (tmp_path / "data" / "ml-100k" / "u.data").write_text("1\t1\t5\t874965758\n")
    monkeypatch.chdir(tmp_path)
    conftest = _conftest()
    monkeypatch.delenv("PRIVREC_DATA_DIR", raising=False)
    assert conftest.find_data_dir() == (tmp_path / "data").resolve()
    monkeypatch.setenv("PRIVREC_DATA_DIR", str(tmp_path / "elsewhere"))
    assert conftest.find_data_dir() == (tmp_path / "elsewhere").resolve()  # the variable wins
    monkeypatch.delenv("PRIVREC_DATA_DIR")
    (tmp_path / "data" / "ml-100k" / "u.data").unlink()  # an empty ./data is not a copy
    found = conftest.find_data_dir()
    assert found != (tmp_path / "data").resolve()
