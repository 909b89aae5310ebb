"""``privrec``: the Hydra entry point (``privrec run``) and the other subcommands.

Every error a user can cause prints one line, ``privrec: error: <key>: <rule>; got <value>``, and exits with
code 2: privrec's own ConfigErrors, Hydra's composition and override-parse errors (caught through Hydra's public
exception types and rewritten), bad options of every subcommand, and a sweep job's error (printed once, by the
job). Ctrl-C prints one line and exits with 130. ``--debug`` (or ``HYDRA_FULL_ERROR=1``, or
``PRIVREC_DEBUG=1``) shows tracebacks instead.
"""

from __future__ import annotations

import os

# Before numpy/scipy/implicit load: one BLAS thread (implicit asks for it), no MLflow telemetry.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import argparse
import contextlib
import io
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from hydra.errors import (
    CompactHydraException,
    ConfigCompositionException,
    HydraException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from privrec.errors import ConfigError, PrivRecError

if TYPE_CHECKING:
    from privrec.tracking.record import RunRecord
    from privrec.tracking.store import Written

__all__ = ["config_dir", "entry", "main", "version_line"]

USAGE = """usage: privrec <command> [options]

commands:
  run [-m] [overrides...]     run one experiment (or a sweep with -m); see conf/config.yaml for keys
  release [overrides] out=DIR write the treated dataset (interactions, attributes, privacy report), no training
  data fetch NAME...          download public datasets into data_dir (ml-100k, ml-1m, ... ; see README)
  data info [overrides...]    describe the configured dataset
  data inspect FILE [--lines N]
                              read a log's head; print the dataset.* overrides that load it
  report [--experiment E] [--sweep latest] [--x X] [--y Y]
                              frontier figure (PNG, SVG) and tables (Markdown, LaTeX) of a sweep
  reproduce RUN_ID            re-run a recorded run from its resolved config and compare every metric
  sync FOLDER...              write runs saved when their store failed (record.json) into a store
  ui [--port N]               open the MLflow UI on the tracking store (127.0.0.1 only)

options: --debug  show full tracebacks;  --version, -V  privrec's version (and git commit)
  privrec run --help                            lists config groups and options
  eval "$(privrec run -sc install=bash)"        Tab completion of commands, config groups and keys (bash)
examples:
  privrec run
  privrec run model=bpr privacy.rate=0.5 seed=1
  privrec run -m privacy=consent_drop privacy.rate=0,0.25,0.5 model=als,bpr seed=0,1,2
"""


def config_dir() -> Path:
    """The Hydra config folder: shipped inside the package, or the checkout's top-level ``conf/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise ConfigError("privrec's config folder must exist; found neither the packaged conf/ nor a checkout's conf/.")


def _fail(message: str) -> int:
    """Print a user error as one line (a message with line breaks is joined) and return exit code 2."""
    text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    print(f"privrec: error: {text}", file=sys.stderr)
    return 2


#: Set (to "1") by ``--debug`` or ``HYDRA_FULL_ERROR=1``; inherited by a sweep's worker processes.
DEBUG_ENV = "PRIVREC_DEBUG"


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV) == "1"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: a ConfigError (``privrec: error: ...``, exit 2) instead of the usage
    block argparse prints (``ArgumentParser.error`` is documented as the method to override)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("privrec ")
        raise ConfigError(f"{command} arguments must be valid: {message}; see {self.prog} --help.")


def _check_choices(overrides: list[str], conf: Path) -> None:
    """One-line errors, before Hydra composes (or writes) anything, for a secret given on the command line
    (``privacy.key=...``: Hydra would write it into the job's folders) and unknown config-group options."""
    for arg in overrides:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~").strip()
        if sep and _secret(key) and value.strip() not in ("", "null", "~"):
            raise ConfigError(f"{key} must not be given on the command line or in a config (it would be written to "
                              f"Hydra's folders and logs); got a value (not shown). Put the key in a file "
                              f"(privacy.key_file=PATH) or in the environment variable PRIVREC_PSEUDONYM_KEY.")
    groups = {p.name for p in conf.iterdir() if p.is_dir() and not p.name.startswith((".", "_", "hydra"))}
    for arg in overrides:
        if "=" not in arg or arg.startswith(("hydra.", "+", "~")):
            continue
        key, _, value = arg.partition("=")
        if key not in groups or value.startswith(("choice(", "range(", "glob(")):
            continue
        available = sorted(p.stem for p in (conf / key).glob("*.yaml"))
        for option in value.strip("[]").split(","):
            if option and option != "null" and option not in available:
                raise ConfigError(f"{key} must be one of {available}; got {option!r}.")


#: ``privrec run``'s options (Hydra's command line) -> the values they take (None: a flag without a value;
#: ``()``: any value; else one of these).
_RUN_OPTIONS: dict[str, tuple[str, ...] | None] = {
    "--multirun": None, "-m": None, "--run": None, "-r": None, "--help": None, "-h": None, "--hydra-help": None,
    "--version": None, "--cfg": ("job", "hydra", "all"), "-c": ("job", "hydra", "all"), "--resolve": None,
    "--package": (), "-p": (), "--shell-completion": None, "-sc": None, "--config-path": (), "-cp": (),
    "--config-name": (), "-cn": (), "--config-dir": (), "-cd": (), "--experimental-rerun": (),
    "--info": ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath"),
    "-i": ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath"),
}
_COMMANDS = (("--run", "-r"), ("--multirun", "-m"), ("--cfg", "-c"), ("--shell-completion", "-sc"), ("--info", "-i"))


def _split_run_args(argv: list[str]) -> tuple[set[str], list[str]]:
    """``privrec run``'s arguments -> (the options given, the overrides); a one-line ConfigError for an unknown
    option, a bad option value or an override without a key, before Hydra parses them (argparse would print
    its usage block, Hydra a traceback for ``=1``)."""
    options: set[str] = set()
    overrides: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            if not arg.lstrip("+~").partition("=")[0].strip():
                raise ConfigError(f"run overrides must be key=value with a key; got {arg!r}.")
            overrides.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name not in _RUN_OPTIONS:
            raise ConfigError(f"run options must be among {sorted(o for o in _RUN_OPTIONS if o.startswith('--'))} "
                              f"(and key=value overrides); got {arg!r}. See privrec run --help.")
        options.add(name)
        values = _RUN_OPTIONS[name]
        if values is None:
            if eq:
                raise ConfigError(f"run option {name} takes no value; got {arg!r}.")
            continue
        if not eq and name in ("--info", "-i") and (i == len(argv) or argv[i].startswith("-") or "=" in argv[i]):
            continue  # --info alone means --info all
        if not eq:
            if i == len(argv):
                raise ConfigError(f"run option {name} needs a value; got none.")
            value = argv[i]
            i += 1
        if values and value not in values:
            raise ConfigError(f"run option {name} must be one of {list(values)}; got {value!r}.")
    given = [c[0] for c in _COMMANDS if options & set(c)]
    if len(given) > 1:
        raise ConfigError(f"run options must include at most one of --run, --multirun, --cfg, --shell-completion "
                          f"and --info; got {', '.join(given)}.")
    if options & {"--resolve"} and not options & {"--cfg", "-c", "--help", "-h"}:
        raise ConfigError("run option --resolve must come with --cfg or --help; got --resolve alone.")
    return options, overrides


def _override_key(override: str) -> str:
    return override.lstrip("+~").partition("=")[0].strip()


def _secret(key: str) -> bool:
    from privrec.experiment import is_secret

    return is_secret(key)


def _shown(override: str) -> str:
    """An override as an error message may show it: the value of a secret key (``privacy.key=...``) redacted."""
    from privrec.tracking.hydra_callback import redact_overrides

    return redact_overrides([override])[0]


def _lines(text: object) -> list[str]:
    return [line.strip() for line in str(text).splitlines() if line.strip()]


def _group_options(group: str) -> list[str]:
    folder = config_dir() / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _hydra_message(exc: BaseException, overrides: list[str]) -> str:
    """One line for one of Hydra's composition or override-parse errors (Hydra's public exception types;
    Hydra itself prints 2-10 lines). Shape: ``<key> must <rule>; got <override>.``"""
    if isinstance(exc, OverrideParseException):
        reason = "; ".join(line for line in _lines(exc.message)
                           if not line.startswith(("See https://", "Error parsing override")))
        key = _override_key(exc.override) or "override"
        if _secret(key):
            reason = ""  # Hydra's reason quotes the value
        return (f"{key} must be given as key=value in Hydra's override grammar ({reason or 'syntax error'}); "
                f"got {_shown(exc.override)!r}. See https://hydra.cc/docs/advanced/override_grammar/basic/")
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        group, _, option = str(exc.missing_cfg_file).rpartition("/")
        options = sorted(exc.options) if exc.options else _group_options(group)
        if group and options:
            return f"{group} must be one of {options}; got {option!r}."
    lines = _lines(exc) or [type(exc).__name__]
    head = lines[0]
    cause = exc.__cause__
    cause_lines = _lines(cause) if isinstance(cause, OmegaConfBaseException) else []
    quoted = re.search(r"'([^']+)'", head)
    key = str(getattr(cause, "full_key", "") or (quoted.group(1) if quoted else ""))
    if head.startswith("Ambiguous value"):
        key = _override_key(key)
    override = next((o for o in reversed(overrides) if _override_key(o) == key), None) if key else None
    got = f"; got {_shown(override)!r}" if override else ""
    if head.startswith("Could not override"):
        return (f"{key} must be a key of privrec's config (privrec run --cfg job lists them; +{key}=VALUE adds "
                f"a new one){got}.")
    if head.startswith("Could not append"):
        return f"{key} is in the config already, so it must be set without +{got}."
    if head.startswith("Could not delete"):
        return f"{key} must be in the config (with that value, if one is given) to be deleted with ~{got}."
    if head.startswith("Ambiguous value"):
        return (f"{key} must have one value in a single run (a,b is a sweep: privrec run -m ...; [a,b] is a list; "
                f"quote 'a,b' for a string){got}.")
    if key and _secret(key):  # Hydra's and OmegaConf's messages may quote the value
        return f"{key} must be a valid override (the value of a secret key is not shown){got}."
    if head.startswith("Error merging override") and cause_lines:
        return f"{key} must be a valid value: {cause_lines[0].rstrip('.')}{got}."
    if isinstance(exc, ConfigCompositionException) and cause_lines and key:
        return f"{key} must compose: {head.rstrip('.')} ({cause_lines[0].rstrip('.')}){got}."
    if isinstance(exc, InstantiationException) and exc.__cause__ is not None and _lines(exc.__cause__):
        return _lines(exc.__cause__)[0]  # e.g. a sweeper's or launcher's own check of its hydra.* options
    if head.endswith(":") and len(lines) > 1:
        head = f"{head} {lines[1]}"
    reason = " ".join([head.rstrip("."), *[f"({c.rstrip('.')})" for c in cause_lines[:1]]])
    return f"{reason}{got}."


def _omegaconf_message(exc: OmegaConfBaseException, node: Any) -> str:
    """One line for an OmegaConf error met while resolving a config (``seed=${nope}``, a missing ``${oc.env:X}``)."""
    key = str(getattr(exc, "full_key", "") or "")
    raw: Any = None
    with contextlib.suppress(Exception):  # the value as written (unresolved), for the message
        raw = OmegaConf.to_container(node, resolve=False)
        for part in key.split("."):
            raw = raw[part] if isinstance(raw, dict) else None
    reason = (_lines(getattr(exc, "msg", "") or exc) or [type(exc).__name__])[0].rstrip(".")
    got = f"; got {raw!r}" if isinstance(raw, (str, int, float, bool)) and not _secret(key) else ""
    return f"{key or 'the config'} must resolve to a value ({reason}){got}."


# ---------------------------------------------------------------------------- run
def _unique() -> str:
    """A short random id for run and sweep folder names (``${privrec_unique:}``): runs started in the same
    second never share a folder. Cached per config, like ``${now:}``, so a sweep's jobs see one value."""
    return os.urandom(3).hex()


if not OmegaConf.has_resolver("privrec_unique"):
    OmegaConf.register_new_resolver("privrec_unique", _unique, use_cache=True)

# conf/hydra/launcher/submitit_{local,slurm}.yaml set privrec's values for the submitit plugin's launcher configs
# of the same names (the command stays `hydra/launcher=submitit_slurm`); Hydra 1.3 then checks them against the
# plugin's schema - wanted: a mistyped key is an error - and warns that this matching by name is deprecated.
warnings.filterwarnings("ignore", category=UserWarning,
                        message=r"\s*'hydra/launcher/submitit_(local|slurm)' is validated against ConfigStore")


class _UserError(CompactHydraException):
    """A sweep job's configuration error, raised after its one-line message was printed. Hydra prints a
    compact exception as one line; creating one (also when a worker's exception is unpickled in the sweep's
    main process) marks the command's exit code as 2. ``reason``: the job's one-line error (the sweep's summary)."""

    reason: str = ""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        _STATE["user_error"] = True


_STATE: dict[str, Any] = {"user_error": False, "early_attacks": None, "written": None, "job_started": False}


def _run(argv: list[str], *, debug: bool) -> int:
    conf = config_dir()
    options, overrides = _split_run_args(argv)
    if "--version" in options:  # Hydra's --version (printed next) names Hydra only
        print(version_line())
    _check_choices(overrides, conf)
    multirun = bool(options & {"-m", "--multirun"})
    info_only = bool(options - {"-m", "--multirun", "-r", "--run"})
    if not (multirun or info_only or "attack=none" in argv or "parallel_attacks=false" in argv):
        from privrec.speed import AttackExecutor

        if AttackExecutor.wanted(attacks_configured=True, mode="auto"):
            _STATE["early_attacks"] = AttackExecutor().start()  # imports scikit-learn while this process trains
    import hydra

    _STATE.update(user_error=False, written=None, job_started=False)
    # Hydra names the program after argv[0]; the completion script it prints registers for that name, and the
    # installed function runs `privrec -sc query=bash` (see _shell_completion).
    sys.argv = ["privrec" if options & {"-sc", "--shell-completion"} else "privrec run", *argv]
    from privrec.tracking.hydra_callback import JOBS_ENV, close_parent_run

    os.environ.pop(JOBS_ENV, None)  # privrec's sweeper sets it when it launches the first job

    code = 0
    full_error = os.environ.get("HYDRA_FULL_ERROR")
    # Hydra's documented switch: with it, hydra.main raises a composition or override error to its caller instead
    # of printing it in 2-10 lines and exiting with 1; the error is then printed below in one line, exit 2.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        with _SweepStderr.installed() if multirun else contextlib.nullcontext(), warnings.catch_warnings():
            # A sweep checks its store before any job starts (MlflowSweepCallback.on_multirun_start); Hydra turns a
            # callback's exception into a warning and would go on to run every job against that store.
            warnings.filterwarnings("error", message=r"Callback \w+\.on_multirun_start raised", category=UserWarning)
            hydra.main(version_base="1.3", config_path=str(conf), config_name="config")(_job)()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        code = 2 if (_STATE["user_error"] and code == 1) else code
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):  # the store may be gone; the sweep is interrupted either way
            close_parent_run("FAILED", interrupted=True)
        from privrec.tracking.store import LAST_WRITTEN

        written = _STATE.get("written")
        if written is None and LAST_WRITTEN:  # Ctrl-C while a finished run was being written: it was kept
            where = f"; the run had finished and was recorded ({_where(LAST_WRITTEN[-1])})"
        else:
            where = f"; the run was recorded as FAILED ({_where(written)})" if written is not None else ""
        print(f"privrec: interrupted{where}.", file=sys.stderr)
        return 130
    except (HydraException, OmegaConfBaseException, UserWarning, ValueError, OSError) as exc:
        if debug:
            raise
        # A UserWarning here is the sweep's failed start (see the filter above): its cause is the error.
        error = exc.__context__ if isinstance(exc, UserWarning) and exc.__context__ is not None else exc
        if isinstance(error, PrivRecError):
            code = _fail(str(error))
        elif _STATE["user_error"]:  # a sweep job's error: the job printed it (one line)
            code = 2
        elif isinstance(error, HydraException):
            code = _fail(_hydra_message(error, overrides))
        elif isinstance(error, OmegaConfBaseException):
            code = _fail(_omegaconf_message(error, None))
        elif isinstance(error, ValueError) and str(error).startswith("hydra."):
            code = _fail(str(error))  # privrec's launcher and sweeper name the hydra.* key they refuse
        elif isinstance(error, OSError) and not (_STATE["job_started"] or JOBS_ENV in os.environ):
            # before any job: Hydra could not create the run's or the sweep's folder
            code = _fail(f"hydra.run.dir and hydra.sweep.dir must be folders privrec can create; got "
                         f"{error.filename!r} ({type(error).__name__}: {error.strerror}).")
        else:
            raise
    finally:
        if full_error is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = full_error
        early = _STATE.pop("early_attacks", None)
        if early is not None:
            early.close()  # unused with a failed config or tracking errors
        with contextlib.suppress(Exception):
            close_parent_run("FAILED")  # only acts when a sweep ended without on_multirun_end
    return code


class _SweepStderr(io.TextIOBase):
    """The stderr of a sweep's main process while Hydra runs the sweep. A job with a user error prints it in one
    line and fails; what Hydra then writes about that job ("Error executing job with overrides: [...]") says
    nothing more and is dropped. Lines privrec writes (``privrec: ...``) always pass, and everything passes until
    a job has failed with a user error. Installed with ``contextlib.redirect_stderr`` (no patching)."""

    def __init__(self, target: Any) -> None:
        super().__init__()
        self._target = target
        self._keep = True
        self._line_start = True

    @classmethod
    @contextlib.contextmanager
    def installed(cls) -> Iterator[None]:
        with contextlib.redirect_stderr(cls(sys.stderr)):
            yield

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return bool(self._target.isatty())

    def write(self, text: str) -> int:
        if self._line_start:  # "\r": the sweep's progress line, redrawn in place
            self._keep = not _STATE["user_error"] or text.startswith(("privrec", "\r"))
        if self._keep:
            self._target.write(text)
        if text:
            self._line_start = text.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def fileno(self) -> int:
        return int(self._target.fileno())


def _plain(node: Any, *, resolve: bool, what: str = "the config") -> dict[str, Any]:
    """An OmegaConf mapping as a plain ``dict`` (a one-line error when it is not a mapping, or when an
    interpolation such as ``${oc.env:NAME}`` does not resolve)."""
    try:
        container = OmegaConf.to_container(node, resolve=resolve)
    except OmegaConfBaseException as exc:
        raise ConfigError(_omegaconf_message(exc, node)) from exc
    if not isinstance(container, dict):
        raise ConfigError(f"{what} must be a mapping; got {type(container).__name__}.")
    return {str(k): v for k, v in container.items()}


def _job(cfg: DictConfig) -> Any:
    """Hydra's task function (module level, so a sweep's worker processes import it by reference)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    _STATE["job_started"] = True
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        return _execute(cfg, hc, multirun=multirun)
    except PrivRecError as exc:
        if _debug():
            raise
        prefix = f"[job {hc.job.num}] " if multirun else ""
        print(f"privrec: error: {prefix}{exc}", file=sys.stderr)
        if multirun:
            error = _UserError(f"privrec: error: job {hc.job.num} failed (above)")
            error.reason = str(exc)  # for the sweep's summary (kept when the error is pickled to the main process)
            raise error from None
        raise SystemExit(2) from None


def _hydra_files(cfg: DictConfig, hc: Any) -> dict[str, str]:
    """The job's ``.hydra`` files, from memory as the job starts (what Hydra writes to its folder), with the
    values of secret keys redacted."""
    from privrec.experiment import redact_tree
    from privrec.tracking.hydra_callback import redact_overrides

    hydra_node = _plain(hc, resolve=False, what="hydra")
    task = redact_overrides([str(o) for o in hydra_node["overrides"]["task"]])
    hydra_node["overrides"]["task"] = task
    dirname = hydra_node["job"].get("override_dirname")
    if dirname:
        hydra_node["job"]["override_dirname"] = ",".join(redact_overrides(str(dirname).split(",")))
    return {"config.yaml": OmegaConf.to_yaml(OmegaConf.create(redact_tree(_plain(cfg, resolve=False)))),
            "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_node})),
            "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(task))}


def _flag(container: dict[str, Any], key: str, default: bool, *, prefix: str = "") -> bool:
    """A strict boolean: ``true``/``false`` only (not 1, "yes" or "maybe")."""
    value = container.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{prefix}{key} must be true or false; got {value!r}.")
    return value


def _plan(experiment: Any, container: dict[str, Any]) -> Any:
    """``experiment.plan``: every component built before any work; a value that a component rejects with a
    plain ValueError or TypeError (``evaluation.batch_size=abc``) is a user error too, in one line."""
    try:
        return experiment.plan(container)
    except PrivRecError:
        raise
    except (TypeError, ValueError) as exc:
        reason = (_lines(exc) or [type(exc).__name__])[0].rstrip(".")
        raise ConfigError(f"the config must build privrec's components; got {type(exc).__name__}: {reason}. "
                          f"Check the values given on the command line (privrec run --cfg job shows them).") from exc


def _execute(cfg: DictConfig, hc: Any, *, multirun: bool) -> Any:
    from privrec import experiment
    from privrec.tracking.hydra_callback import (
        JOBS_ENV,
        PARENT_ENV,
        REPORTED_ENV,
        SKIP_ENV,
        current_swept_keys,
        swept_values,
    )
    from privrec.tracking.record import now_ms
    from privrec.tracking.store import open_store, repair, write_record

    hydra_files = _hydra_files(cfg, hc)  # captured now: a later job in the same folder cannot change them
    container = _plain(cfg, resolve=True)
    tracking = container.get("tracking") or {}
    if not isinstance(tracking, dict):
        raise ConfigError(f"tracking must be a mapping with enabled, experiment and tracking_uri; got {tracking!r}.")
    enabled = _flag(tracking, "enabled", True, prefix="tracking.")
    show = _flag(container, "progress", True) and not multirun
    _flag(container, "resume", False)
    plan = _plan(experiment, container)  # every component built: config errors before any work
    store = None
    if enabled:
        store = open_store(tracking.get("tracking_uri"), tracking.get("experiment", "privrec"))
        if not multirun:
            repaired = repair(store)
            if repaired:
                print(f"privrec: marked {repaired} run(s) left RUNNING by a killed process as FAILED "
                      f"(tag privrec.interrupted).", file=sys.stderr)
    parent = os.environ.get(PARENT_ENV) or None if multirun else None
    job = hc.job.num if multirun else None
    if parent and experiment.config_sha256(container)[:16] in set(os.environ.get(SKIP_ENV, "").split(",")):
        print(f"[job {job}] skipped: already FINISHED in the resumed sweep {parent}")
        return {}
    mode = container.get("parallel_attacks", "auto")
    if isinstance(mode, bool):
        mode = "true" if mode else "false"
    if mode not in ("auto", "true", "false"):  # strict: not 1, "yes" or "maybe"
        raise ConfigError(f"parallel_attacks must be auto, true or false; got {container.get('parallel_attacks')!r}.")
    from privrec.speed import AttackExecutor

    executor = _STATE.pop("early_attacks", None)
    if multirun or not AttackExecutor.wanted(attacks_configured=bool(plan.attacks), mode=mode):
        if executor is not None:
            executor.close()
        executor = None
    elif executor is None:
        executor = AttackExecutor().start()
    output_dir = Path(hc.runtime.output_dir)
    bar = _Progress() if show else None
    # a sweep job's name starts with the values that vary across the sweep: rate=0.3 mechanism=random ALS seed=1
    swept = swept_values([str(o) for o in hc.overrides.task], current_swept_keys()) if multirun else []
    start = now_ms()
    try:
        record = experiment.run(plan, hydra_files=hydra_files, on_stage=bar, attack_executor=executor, swept=swept)
    except BaseException as exc:
        if store is not None:
            failed = experiment.failed_record(container, exc, start_time=start, hydra_files=hydra_files,
                                              swept=swept)
            if multirun:
                failed = failed.with_tags({"mlflow.source.type": "JOB"})
            _STATE["written"] = write_record(store, failed, parent_run_id=parent, save_to=output_dir)
        raise
    finally:
        if bar is not None:
            bar.close()
        if executor is not None:
            executor.close()
    if multirun:  # a job of a sweep (MLflow's SourceType JOB; a single run is LOCAL)
        record = record.with_tags({"mlflow.source.type": "JOB"})
    if multirun and os.environ.get(JOBS_ENV):
        record = record.with_tags({"privrec.sweep_jobs": os.environ[JOBS_ENV]})
    written = write_record(store, record, parent_run_id=parent, save_to=output_dir) if store else None
    _STATE["written"] = written
    if not (multirun and os.environ.get(REPORTED_ENV) == "1"):  # privrec's launcher prints a sweep job's line
        print(summary(container, record, where=_where(written), multirun=multirun, job=job))
    if written is not None and written.saved is not None:
        print(f"privrec: error: the run could not be written to {tracking.get('tracking_uri')} "
              f"({written.error}); it is saved in {written.saved} - write it later with: "
              f"privrec sync {written.saved.parent}", file=sys.stderr)
        if not multirun:
            raise SystemExit(1)
    objectives = container.get("objectives")
    if objectives:  # a sweeper that optimises (Optuna) gets the named metrics, in order
        missing = [k for k in objectives if k not in record.metrics]
        if missing:
            raise ConfigError(f"objectives must name metrics the run produces; got {missing[0]!r}; "
                              f"e.g. {sorted(k for k in record.metrics if k.startswith(('eval/', 'attack/')))[:8]}.")
        return tuple(float(record.metrics[k]) for k in objectives)
    return dict(record.metrics)


class _Progress:
    """A stage progress bar on stderr (a terminal only), created at the first stage, i.e. after the config
    was validated: a config error prints one line only."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __call__(self, name: str) -> None:
        from privrec import experiment

        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=len(experiment.STAGES), desc="privrec", unit="stage", leave=False,
                             file=sys.stderr, disable=None,
                             bar_format="{desc}: {n_fmt}/{total_fmt} {postfix} [{elapsed}]")
        else:
            self._bar.update(1)
        self._bar.set_postfix_str(name)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _where(written: Written | None) -> str:
    if written is None:
        return "not tracked (tracking.enabled=false)"
    if written.run_id is not None:
        return f"run {written.run_id}"
    return f"not written; saved to {written.saved}"


