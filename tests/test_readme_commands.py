"""Every ``privrec ...`` command in README.md's shell code blocks is run, so the README cannot drift.

Commands are taken from the ```bash, ```sh, ```shell, ```console and plain ``` blocks. Line continuations are
joined, comments dropped, ``a && b`` split, ``$ `` prompts removed, duplicates kept once. Each command is then:

- RUN: run as written, in one temporary folder, on ML-100K (``$PRIVREC_DATA_DIR``), into a temporary SQLite
  store (``$MLFLOW_TRACKING_URI``), in README order. It must exit 0 with no traceback. ``<run_id>`` is replaced
  by the latest single run's id in that store. ``privrec report`` first gets a small sweep to report on
  (:data:`REPORT_SWEEP`, in the experiment the command names).
- COMPOSE: sweeps (``-m``) are not run. A preset alone (``-m experiment=...``) is composed with
  ``privrec run --cfg job``. A command-line sweep (``a=1,2``, ``range(...)``) has each of its jobs composed
  with :func:`privrec.compose`. Runs on data this machine does not hold are composed the same way.
- SKIP: the commands in :data:`SKIPPED` (network, a server, a cluster) are not run. Each is checked to parse
  (``--help`` of its subcommand, or composed when it is a ``run``), and its reason is listed here.

Run with ``-s`` to see the list of commands with what was done and how long it took.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHELL_BLOCKS = {"", "bash", "sh", "shell", "console"}
PRIVREC = [sys.executable, "-m", "privrec.cli"]
#: Datasets every test machine holds (the rest need a download or files placed by hand).
LOCAL_DATASETS = {"ml-100k", "synthetic", "delimited"}  # delimited: when its file exists (checked)

#: Commands that are never run: (a pattern matched against the command, the reason). Each is checked to parse.
SKIPPED: list[tuple[str, str]] = [
    (r"^privrec data fetch\b", "downloads from the network; checked: `privrec data fetch --help`"),
    (r"^privrec ui\b", ("starts the MLflow UI server, which runs until Ctrl-C (tests/test_ui_browser.py "
                        "drives it); checked: `privrec ui --help`")),
    (r"https?://|postgres|submitit|slurm|\bcluster\b",
     "needs a tracking server or a cluster; checked: composed (privrec.compose) or `--help`"),
]

#: A data file named in a command (``dataset.path=my_log.tsv``, ``data inspect log.csv``).
DATA_FILE = re.compile(r"^[^=<>\s]+\.(tsv|csv|dat|txt|data|json|parquet|gz|zip)$")

#: The sweep ``privrec report`` gets to report on, in the experiment the command names (4 cheap jobs).
REPORT_SWEEP = ["run", "-m", "attack=none", "model.iterations=3", "privacy.rate=0,0.5", "seed=0,1"]

#: Variables of the harness that must not leak from the environment pytest runs in into the commands.
_HARNESS_ENV = ("MLFLOW_TRACKING_URI", "HYDRA_FULL_ERROR", "PRIVREC_ACCELERATE", "PRIVREC_JOBS", "PRIVREC_DEBUG",
                "PRIVREC_PARENT_RUN_ID", "PRIVREC_RESUME_SKIP", "PRIVREC_SWEEP_JOBS")


# ---------------------------------------------------------------------------------------------- extraction
def split_env(command: list[str]) -> tuple[dict[str, str], list[str]]:
    """``VAR=value ... privrec ...`` -> ({VAR: value}, ["privrec", ...])."""
    n = 0
    while n < len(command) and re.match(r"^[A-Za-z_]\w*=", command[n]):
        n += 1
    return dict(t.split("=", 1) for t in command[:n]), command[n:]


def readme_commands(markdown: str) -> list[list[str]]:
    """Every ``privrec`` command of the shell code blocks, as argument lists, in order, each once."""
    found: list[list[str]] = []
    for info, body in re.findall(r"^```[ \t]*([\w+-]*)[^\n]*\n(.*?)^```", markdown, flags=re.DOTALL | re.MULTILINE):
        if info.lower() not in SHELL_BLOCKS:
            continue
        joined = re.sub(r"\\\n", " ", body)  # line continuations
        for raw in joined.splitlines():
            line = re.sub(r"^\s*\$\s+", "", raw)
            if not re.search(r"(^|&&|\|\||;)\s*([A-Za-z_]\w*=\S*\s+)*privrec\s", line):  # output, other programs
                continue
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            tokens = list(lexer)
            for is_operator, group in itertools.groupby(tokens, key=lambda t: set(t) <= set(";&|")):
                command = list(group)
                if not is_operator and split_env(command)[1][:1] == ["privrec"] and command not in found:
                    found.append(command)
    return found


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------- classification
@dataclass
class Outcome:
    mode: str  # RUN | COMPOSE | SKIP
    how: str  # what was done
    ok: bool
    detail: str = ""
    seconds: float = 0.0


def _overrides(command: list[str]) -> list[str]:
    """The key=value overrides of a command (``release``'s own ``out=``/``keep_ids=`` are not config keys)."""
    return [t for t in command[2:] if "=" in t and not t.startswith(("-", "out=", "keep_ids="))]


def _option_value(command: list[str], name: str) -> str | None:
    for i, token in enumerate(command):
        if token == name and i + 1 < len(command):
            return command[i + 1]
        if token.startswith(name + "="):
            return token.partition("=")[2]
    return None


def classify(command: list[str], cwd: Path) -> tuple[str, str]:
    assignments, command = split_env(command)
    text = shlex.join(command)
    for pattern, reason in SKIPPED:
        if re.search(pattern, text) or any(re.search(pattern, v) for v in assignments.values()):
            return "SKIP", reason
    sub = command[1:3] if len(command) > 2 and command[1] == "data" else command[1:2]
    composes = sub in (["run"], ["release"], ["data", "info"])  # commands that compose privrec's config
    overrides = _overrides(command)
    own_files = [t for t in [*command[2:], *(o.partition("=")[2] for o in overrides)]
                 if DATA_FILE.match(t) and not (cwd / t).exists()]
    if composes:
        if "-m" in command or "--multirun" in command:
            return "COMPOSE", "a sweep: composed, not run"
        dataset = next((o.partition("=")[2] for o in overrides if o.startswith("dataset=")), "ml-100k")
        if dataset not in LOCAL_DATASETS:
            return "COMPOSE", f"dataset={dataset} is not on this machine (download or files placed by hand)"
        if own_files:
            return "COMPOSE", f"reads the reader's own file ({own_files[0]}), which the README does not create"
    elif own_files:
        return "SKIP", f"reads the reader's own file ({own_files[0]}); checked: `--help` of its subcommand"
    if re.search(r"<(?!run_id>)[^>]+>", text):
        return "SKIP", "has a placeholder the reader fills in; checked: `--help` of its subcommand"
    return "RUN", "run as written"


# ---------------------------------------------------------------------------------------------- execution
def _env(tmp: Path, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _HARNESS_ENV}
    env.update(PRIVREC_DATA_DIR=str(data_dir), MLFLOW_TRACKING_URI=f"sqlite:///{tmp}/mlflow.db",
               MLFLOW_DISABLE_TELEMETRY="true", OPENBLAS_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _call(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*PRIVREC, *args], check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _failed(proc: subprocess.CompletedProcess) -> str:
    if proc.returncode == 0 and "Traceback" not in proc.stderr:
        return ""
    return f"exit {proc.returncode}: {(proc.stderr.strip() or proc.stdout.strip())[-1500:]}"


def _compose_jobs(overrides: list[str]) -> int:
    """Compose every job of a command-line sweep with privrec.compose (the CLI's composition); -> jobs."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    import privrec

    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
               else [o.input_line] for o in parsed]
    jobs = 0
    for job in itertools.product(*choices):
        privrec.compose(list(job))
        jobs += 1
    return jobs


def _latest_single_run(tmp: Path) -> str | None:
    import warnings

    import privrec

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = privrec.load_runs(tracking_uri=f"sqlite:///{tmp}/mlflow.db")
    single = runs[(runs["status"] == "FINISHED") & runs["parent_run_id"].isna()]
    return None if single.empty else str(single["run_id"].iloc[-1])


def expand(command: list[str], env: dict[str, str]) -> list[str]:
    """``$NAME`` and ``${NAME}`` replaced as the shell would (``$PWD``: the command's folder)."""
    return [re.sub(r"\$(?:\{(\w+)\}|(\w+))", lambda m: env.get(m.group(1) or m.group(2), ""), t) for t in command]


def _execute(command: list[str], tmp: Path, env: dict[str, str], prepared: set[str]) -> Outcome:
    command = expand(command, {**env, "PWD": str(tmp)})
    mode, reason = classify(command, tmp)
    assignments, command = split_env(command)
    env = {**env, **assignments}
    start = time.perf_counter()
    sub = command[1] if len(command) > 1 else ""
    try:
        if mode == "SKIP":
            if sub == "run":
                jobs = _compose_jobs(_overrides(command))
                return Outcome(mode, f"{reason} ({jobs} job(s) composed)", True,
                               seconds=time.perf_counter() - start)
            proc = _call([sub, "--help"] if sub else ["--help"], tmp, env)
            return Outcome(mode, reason, not _failed(proc), _failed(proc), time.perf_counter() - start)
        if mode == "COMPOSE":
            overrides = _overrides(command)
            parsed = [o for o in overrides if re.search(r"=.*(,|range\(|choice\(|glob\()", o)]
            if parsed:  # a command-line sweep: each job
                jobs = _compose_jobs(overrides)
                return Outcome(mode, f"{reason}: {jobs} jobs composed with privrec.compose", True,
                               seconds=time.perf_counter() - start)
            if sub != "run":
                jobs = _compose_jobs(overrides)
                return Outcome(mode, f"{reason}: composed with privrec.compose", True,
                               seconds=time.perf_counter() - start)
            proc = _call(["run", "--cfg", "job", *overrides], tmp, env)
            return Outcome(mode, f"{reason}: privrec run --cfg job", not _failed(proc), _failed(proc),
                           time.perf_counter() - start)
        args = command[1:]
        if "<run_id>" in args:
            run_id = _latest_single_run(tmp)
            if run_id is None:
                return Outcome("SKIP", "<run_id>: no single run in the store before it", False)
            args = [run_id if a == "<run_id>" else a for a in args]
        if sub == "report":
            experiment = _option_value(command, "--experiment") or "privrec"
            if experiment not in prepared:
                extra = ["attack=reidentification"] if "attack/" in shlex.join(command) else []
                proc = _call([*REPORT_SWEEP, *extra, f"tracking.experiment={experiment}"], tmp, env)
                assert not _failed(proc), f"the sweep for `privrec report` failed: {_failed(proc)}"
                prepared.add(experiment)
        proc = _call(args, tmp, env)
        return Outcome(mode, reason, not _failed(proc), _failed(proc), time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a composition error is the command's failure, reported below
        return Outcome(mode, reason, False, f"{type(exc).__name__}: {exc}", time.perf_counter() - start)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, shared_data_dir) -> dict[str, Outcome]:
    tmp = tmp_path_factory.mktemp("readme")
    env = _env(tmp, shared_data_dir)
    prepared: set[str] = set()
    done = {shlex.join(c): _execute(c, tmp, env, prepared) for c in COMMANDS}
    width = max(map(len, done))
    print("\nREADME commands:")
    for command, out in done.items():
        state = "ok " if out.ok else "FAILED"
        print(f"  {state} {out.mode:<7} {out.seconds:6.1f}s  {command:<{width}}  {out.how}")
    return done


# ---------------------------------------------------------------------------------------------- tests
def test_the_readme_has_commands_of_every_kind():
    modes: dict[str, int] = {}
    for command in COMMANDS:
        mode, _ = classify(expand(command, {"PWD": str(REPO)}), REPO)
        modes[mode] = modes.get(mode, 0) + 1
    assert len(COMMANDS) >= 10, [shlex.join(c) for c in COMMANDS]
    assert modes.get("RUN", 0) >= 5 and modes.get("COMPOSE", 0) >= 2, modes


@pytest.mark.slow
@pytest.mark.parametrize("command", [shlex.join(c) for c in COMMANDS])
def test_readme_command(outcomes, command):
    out = outcomes[command]
    assert out.ok, f"README command `{command}` ({out.mode}: {out.how}) failed: {out.detail}"


def test_extraction_handles_continuations_comments_and_chains():
    text = "\n".join([
        "```bash",
        "pip install . && privrec run           # a comment",
        "$ privrec run model=bpr \\",
        "    seed=3",
        "privrec run privacy.mechanism=attribute '+privacy.rates={F: 0.4, M: 0.1}'  # quoted",
        "privrec run                              # a repeat",
        "```",
        "```",
        "privrec: consent_drop on MovieLens100K, model ALS, seed 0",
        "  compare runs: privrec ui",
        "```",
        "```python",
        "privrec run not-shell",
        "```",
        "```sh",
        "privrec data info; privrec ui --port 5001",
        "PRIVREC_JOBS=1 privrec run -m seed=0,1     # one job at a time",
        "```",
    ])
    assert readme_commands(text) == [
        ["privrec", "run"],
        ["privrec", "run", "model=bpr", "seed=3"],
        ["privrec", "run", "privacy.mechanism=attribute", "+privacy.rates={F: 0.4, M: 0.1}"],
        ["privrec", "data", "info"],
        ["privrec", "ui", "--port", "5001"],
        ["PRIVREC_JOBS=1", "privrec", "run", "-m", "seed=0,1"],
    ]


def test_classification(tmp_path):
    assert classify(["privrec", "data", "fetch", "ml-100k"], tmp_path)[0] == "SKIP"
    assert classify(["privrec", "ui"], tmp_path)[0] == "SKIP"
    assert classify(["MLFLOW_TRACKING_URI=http://127.0.0.1:5000", "privrec", "run"], tmp_path)[0] == "SKIP"
    assert classify(["PRIVREC_JOBS=1", "privrec", "run", "-m", "seed=0,1"], tmp_path)[0] == "COMPOSE"
    assert classify(["privrec", "run", "-m", "experiment=consent_tradeoff"], tmp_path)[0] == "COMPOSE"
    assert classify(["privrec", "run", "dataset=ml-1m"], tmp_path)[0] == "COMPOSE"
    assert classify(["privrec", "run", "dataset=delimited", "dataset.path=my_log.tsv"], tmp_path)[0] == "COMPOSE"
    assert classify(["privrec", "run", "model=bpr"], tmp_path)[0] == "RUN"
    assert classify(["privrec", "reproduce", "<run_id>"], tmp_path)[0] == "RUN"
    assert classify(["privrec", "sync", "<folder>"], tmp_path)[0] == "SKIP"
    assert classify(["privrec", "data", "inspect", "my_log.csv"], tmp_path)[0] == "SKIP"
    assert classify(["privrec", "data", "info", "dataset=ml-1m"], tmp_path)[0] == "COMPOSE"
    (tmp_path / "my_log.tsv").write_text("1\t2\n")
    assert classify(["privrec", "run", "dataset=delimited", "dataset.path=my_log.tsv"], tmp_path)[0] == "RUN"
    assert _compose_jobs(["model=als,bpr", "seed=range(0,3)", "privacy.rate=0.5"]) == 6
    assert expand(["privrec", "run", "dataset.path=$PWD/a.tsv", "x=${HOME}"], {"PWD": "/w", "HOME": "/h"}) == [
        "privrec", "run", "dataset.path=/w/a.tsv", "x=/h"]
