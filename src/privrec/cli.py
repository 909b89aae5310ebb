"""``privrec``: the Hydra entry point (``privrec run``) and the other subcommands.

User errors print one line and exit with code 2; ``--debug`` (or ``HYDRA_FULL_ERROR=1``) shows tracebacks.
"""

from __future__ import annotations

import os

# Before numpy/scipy/implicit load: one BLAS thread (implicit asks for it), no MLflow telemetry.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from privrec.errors import ConfigError, PrivRecError  # noqa: E402

__all__ = ["config_dir", "entry", "main"]

USAGE = """usage: privrec <command> [options]

commands:
  run [-m] [overrides...]     run one experiment (or a sweep with -m); see conf/config.yaml for keys
  release [overrides] out=DIR write the treated dataset (interactions, attributes, privacy report), no training
  data fetch NAME             download a dataset into data_dir (ml-100k)
  data info [overrides...]    describe the configured dataset
  report [--experiment E] [--sweep latest] [--x X] [--y Y]
                              frontier figure (PNG, SVG) and tables (Markdown, LaTeX) of a sweep
  reproduce RUN_ID            re-run a recorded run from its resolved config and compare every metric
  ui [--port N]               open the MLflow UI on the tracking store (127.0.0.1 only)

options: --debug  show full tracebacks;  privrec run --help  lists config groups and options
examples:
  privrec run
  privrec run model=bpr privacy.rate=0.5 seed=1
  privrec run -m privacy=consent_drop privacy.rate=0,0.25,0.5 model=als,bpr seed=0,1,2
"""


class _UserError(Exception):
    """Raised inside a Hydra job after the one-line message has been printed."""