def summary(cfg: dict[str, Any], record: RunRecord, *, where: str = "", multirun: bool = False, job: Any = None) -> str:
    """A short table: nDCG@10 / recall@20 overall and per consent segment, users withheld, run location."""
    m = record.metrics
    cut_lo, cut_hi = min(cfg["evaluation"]["cutoffs"]), max(cfg["evaluation"]["cutoffs"])
    keys = (f"ndcg_at_{cut_lo}", f"recall_at_{cut_hi}")
    model = cfg["model"]["_target_"].rsplit(".", 1)[-1]
    privacy = cfg["privacy"]["_target_"].rsplit(".", 1)[-1]
    if multirun:
        parts = [f"{k}={m.get(f'eval/{k}', float('nan')):.4f}" for k in keys]
        return f"[job {job}] {model} {privacy} seed={cfg.get('seed')}: " + " ".join(parts)
    dataset = cfg["dataset"]["_target_"].rsplit(".", 1)[-1]
    lines = [(f"privrec: {record.tags.get('privacy.transform')} on {dataset}, "
              f"model {model}, seed {cfg.get('seed')}"),
             f"  {'segment':<12}{'users':>8}{f'nDCG@{cut_lo}':>12}{f'recall@{cut_hi}':>12}"]
    for seg in ("overall", "consented", "opted_out"):
        prefix = "eval/" if seg == "overall" else f"eval/{seg}/"
        users = m.get(f"{prefix}n_users", m.get("data/test_users") if seg == "overall" else None)
        if users is None:
            continue
        vals = "".join(f"{m.get(prefix + k, float('nan')):>12.4f}" for k in keys)
        lines.append(f"  {seg:<12}{int(users):>8}{vals}")
    if "privacy/users_withheld" in m:
        lines.append(f"  users withheld: {int(m['privacy/users_withheld'])} "
                     f"({100 * m.get('privacy/share_users_withheld', 0):.1f}%), interactions withheld: "
                     f"{int(m.get('privacy/interactions_withheld', 0))}")
    shown = [k for k in m if k.startswith("privacy/") and "withheld" not in k][:6]
    if shown:
        lines.append("  privacy: " + ", ".join(f"{k.removeprefix('privacy/')}={m[k]:.4g}" for k in shown))
    attacks = [k for k in m if k.startswith("attack/")]
    if attacks:
        estimates = [k for k in attacks if not k.endswith(("_ci_low", "_ci_high"))]  # sampled targets: intervals
        reid = sorted((k for k in estimates if re.fullmatch(r"attack/reid_rate_m\d+", k)),
                      key=lambda k: int(k.rsplit("m", 1)[1]))
        headline = reid[-1:] + [k for k in estimates if "auc" in k and "tpr" not in k]
        lines.append("  attacks: " + ", ".join(f"{k.removeprefix('attack/')}={m[k]:.3f}" for k in headline)
                     + f" ({len(attacks)} attack metrics in MLflow)")
    tracking = cfg.get("tracking") or {}
    lines.append(f"  MLflow: {where} in experiment '{tracking.get('experiment')}' at {tracking.get('tracking_uri')}"
                 if where.startswith("run ") else f"  MLflow: {where}")
    lines.append("  compare runs: privrec ui")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- data
