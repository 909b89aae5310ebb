"""privrec's Hydra sweeper: Hydra's basic sweeper that checks one job per config structure before launching.

Select it with ``hydra/sweeper=privrec`` (privrec's default, see ``conf/hydra/privrec.yaml``). It sweeps the
cartesian product of the sweep overrides from ``hydra.sweeper.params`` (e.g. an experiment preset) and from
the command line, in the order and job numbering of Hydra's basic sweeper, in batches of ``max_batch_size``
jobs (null: one batch). It differs in two ways:

- Before the first job starts, it composes the config of one job per distinct config *structure*
  (:func:`structures`) instead of every job (Hydra composes a privrec config in ~0.15 s, serially: 4.5 s of a
  30-job sweep). Whether a config composes depends on which config-group options are selected and which keys
  are overridden, added (``+``/``++``) or deleted (``~``); not on the values of plain keys, since privrec's
  configs are untyped YAML whose values are checked when a job builds its components. Keys under ``hydra.``
  are typed (Hydra's structured config), so their values count as structure. A sweep over ``privacy.rate`` x
  ``seed`` has one structure, ``model=als,bpr`` makes two; the same errors are caught before any job starts.
- It sets ``PRIVREC_SWEEP_JOBS`` in the environment to the number of jobs the sweep launches, and
  ``PRIVREC_SWEPT_KEYS`` to the override keys whose value varies across them (they lead each job's run name and
  line), before the first batch (the launcher's workers inherit them).
- It reports the sweep (:mod:`._report`): privrec's launcher prints each job's line and the progress as jobs end;
  at the end (also when a failed job stops the sweep) the warnings of all jobs, each once with a count, and a
  summary table: jobs finished and failed, the best and worst settings by nDCG@10, where the runs went.

As with the basic sweeper, every job's ``return_value`` is read after its batch, so that a failed job raises
its exception once the batch has ended.
"""

import contextlib
import functools
import io
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_loader import ConfigLoader
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.errors import HydraException
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.privrec_launcher import _report
from privrec.tracking.hydra_callback import PARENT_ENV, SWEPT_ENV, varying_keys

__all__ = ["SWEEP_JOBS_VARIABLE", "PrivrecSweeper", "PrivrecSweeperConf", "group_test", "job_overrides",
           "structures"]

log = logging.getLogger(__name__)

SWEEP_JOBS_VARIABLE = "PRIVREC_SWEEP_JOBS"


@dataclass
class PrivrecSweeperConf:
    _target_: str = "hydra_plugins.privrec_launcher.privrec_sweeper.PrivrecSweeper"
    max_batch_size: int | None = None
    params: dict[str, str] | None = None


ConfigStore.instance().store(group="hydra/sweeper", name="privrec", node=PrivrecSweeperConf, provider="privrec")


def structures(batch: Sequence[Sequence[str]], is_group: Callable[[str], bool]) -> list[Sequence[str]]:
    """One job (the first) per distinct config structure in ``batch``.

    A job's structure is, for each of its overrides: the kind (change, add, force-add, delete), the key or
    group and its package, and - for a config group (``is_group(key)``) or a key under ``hydra.`` - the value."""
    parser = OverridesParser.create()
    seen: dict[tuple, Sequence[str]] = {}
    for overrides in batch:
        key = []
        for o in parser.parse_overrides(list(overrides)):
            group = is_group(o.key_or_group)
            counts = group or o.key_or_group.startswith("hydra.")
            value = o.get_value_element_as_str() if counts and o.value() is not None else None
            key.append((o.type.name, o.key_or_group, o.package, group, value))
        seen.setdefault(tuple(sorted(key, key=repr)), overrides)
    return list(seen.values())


def group_test(config_loader: ConfigLoader) -> Callable[[str], bool]:
    """``is_group(name)`` for :func:`structures`: whether ``name`` (``model``, ``hydra/launcher``) is a
    config group of ``config_loader``'s search path."""

    groups = functools.cache(lambda parent: frozenset(config_loader.list_groups(parent)))

    def is_group(name: str) -> bool:
        parent, _, leaf = name.rpartition("/")
        return leaf in groups(parent)

    return is_group