def config_dir() -> Path:
    """The Hydra config folder: shipped inside the package, or the checkout's top-level ``conf/``."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise ConfigError("privrec's config folder must exist; found neither the packaged conf/ nor a checkout's conf/.")


def _fail(message: str) -> int:
    print(f"privrec: error: {message}", file=sys.stderr)
    return 2


def _check_choices(overrides: list[str], conf: Path) -> None:
    """One-line errors for unknown config-group options (``model=nope``) before Hydra composes anything."""
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


# ---------------------------------------------------------------------------- run
_ATTACK_PROCESS: list = []  # the attack worker process started early for this command's single run


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _start_attack_process() -> None:
    """Start :mod:`privrec.attacks.worker` now (before Hydra or numpy are imported here) on a machine with a
    spare core; :func:`_task` hands it to the run. Importing ``privrec.attacks`` here would cost ~1 s first."""
    if _usable_cores() >= 2 and not _ATTACK_PROCESS:
        import subprocess

        _ATTACK_PROCESS.append(subprocess.Popen([sys.executable, "-m", "privrec.attacks.worker"],
                                                stdin=subprocess.PIPE, stdout=subprocess.PIPE))


def _discard_attack_process() -> None:
    while _ATTACK_PROCESS:
        proc = _ATTACK_PROCESS.pop()
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()


def _run(argv: list[str], *, debug: bool) -> int:
    conf = config_dir()
    try:
        _check_choices([a for a in argv if not a.startswith("-")], conf)
    except ConfigError as exc:
        return _fail(str(exc))
    multirun = any(a in ("-m", "--multirun") for a in argv)
    info_only = any(a.startswith(("--cfg", "-c", "--help", "-h", "--info", "--hydra-help")) for a in argv)
    if not (multirun or info_only) and "attack=none" not in argv and "parallel_attacks=false" not in argv:
        _start_attack_process()  # imports the attack stack on the other core while this process trains
    import hydra

    from privrec import _hydra

    if _hydra.mode_is_never_configured(argv, conf):
        _hydra.skip_mode_probe()
    if multirun:
        _hydra.validate_structures_once()
    state: dict[str, Any] = {"user_error": False}

    @hydra.main(version_base="1.3", config_path=str(conf), config_name="config")
    def task(cfg) -> dict[str, float] | None:
        try:
            return _task(cfg, multirun=multirun)
        except PrivRecError as exc:
            state["user_error"] = True
            if debug:
                raise
            print(f"privrec: error: {exc}", file=sys.stderr)
            if multirun:
                raise _UserError(str(exc)) from None
            raise SystemExit(2) from None

    sys.argv = ["privrec run", *argv]
    from privrec.tracking.hydra_callback import close_parent_run

    try:
        task()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        return 2 if (state["user_error"] and code != 0) else code
    finally:
        from privrec.tracking.buffered import discard_writer

        discard_writer()  # unused when the config failed or tracking is off
        _discard_attack_process()  # unused with attack=none, parallel_attacks=false or a failed config
        try:
            close_parent_run("FAILED")  # only acts when a sweep ended without on_multirun_end
        except Exception:  # pragma: no cover - the store is gone; nothing more to close
            pass
    return 0


def _task(cfg, *, multirun: bool) -> dict[str, float]:
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from privrec import experiment

    container = OmegaConf.to_container(cfg, resolve=True)
    hydra_dir = Path(HydraConfig.get().runtime.output_dir) / ".hydra"
    tracking = container.get("tracking") or {}
    if tracking.get("enabled", True):
        from privrec.tracking.buffered import BufferedMlflowTracker

        # Sweep jobs fall back to MLflow in-process (all cores are busy with jobs); a single run starts a
        # writer process so that MLflow's import overlaps the pipeline on the other core.
        tracker = BufferedMlflowTracker(tracking_uri=tracking.get("tracking_uri"),
                                        experiment=tracking.get("experiment", "privrec"),
                                        fallback="inprocess" if multirun else "subprocess")
    else:
        from privrec.tracking.base import MemoryTracker

        tracker = MemoryTracker()
    show = bool(container.get("progress", True)) and not multirun
    bar = None

    def on_stage(name: str) -> None:
        # Created at the first stage, i.e. after the config was validated: a config error prints one line only.
        nonlocal bar
        if not show:
            return
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=len(experiment.STAGES), desc="privrec", unit="stage", leave=False, file=sys.stderr,
                       disable=None, bar_format="{desc}: {n_fmt}/{total_fmt} {postfix} [{elapsed}]")
        else:
            bar.update(1)
        bar.set_postfix_str(name)

    mode = container.get("parallel_attacks", "auto")
    mode = {True: "true", False: "false"}.get(mode, str(mode).lower())
    if mode not in ("auto", "true", "false"):
        raise ConfigError(f"parallel_attacks must be auto, true or false; got {container.get('parallel_attacks')!r}.")
    worker = None
    if not multirun and mode != "false":
        from privrec.attacks.worker import AttackWorker

        proc, _ATTACK_PROCESS[:] = (_ATTACK_PROCESS or [None])[0], []
        if proc is not None or mode == "true" or _usable_cores() >= 2:
            worker = AttackWorker(proc)
    try:
        result = experiment.run(container, tracker=tracker, hydra_dir=hydra_dir, on_stage=on_stage,
                                attack_worker=worker)
    finally:
        if bar is not None:
            bar.close()
        if worker is not None:
            worker.close()
    print(summary(container, result, multirun=multirun, job=HydraConfig.get().job.get("num")))
    objectives = container.get("objectives")
    if objectives:  # a sweeper that optimises (Optuna) gets the named metrics, in order
        missing = [k for k in objectives if k not in result.metrics]
        if missing:
            raise ConfigError(f"objectives must name metrics the run produces; got {missing[0]!r}; "
                              f"e.g. {sorted(k for k in result.metrics if k.startswith(('eval/', 'attack/')))[:8]}.")
        return tuple(float(result.metrics[k]) for k in objectives)
    return result.metrics


def summary(cfg: dict, result, *, multirun: bool = False, job: Any = None) -> str:
    """A short table: nDCG@10 / recall@20 overall and per consent segment, users withheld, run location."""
    m = result.metrics
    cut_lo, cut_hi = min(cfg["evaluation"]["cutoffs"]), max(cfg["evaluation"]["cutoffs"])
    keys = (f"ndcg_at_{cut_lo}", f"recall_at_{cut_hi}")
    model = cfg["model"]["_target_"].rsplit(".", 1)[-1]
    privacy = cfg["privacy"]["_target_"].rsplit(".", 1)[-1]
    if multirun:
        parts = [f"{k}={m.get(f'eval/{k}', float('nan')):.4f}" for k in keys]
        return f"[job {job}] {model} {privacy} seed={cfg.get('seed')}: " + " ".join(parts)
    lines = [f"privrec: {result.report.transform} on {cfg['dataset']['_target_'].rsplit('.', 1)[-1]}, "
             f"model {model}, seed {cfg.get('seed')}",
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
        reid = sorted((k for k in attacks if k.startswith("attack/reid_rate_m")), key=lambda k: int(k.rsplit("m", 1)[1]))
        headline = reid[-1:] + [k for k in attacks if "auc" in k and "tpr" not in k]
        lines.append("  attacks: " + ", ".join(f"{k.removeprefix('attack/')}={m[k]:.3f}" for k in headline)
                     + f" ({len(attacks)} attack metrics in MLflow)")
    lines.append(f"  MLflow: {result.tracking}")
    lines.append("  compare runs: privrec ui")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- data
def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    conf = config_dir()
    _check_choices(overrides, conf)
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def _data(argv: list[str]) -> int:
    from omegaconf import OmegaConf

    parser = argparse.ArgumentParser(prog="privrec data")
    parser.add_argument("action", choices=["fetch", "info"])
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    if args.action == "fetch":
        from privrec.data.fetch import fetch_movielens_100k

        names = args.rest or ["ml-100k"]
        if names != ["ml-100k"]:
            raise ConfigError(f"data fetch supports ['ml-100k']; got {names}. Place other datasets by hand.")
        data_dir = args.data_dir or os.environ.get("PRIVREC_DATA_DIR", "data")
        path = fetch_movielens_100k(data_dir)
        print(f"privrec: ml-100k is ready in {path}")
        return 0
    cfg = OmegaConf.to_container(_compose(args.rest), resolve=True)
    from privrec.data.fetch import describe
    from privrec.experiment import load_data

    data, stats = load_data(cfg["dataset"], cfg.get("preprocess"), args.data_dir or cfg["data_dir"])
    info = describe(data)
    width = max(map(len, info))
    print("\n".join(f"{k:<{width}}  {v}" for k, v in info.items()))
    print(f"{'sha256':<{width}}  {data.checksum()}")
    return 0


# ---------------------------------------------------------------------------- release
def _release(argv: list[str]) -> int:
    outs = [a.partition("=")[2] for a in argv if a.startswith("out=")]
    overrides = [a for a in argv if not a.startswith("out=")]
    if len(outs) != 1 or not outs[0]:
        raise ConfigError(f"release needs exactly one out=DIR; got {len(outs)}. Example: privrec release out=released/")
    out = Path(outs[0])
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"release out must be a new or empty folder; got {str(out)!r}, which is not empty.")
    from omegaconf import OmegaConf

    from privrec.release import release

    cfg = OmegaConf.to_container(_compose(overrides), resolve=True)
    report = release(cfg, out)
    metrics = ", ".join(f"{k}={v:g}" for k, v in list(report.metrics.items())[:6])
    print(f"privrec: released {report.transform} data to {out}/ ({metrics})")
    return 0


# ---------------------------------------------------------------------------- report
def _report(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="privrec report", description="frontier figure and tables of a sweep")
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
    import gc

    from privrec.reporting import default_x, write_report
    from privrec.tracking.query import load_runs, log_report_artifacts

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    runs = load_runs(args.tracking_uri, experiment=args.experiment,
                     sweep=None if args.sweep == "all" else args.sweep)
    x = args.x or default_x(runs)
    out = Path(args.out or Path("report") / args.experiment)
    out.mkdir(parents=True, exist_ok=True)
    group = None if args.group.lower() == "none" else args.group
    paths = write_report(runs, x=x, y=args.y, out_dir=out, group=group, panels=args.panels, baseline=args.baseline,
                         measures=args.measure, title=f"{args.experiment}: {len(runs)} runs")
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
    parser = argparse.ArgumentParser(prog="privrec reproduce")
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


# ---------------------------------------------------------------------------- ui
def _ui(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="privrec ui")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args(argv)
    from privrec.tracking.mlflow_tracker import resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri)
    print(f"privrec: MLflow UI for {uri} at http://127.0.0.1:{args.port} (Ctrl-C to stop)")
    import subprocess

    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(args.port)]
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 0


# ---------------------------------------------------------------------------- main
def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"privrec: {category.__name__}: {message}\n"


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.formatwarning = _one_line_warning
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("HYDRA_FULL_ERROR") == "1"
    argv = [a for a in argv if a != "--debug"]
    if debug:
        os.environ["HYDRA_FULL_ERROR"] = "1"
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    handlers = {"run": lambda: _run(rest, debug=debug), "data": lambda: _data(rest), "ui": lambda: _ui(rest),
                "release": lambda: _release(rest), "reproduce": lambda: _reproduce(rest),
                "report": lambda: _report(rest)}
    if command not in handlers:
        return _fail(f"command must be one of {sorted(handlers)}; got {command!r}. See privrec --help.")
    try:
        return handlers[command]()
    except PrivRecError as exc:
        if debug:
            raise
        return _fail(str(exc))


def entry() -> None:
    """The ``privrec`` console script: :func:`main`, then exit without the interpreter's teardown.

    Tearing down numpy/scipy/scikit-learn/pandas/Hydra module state costs ~0.5 s at every exit and does
    nothing a finished command needs: output streams and log handlers are flushed and closed here, and every
    file and helper process of the command has been closed (the MLflow record is committed, the attack
    worker reaped) before ``main`` returns. Exceptions: a sweep exits normally (so that joblib's resource
    tracker releases its shared-memory folders and semaphores) after asking its idle workers to stop all at
    once; a process under a profiler or tracer (cProfile, coverage) exits normally to write its results."""
    code = main()
    if sys.getprofile() or sys.gettrace():
        sys.exit(code)  # profilers and coverage tools write their results at a normal exit
    if any(a in ("-m", "--multirun") for a in sys.argv[1:]):
        from privrec import _hydra

        _hydra.stop_workers()
        sys.exit(code)  # a normal exit, so that joblib's resource tracker releases its folders and semaphores
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (e.g. `privrec run | head`)
            pass
    os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":  # pragma: no cover
    entry()