def _compose(overrides: list[str], *, command: str, hydra_node: bool = False) -> DictConfig:
    """The config of ``privrec data info``, ``privrec release`` and :func:`privrec.compose` (Hydra's Compose API,
    the same config folder, defaults and checks as ``privrec run``); its errors in one line. ``hydra_node``: keep
    the ``hydra`` node (Hydra's ``return_hydra_config``). Hydra's global state is left as it was found."""
    from hydra import compose, initialize_config_dir

    for arg in overrides:
        if not isinstance(arg, str) or arg.startswith("-") or not _override_key(arg):
            raise ConfigError(f"{command} overrides must be key=value with a key; got {arg!r}.")
    conf = config_dir()
    _check_choices(overrides, conf)
    try:
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            return compose(config_name="config", overrides=overrides, return_hydra_config=hydra_node)
    except HydraException as exc:
        raise ConfigError(_hydra_message(exc, overrides)) from exc
    except OmegaConfBaseException as exc:
        raise ConfigError(_omegaconf_message(exc, None)) from exc


def _data(argv: list[str]) -> int:

    parser = _Parser(prog="privrec data")
    parser.add_argument("action", choices=["fetch", "info", "inspect"])
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--lines", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.action == "inspect":  # the head of a file -> the dataset.* overrides that load it (no record values)
        from privrec.data.inspect import inspect_file

        if len(args.rest) != 1:
            raise ConfigError(f"data inspect takes one FILE; got {len(args.rest)} arguments.")
        print(inspect_file(args.rest[0], lines=args.lines).describe())
        return 0
    if args.action == "fetch":  # from the official source, verified; one line on where from and the licence
        from privrec.data.catalog import catalog_entry
        from privrec.data.fetch import fetch_dataset

        names = args.rest or ["ml-100k"]
        for name in names:
            catalog_entry(name)  # every name is known before anything is downloaded
        data_dir = args.data_dir or os.environ.get("PRIVREC_DATA_DIR", "data")
        for name in names:
            print(f"privrec: {name} is ready in {fetch_dataset(name, data_dir)}")
        return 0
    cfg = _plain(_compose(args.rest, command="data info"), resolve=True)
    from privrec.data.fetch import describe
    from privrec.experiment import load_inputs

    loaded = load_inputs(cfg["dataset"], cfg.get("preprocess"), args.data_dir or cfg["data_dir"])
    info = describe(loaded.data)
    width = max(map(len, [*info, "sha256 (preprocessed)"]))
    print("\n".join(f"{k:<{width}}  {v}" for k, v in info.items()))
    print(f"{'sha256 (raw files)':<{width}}  {loaded.sha256}")
    print(f"{'sha256 (preprocessed)':<{width}}  {loaded.preprocessed_sha256}")
    return 0


