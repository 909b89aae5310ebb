"""privrec from Python (a notebook, a script): the same experiments as ``privrec run``, without a shell.

- :func:`compose` builds the config ``privrec run`` would run for a list of overrides: Hydra's Compose API on
  privrec's own config folder, the same defaults, the same checks (unknown options, a secret on the command
  line) and the same one-line :class:`~privrec.errors.ConfigError` for a bad override.
- :func:`run` runs one experiment and returns a :class:`RunResult` (metrics, params, tags, the record).
  ``track=False`` (the default) writes nothing anywhere; ``track=True`` writes the run into the configured
  MLflow store like the CLI does, through the one writer (:func:`privrec.tracking.write_record`).
- :func:`load_runs` reads the runs of an experiment back as a pandas DataFrame (MLflow's client only).

Hydra's global state is left as it was found (``hydra.initialize_config_dir`` is used as a context manager),
so these functions can be called any number of times in one process. Sweeps stay the CLI's business
(``privrec run -m``): their parallel workers and parent runs need a command's lifetime.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from privrec.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from privrec.tracking.record import RunRecord

__all__ = ["RunResult", "compose", "load_runs", "run"]


@dataclass(frozen=True)
class RunResult:
    """One run's outcome: its resolved ``config`` (read-only), its ``record`` and, when it was tracked, where.

    ``result.metrics["eval/ndcg_at_10"]``, ``result.params["privacy.rate"]``, ``result.tags["data.sha256"]`` read
    the record (read-only mappings, as MLflow stores them); ``result.config.model.factors`` the config;
    :meth:`segments` the per-segment table. ``run_id`` is the MLflow run id with ``track=True`` (else None);
    ``saved`` the ``record.json`` kept when the store failed (write it later with ``privrec sync``).
    """

    config: DictConfig
    record: RunRecord
    run_id: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    saved: Path | None = None

    @property
    def metrics(self) -> Mapping[str, float]:
        return self.record.metrics

    @property
    def params(self) -> Mapping[str, str]:
        return self.record.params

    @property
    def tags(self) -> Mapping[str, str]:
        return self.record.tags

    @property
    def artifacts(self) -> Mapping[str, str]:
        return self.record.artifacts

    @property
    def run_name(self) -> str:
        return self.record.run_name

    @property
    def status(self) -> str:
        return self.record.status

    def segments(self) -> pd.DataFrame:
        """The per-segment metrics table (the run's ``segment_metrics.csv`` artifact): one row per segment
        (overall, consented, opted_out, gender=F, ...), one column per metric."""
        import io

        import pandas as pd

        return pd.read_csv(io.StringIO(self.record.artifacts["segment_metrics.csv"]), index_col=0)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k.removeprefix('eval/')}={self.metrics[k]:.4f}"
                          for k in ("eval/ndcg_at_10", "eval/recall_at_20") if k in self.metrics)
        where = f"run {self.run_id}" if self.run_id else "not tracked"
        return f"RunResult({self.run_name!r}, {self.status}, {shown or 'no eval metrics'}, {where})"


def _overrides(overrides: Sequence[str] | None) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, str) or not isinstance(overrides, Sequence):
        raise ConfigError(f"overrides must be a list of key=value strings, e.g. ['model=bpr', 'seed=1']; got "
                          f"{type(overrides).__name__}{' ' + repr(overrides) if isinstance(overrides, str) else ''}.")
    return list(overrides)


def _composed(overrides: list[str]) -> tuple[DictConfig, Any]:
    """(the job's config without the ``hydra`` node, the ``hydra`` node) as ``privrec run`` composes them."""
    from hydra.core.global_hydra import GlobalHydra

    from privrec import cli

    if GlobalHydra.instance().is_initialized():
        raise ConfigError("privrec.compose and privrec.run must be called outside an initialized Hydra (a Hydra "
                          "app or an open hydra.initialize(...)); got Hydra initialized. Close it first (use "
                          "hydra.initialize as a context manager).")
    cfg = cli._compose(overrides, command="run", hydra_node=True)
    job = OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])
    return job, cfg.hydra


def compose(overrides: Sequence[str] | None = None) -> DictConfig:
    """The resolved config ``privrec run <overrides>`` would run (without the ``hydra`` node).

    Same config folder, defaults, checks and error messages as the CLI: a bad override raises a one-line
    :class:`~privrec.errors.ConfigError`; ``${...}`` interpolations are resolved (``data_dir`` from
    ``$PRIVREC_DATA_DIR``, the store from ``$MLFLOW_TRACKING_URI``) as a run resolves them."""
    from privrec import cli

    job, _ = _composed(_overrides(overrides))
    return OmegaConf.create(cli._plain(job, resolve=True))