def job_overrides(overrides: Sequence[Override]) -> list[list[str]]:
    """The cartesian product of the sweep ``overrides``, in Hydra's basic sweeper's order (a key given twice
    keeps its first position and its last values)."""
    axes: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                assert override.value_type is not None
                raise HydraException(f"{PrivrecSweeper.__name__} does not support sweep type : "
                                     f"{override.value_type.name}")
            axes[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            axes[key] = [f"{key}={override.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*axes.values())]


def _record(report: _report.SweepReport, idx: int, ret: JobReturn) -> None:
    """Count a job another launcher ran (it printed its own line) for the summary."""
    error = None
    with contextlib.redirect_stderr(io.StringIO()):  # ``return_value`` reports a failed job on stderr
        try:
            value = ret.return_value
        except BaseException as exc:  # noqa: BLE001 - the job's own exception, stored by run_job
            error, value = exc, None
    report.job_done(idx, list(ret.overrides or ()), value=value, error=error, echo=False)


class PrivrecSweeper(Sweeper):
    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None) -> None:
        if max_batch_size is not None and max_batch_size != -1 and max_batch_size < 1:
            raise ValueError(f"hydra.sweeper.max_batch_size must be a positive number of jobs or null; "
                             f"got {max_batch_size}.")
        self.max_batch_size = None if max_batch_size == -1 else max_batch_size
        self.params = dict(params or {})
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        jobs = job_overrides(overrides)
        size = self.max_batch_size or max(len(jobs), 1)
        batches = [jobs[i:i + size] for i in range(0, len(jobs), size)]

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        self.validate_batch_is_legal(jobs)  # every batch, before the first job starts
        os.environ[SWEEP_JOBS_VARIABLE] = str(len(jobs))
        swept = varying_keys(jobs)
        os.environ[SWEPT_ENV] = json.dumps(swept)
        report = _report.start(len(jobs), swept=swept)
        returns: list[Sequence[JobReturn]] = []
        initial_job_idx = 0
        try:
            for batch in batches:
                results = self.launcher.launch(batch, initial_job_idx=initial_job_idx)
                for i, r in enumerate(results):  # another launcher's jobs printed their own lines
                    if initial_job_idx + i not in report.results:
                        _record(report, initial_job_idx + i, r)
                for r in results:
                    _ = r.return_value  # a failed job raises its exception here, after its batch
                initial_job_idx += len(batch)
                returns.append(results)
        except KeyboardInterrupt:
            report.clear()
            raise
        except BaseException:
            report.finish(where=self._where())
            raise
        else:
            report.finish(where=self._where())
        finally:
            _report.stop()
        return returns

    def _where(self) -> str:
        """Where the runs went: the parent run, experiment and store (when tracked), and the job folders."""
        assert self.config is not None
        folders = f"\n  job folders: {self.config.hydra.sweep.dir}/"
        tracking = self.config.get("tracking") or {}
        parent = os.environ.get(PARENT_ENV)
        if not parent or not tracking.get("enabled", True):
            return f"not tracked (tracking.enabled=false){folders}"
        return (f"parent run {parent} in experiment '{tracking.get('experiment')}' at {tracking.get('tracking_uri')} "
                f"(privrec ui){folders}")

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Compose one job of each distinct structure in ``batch`` (see :func:`structures`); raises Hydra's
        composition error of the first that does not compose."""
        assert self.hydra_context is not None and self.config is not None
        loader = self.hydra_context.config_loader
        tic = time.perf_counter()
        checked = structures(batch, group_test(loader))
        for overrides in checked:
            loader.load_sweep_config(master_config=self.config, sweep_overrides=list(overrides))
        log.debug("Validated %d config structures of %d jobs in %.2f s", len(checked), len(batch),
                  time.perf_counter() - tic)