# ---------------------------------------------------------------------------- release
def _release(argv: list[str]) -> int:
    outs = [a.partition("=")[2] for a in argv if a.startswith("out=")]
    keep = [a.partition("=")[2].strip().lower() for a in argv if a.startswith("keep_ids=")]
    overrides = [a for a in argv if not a.startswith(("out=", "keep_ids="))]
    if len(keep) > 1 or (keep and keep[0] not in ("true", "false")):
        raise ConfigError(f"release keep_ids must be true or false, once; got {keep}.")
    keep_ids = bool(keep) and keep[0] == "true"
    if len(outs) != 1 or not outs[0]:
        raise ConfigError(f"release needs exactly one out=DIR; got {len(outs)}. Example: privrec release out=released/")
    out = Path(outs[0])
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"release out must be a new or empty folder; got {str(out)!r}, which is not empty.")
    _check_writable(out, what="release out")

    from privrec.release import release

    cfg = _plain(_compose(overrides, command="release"), resolve=True)
    report = release(cfg, out, keep_ids=keep_ids)
    metrics = ", ".join(f"{k}={v:g}" for k, v in list(report.metrics.items())[:6])
    print(f"privrec: released {report.transform} data to {out}/ ({metrics})")
    return 0


def _check_writable(out: Path, *, what: str) -> None:
    """A one-line error, before any work, when the output folder ``out`` cannot be created: the nearest folder
    that exists must let this process create a folder in it (tried, and removed at once)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{what} must be a folder; got {str(out)!r}, which is a file.")
    parent = out.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        if not parent.is_dir():
            raise NotADirectoryError(str(parent))
        Path(tempfile.mkdtemp(prefix=".privrec-check-", dir=parent)).rmdir()
    except OSError as exc:
        raise ConfigError(f"{what} must be a folder privrec can create; got {str(out)!r} "
                          f"({type(exc).__name__} in {str(parent)!r}).") from None


def _first_missing(folder: Path) -> Path | None:
    """The outermost folder of ``folder``'s path that does not exist yet (what ``mkdir(parents=True)`` creates)."""
    missing = None
    for path in (folder.absolute(), *folder.absolute().parents):
        if path.exists():
            break
        missing = path
    return missing