def run(overrides: Sequence[str] | None = None, *, track: bool = False) -> RunResult:
    """Run one experiment as ``privrec run <overrides>`` does, in this process, and return its result.

    The config is checked and every component built before any work (a bad value raises a one-line
    ConfigError). ``track=False``: nothing is written anywhere (no MLflow run, no Hydra folder).
    ``track=True``: the run is written into the configured store (``tracking.tracking_uri``, else
    ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``; ``tracking.experiment``) by the same writer as the
    CLI, a FAILED run included when the pipeline raises; ``tracking.enabled=false`` still keeps it out. If the
    store fails after the work, the record is saved in a temporary folder (``result.saved``, one warning) for
    ``privrec sync``. Attacks run in this process (the CLI's second process is a command-line speed trick)."""
    if not isinstance(track, bool):
        raise ConfigError(f"track must be True or False; got {track!r}.")
    from privrec import cli, experiment
    from privrec.tracking.record import now_ms
    from privrec.tracking.store import open_store, repair, write_record

    job, hydra_node = _composed(_overrides(overrides))
    hydra_files = cli._hydra_files(job, hydra_node)
    container = cli._plain(job, resolve=True)
    tracking = container.get("tracking") or {}
    if not isinstance(tracking, dict):
        raise ConfigError(f"tracking must be a mapping with enabled, experiment and tracking_uri; got {tracking!r}.")
    enabled = cli._flag(tracking, "enabled", True, prefix="tracking.")
    cli._flag(container, "progress", True)
    cli._flag(container, "resume", False)
    mode = container.get("parallel_attacks", "auto")
    if not isinstance(mode, bool) and mode not in ("auto", "true", "false"):
        raise ConfigError(f"parallel_attacks must be auto, true or false; got {mode!r}.")
    plan = cli._plan(experiment, container)  # every component built: config errors before any work
    store = None
    if track and enabled:
        store = open_store(tracking.get("tracking_uri"), tracking.get("experiment", "privrec"))
        repaired = repair(store)
        if repaired:
            warnings.warn(f"marked {repaired} run(s) left RUNNING by a killed process as FAILED "
                          f"(tag privrec.interrupted).", stacklevel=2)
    keep = Path(tempfile.gettempdir()) / "privrec-unsynced" / f"{now_ms()}-{os.urandom(3).hex()}"
    start = now_ms()
    try:
        record = experiment.run(plan, hydra_files=hydra_files)
    except BaseException as exc:
        if store is not None:
            failed = experiment.failed_record(container, exc, start_time=start, hydra_files=hydra_files)
            write_record(store, failed, save_to=keep)
        raise
    config = OmegaConf.create(container)
    OmegaConf.set_readonly(config, True)
    if store is None:
        return RunResult(config=config, record=record)
    written = write_record(store, record, save_to=keep)
    if written.saved is not None:
        warnings.warn(f"the run could not be written to {store.uri} ({written.error}); it is saved in "
                      f"{written.saved} - write it later with: privrec sync {written.saved.parent}", stacklevel=2)
    return RunResult(config=config, record=record, run_id=written.run_id, tracking_uri=store.uri,
                     experiment=tracking.get("experiment", "privrec"), saved=written.saved)


def load_runs(experiment: str = "privrec", tracking_uri: str | None = None) -> pd.DataFrame:
    """The runs of ``experiment`` in a store (``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else
    ``sqlite:///mlflow.db``), one row per run, oldest first; sweep parent runs are not rows of their own.

    Columns: ``run_id``, ``run_name``, ``status``, ``start_time``, ``end_time`` (UTC), ``parent_run_id`` and
    ``parent_run_name`` (the sweep a run belongs to; missing (NaN) for a single run), then ``params.<key>``
    (strings, as logged, e.g. ``params.privacy.rate``) and ``metrics.<name>`` (floats, e.g.
    ``metrics.eval/ndcg_at_10``). Reading never creates a store: a store or experiment that does not exist yet
    gives an empty frame and one warning."""
    from privrec.tracking.query import runs_table

    if not isinstance(experiment, str) or not experiment:
        raise ConfigError(f"experiment must be a non-empty experiment name; got {experiment!r}.")
    return runs_table(tracking_uri, experiment=experiment)