# ---------------------------------------------------------------------------- report
def _report(argv: list[str]) -> int:
    parser = _Parser(prog="privrec report", description="frontier figure and tables of a sweep")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI or "
                        "sqlite:///mlflow.db)")
    parser.add_argument("--experiment", default="privrec", help="MLflow experiment (a preset logs to its own)")
    parser.add_argument("--sweep", default="latest", help="'latest' sweep, a sweep's parent run id, or 'all' runs")
    parser.add_argument("--x", default=None, help="privacy measure: a param (privacy.rate) or a metric "
                        "(attack/reid_rate_m8); default: the swept privacy.* param")
    parser.add_argument("--y", default="eval/ndcg_at_10", help="accuracy metric")
    parser.add_argument("--panels", default=None, help="e.g. overall,consent,gender")
    parser.add_argument("--group", default="model", help="one line per value of this config group or param; "
                        "'none' for a single line")
    parser.add_argument("--baseline", default=None, help="x value (or param=value) to compare against")
    parser.add_argument("--measure", action="append", default=[], help="extra metric columns for the table")
    parser.add_argument("--out", default=None, help="output folder (default: report/<experiment>)")
    args = parser.parse_args(argv)
    out = Path(args.out or Path("report") / args.experiment)
    _check_writable(out, what="report --out")
    import gc

    from privrec.reporting import default_x, write_report
    from privrec.tracking.query import load_runs, log_report_artifacts

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    runs = load_runs(args.tracking_uri, experiment=args.experiment,
                     sweep=None if args.sweep == "all" else args.sweep)
    x = args.x or default_x(runs)
    title = f"{args.experiment}: {len(runs)} runs"
    status = runs.attrs.get("sweep_status")
    if status is not None and status != "FINISHED":
        total = runs.attrs.get("sweep_total")
        done = f"{runs.attrs['sweep_finished']} of {total or '?'} jobs finished"
        state = "still running" if status == "RUNNING" else ("interrupted" if runs.attrs.get("sweep_interrupted")
                                                             else "incomplete")
        print(f"privrec: sweep {runs.attrs['sweep_run_id']} is {state}: {done}; the figure says so.",
              file=sys.stderr)
        title = f"{args.experiment}: {state} sweep, {done}"
    created = _first_missing(out)
    out.mkdir(parents=True, exist_ok=True)
    group = None if args.group.lower() == "none" else args.group
    try:
        paths = write_report(runs, x=x, y=args.y, out_dir=out, group=group, panels=args.panels,
                             baseline=args.baseline, measures=args.measure, title=title)
    except BaseException:
        if created is not None:  # no partial output: the folders this command created go again
            shutil.rmtree(created, ignore_errors=True)
        raise
    parent = runs.attrs.get("sweep_run_id")
    if parent:
        log_report_artifacts(runs.attrs.get("tracking_uri"), parent, list(paths.values()))
    where = f"; also logged to the sweep's parent run {parent}" if parent else ""
    print(f"privrec: report over {len(runs)} runs (x={x}, y={args.y}) in {out}/: "
          f"{', '.join(sorted(paths))}{where}")
    gc.freeze()  # skip tearing down MLflow's object graph at exit (about 1 s)
    return 0


# ---------------------------------------------------------------------------- reproduce
def _reproduce(argv: list[str]) -> int:
    parser = _Parser(prog="privrec reproduce")
    parser.add_argument("run_id")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    from privrec.reproduce import reproduce

    rep = reproduce(args.run_id, tracking_uri=args.tracking_uri, data_dir=args.data_dir)
    rule = "identical" if rep.deterministic else f"within {rep.tolerance} (non-deterministic model config)"
    if rep.ok:
        print(f"privrec: reproduced run {rep.run_id}: {rep.compared} metrics {rule}; dataset sha256 matches.")
        return 0
    print(f"privrec: run {rep.run_id} did NOT reproduce ({len(rep.differences)} of {rep.compared} metrics differ, "
          f"rule: {rule}; {len(rep.missing)} missing):", file=sys.stderr)
    for key, old, new in rep.differences[:40]:
        print(f"  {key:<50} recorded {old:.6g}  now {new:.6g}  diff {new - old:+.3g}", file=sys.stderr)
    for key in rep.missing[:20]:
        print(f"  {key:<50} recorded, but not produced now", file=sys.stderr)
    return 1


# ---------------------------------------------------------------------------- sync
def _sync(argv: list[str]) -> int:
    parser = _Parser(prog="privrec sync", description="write saved run records into a store")
    parser.add_argument("folders", nargs="+", help="run folders (searched recursively for record.json)")
    parser.add_argument("--tracking-uri", default=None, help="target store (default: the one each run was "
                        "configured with)")
    parser.add_argument("--experiment", default=None, help="target experiment (default: each run's own)")
    args = parser.parse_args(argv)
    from privrec.tracking.record import RECORD_FILE, RunRecord
    from privrec.tracking.store import open_store, write_record

    files = []
    for folder in map(Path, args.folders):
        files.extend([folder] if folder.is_file() else sorted(folder.rglob(RECORD_FILE)))
    if not files:
        synced = [p for folder in map(Path, args.folders) if folder.is_dir()
                  for p in folder.rglob("record.synced.json")]
        if synced:
            print(f"privrec: nothing to sync: the {len(synced)} record(s) under {', '.join(args.folders)} were "
                  f"synced already.")
            return 0
        raise ConfigError(f"sync needs folders holding a saved {RECORD_FILE}; got none under "
                          f"{', '.join(args.folders)}.")
    stores: dict = {}
    written = []
    for path in files:
        try:
            record = RunRecord.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"sync needs valid saved run records; got {path} ({type(exc).__name__}).") from None
        # tracking.* are tags (machine-local harness keys); records saved before that kept them as params
        uri = (args.tracking_uri or record.tags.get("tracking.tracking_uri")
               or record.params.get("tracking.tracking_uri"))
        exp = (args.experiment or record.tags.get("tracking.experiment") or record.params.get("tracking.experiment")
               or "privrec")
        store = stores.get((uri, exp)) or stores.setdefault((uri, exp), open_store(uri, exp))
        parent = record.tags.get("privrec.parent_run_id") or None
        try:
            result = write_record(store, record, parent_run_id=parent)
        except Exception as exc:  # the store still fails: one line (as `privrec run` says it), the file is kept
            if _debug():
                raise
            print(f"privrec: error: {path} could not be written to {store.uri} ({type(exc).__name__}: "
                  f"{(str(exc).strip().splitlines() or [''])[0][:300]}); it is kept - fix the store and run "
                  f"privrec sync again.", file=sys.stderr)
            return 1
        path.rename(path.with_name("record.synced.json"))  # a second sync does not write it twice
        written.append(result.run_id)
        print(f"privrec: synced {path} -> run {result.run_id} in experiment '{exp}' at {store.uri}")
    print(f"privrec: synced {len(written)} run(s).")
    return 0


# ---------------------------------------------------------------------------- ui
#: MLflow 3's classic runs table of one experiment (its home page is a GenAI dashboard); children are collapsed
#: under their sweep's parent run.
_RUNS_VIEW = "#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def _runs_view_url(base: str, experiment_id: str | None) -> str:
    """The MLflow UI page that shows ``experiment_id``'s runs (the experiments list when it is ``None``)."""
    page = "#/experiments" if experiment_id is None else _RUNS_VIEW.format(experiment_id=experiment_id)
    return f"{base.rstrip('/')}/{page}"


def _ui(argv: list[str]) -> int:
    """``privrec ui``: an MLflow server (``http(s)://``) is already a UI: print the URL of its runs view. Any other
    store: start MLflow's UI on 127.0.0.1 (telemetry off), print the runs view's URL once it answers, and stop
    it when this command is interrupted or terminated."""
    parser = _Parser(prog="privrec ui", description="the MLflow UI on the runs of an experiment")
    parser.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI or "
                        "sqlite:///mlflow.db)")
    parser.add_argument("--experiment", default="privrec", help="whose runs to show (a preset logs to its own)")
    args = parser.parse_args(argv)
    from privrec.tracking.query import experiment_id
    from privrec.tracking.uri import parse_tracking_uri

    loc = parse_tracking_uri(args.tracking_uri)
    if loc.scheme == "databricks":
        return _fail(f"privrec ui shows a local store or an MLflow server (http/https); got {loc.uri!r}. "
                     f"Open the experiment in your Databricks workspace.")
    if loc.is_server:  # the server is the UI: nothing to start
        exp_id = experiment_id(loc.uri, experiment=args.experiment)
        _ui_banner(_runs_view_url(loc.uri, exp_id), args.experiment, exp_id, started=False)
        return 0
    if not 0 < args.port < 65536:
        return _fail(f"--port must be in 1..65535; got {args.port}.")
    if loc.sqlite_path is not None and not loc.sqlite_path.is_file():
        return _fail(f"privrec ui needs an existing tracking store; got no file at {loc.sqlite_path.resolve()}. "
                     f"Record a run first (privrec run) or pass --tracking-uri.")
    exp_id = experiment_id(loc.uri, experiment=args.experiment)
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError:
            return _fail(f"--port must be free on 127.0.0.1; got {args.port} (in use). Pass --port N.")
    import signal
    import subprocess
    import time
    import urllib.request

    # MLflow's usage telemetry off, for the server and the UI it serves (its /ui-telemetry answers "disabled").
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", loc.uri, "--host", "127.0.0.1",
           "--port", str(args.port), "--workers", "1"]
    base = f"http://127.0.0.1:{args.port}"

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    # Its own process group: `mlflow ui` runs the web server and job workers as child processes, which are
    # stopped together with it below (Ctrl-C reaches this process, which stops the group).
    server = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        deadline, healthy = time.monotonic() + 180, False
        while not healthy and server.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    healthy = response.status == 200
            except OSError:
                time.sleep(0.2)
        if not healthy:
            code = server.poll()
            got = f"exit code {code}" if code is not None else "no answer from /health in 180 s"
            return _fail(f"the MLflow UI must start on {base}; got {got} (its output is above).")
        _ui_banner(_runs_view_url(base, exp_id), args.experiment, exp_id, started=True)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_group(server)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_group(leader: Any, *, grace: float = 10.0) -> None:
    """SIGTERM to the process group that ``leader`` (a ``Popen`` started with ``start_new_session``) leads, SIGKILL
    to whatever of it is left after ``grace`` seconds; returns once the leader is reaped."""
    import signal
    import time

    def signal_group(sig: int) -> bool:
        try:
            os.killpg(leader.pid, sig)
        except ProcessLookupError:
            return False
        return True

    signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        leader.poll()  # reap the leader: a zombie would keep the group alive
        if not signal_group(0):
            break
        time.sleep(0.1)
    else:
        signal_group(signal.SIGKILL)
    leader.wait()


def _ui_banner(url: str, experiment: str, exp_id: str | None, *, started: bool) -> None:
    what = (f"runs of experiment '{experiment}'" if exp_id is not None
            else f"experiments (none is named '{experiment}' yet)")
    print(f"privrec: MLflow UI, {what}: {url}", flush=True)
    if exp_id is not None:
        print("privrec: a sweep is one parent run: expand it (+) to see its jobs; tick runs and Compare to plot them.",
              flush=True)
    if started:
        print("privrec: serving on 127.0.0.1 only, telemetry off; Ctrl-C to stop.", flush=True)


# ---------------------------------------------------------------------------- main
def version_line() -> str:
    """``privrec --version``: ``privrec X.Y.Z``, plus the git commit when known (as runs record it:
    :func:`privrec.experiment.provenance`) and whether the checkout had uncommitted changes."""
    from privrec import __version__
    from privrec.experiment import provenance

    tags = provenance()
    commit = tags.get("git.commit") or tags.get("mlflow.source.git.commit")
    if not commit:
        return f"privrec {__version__}"
    dirty = ", uncommitted changes" if tags.get("git.dirty") == "true" else ""
    return f"privrec {__version__} (commit {commit}{dirty})"


def _usage_words() -> tuple[list[str], dict[str, list[str]]]:
    """The subcommands USAGE lists, and the actions of those listed with one (``data fetch``, ``data info``)."""
    block = USAGE.partition("commands:")[2].partition("\noptions:")[0]
    commands: list[str] = []
    actions: dict[str, list[str]] = {}
    for line in block.splitlines():
        if not line.startswith("  ") or line.startswith("   "):
            continue  # continuation lines are indented further
        words = line.split()
        if words and words[0] not in commands:
            commands.append(words[0])
        if len(words) > 1 and re.fullmatch(r"[a-z]+", words[1]):
            actions.setdefault(words[0], []).append(words[1])
    return sorted(commands), actions


def _shell_completion(argv: list[str], *, debug: bool) -> int:
    """``privrec -sc query=bash``: what the bash function printed by ``privrec run -sc install=bash`` runs on every
    Tab (Hydra's script calls the line's first word with ``-sc query=bash`` and the line in ``COMP_LINE``).

    After ``privrec``: the subcommands; after ``privrec data``: its actions; after ``privrec run``: Hydra's own
    completion of config groups, options and keys, given the line without ``run`` (which Hydra would take for an
    override, and fail). The line is cut at the cursor (``COMP_POINT``). ``install=bash``/``uninstall=bash`` go
    to Hydra as they are."""
    if not any(a.startswith("query=") for a in argv):
        return _run(argv, debug=debug)
    line = os.environ.get("COMP_LINE", "")  # bash sets it; without it, the line is empty
    point = os.environ.get("COMP_POINT", "")
    line = line[: int(point)] if point.isdigit() else line
    words = line.split()
    current = len(words) if not line or line[-1].isspace() else len(words) - 1  # the word being completed
    word = words[current] if current < len(words) else ""
    commands, actions = _usage_words()
    if current >= 2 and words[1] == "run":
        rest = " ".join([words[0], *words[2:]]) + (" " if current == len(words) else "")
        os.environ["COMP_LINE"], os.environ["COMP_POINT"] = rest, str(len(rest))
        return _run(argv, debug=debug)
    choices = [*commands, "--help", "--version"] if current <= 1 else actions.get(words[1], []) if current == 2 else []
    print(" ".join(c for c in choices if c.startswith(word)))
    return 0


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      line: str | None = None) -> str:
    return f"privrec: {category.__name__}: {message}\n"


def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or "1" in (os.environ.get("HYDRA_FULL_ERROR"), os.environ.get(DEBUG_ENV))
    argv = [a for a in argv if a != "--debug"]
    if debug:
        os.environ["HYDRA_FULL_ERROR"] = "1"
        os.environ[DEBUG_ENV] = "1"  # a sweep's workers inherit it
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] in ("-V", "--version"):
        print(version_line())
        return 0
    if argv[0] in ("-sc", "--shell-completion"):  # what the installed bash completion calls on every Tab
        return _shell_completion(argv, debug=debug)
    command, rest = argv[0], argv[1:]
    handlers = {"run": lambda: _run(rest, debug=debug), "data": lambda: _data(rest), "ui": lambda: _ui(rest),
                "release": lambda: _release(rest), "reproduce": lambda: _reproduce(rest),
                "report": lambda: _report(rest), "sync": lambda: _sync(rest)}
    if command not in handlers:
        return _fail(f"command must be one of {sorted(handlers)}; got {command!r}. See privrec --help.")
    try:
        return handlers[command]()
    except PrivRecError as exc:
        if debug:
            raise
        return _fail(str(exc))


def entry() -> None:
    """The ``privrec`` console script: :func:`main`, then exit (:func:`privrec.speed.exit`: without the
    interpreter's teardown when speed tricks are on; every file and helper process of the command is closed
    and the record written before ``main`` returns)."""
    from privrec import speed

    speed.exit(main())


if __name__ == "__main__":  # pragma: no cover
    # ``python -m privrec.cli`` runs this file as __main__: use the module privrec.cli itself, so that a sweep's
    # workers (which import privrec.cli) and this process share one task function and one _STATE.
    from privrec.cli import entry as _entry

    _entry()
