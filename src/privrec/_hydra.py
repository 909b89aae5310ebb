"""Two adjustments to Hydra's run/multirun driver, made only inside the ``privrec`` command's own process.

Both remove repeated config composition (Hydra composes the full config in ~0.15-0.4 s here) without changing
what runs:

- :func:`skip_mode_probe`: before every run Hydra composes the whole config once only to read ``hydra.mode``
  (``Hydra.get_mode``), then composes it again for the job. When no privrec config file and no command-line
  argument can set ``hydra.mode`` (:func:`mode_is_never_configured`), that probe's answer is known - ``None``,
  i.e. "decided by ``-m``" - and is given without composing.
- :func:`validate_structures_once`: before launching a batch, Hydra's sweepers compose every job's config in
  the main process to catch composition errors early (an unknown key, a group option that does not exist):
  ~0.15 s per job, serially, before the first job starts (4.5 s of a 30-job sweep, 18 s of the 120-job consent
  preset). Whether a config composes depends only on which config-group options are selected and which keys
  are overridden, added (``+``) or deleted (``~``) - not on the values of plain keys (privrec's configs are
  untyped YAML; values are checked by the components when a job builds them). So one job per distinct
  *structure* (:func:`structures`) is composed: a sweep over ``privacy.rate`` x ``seed`` has one structure,
  ``model=als,bpr`` makes two. The same errors are caught, before any job starts.

These are applied by patching two Hydra methods in this process (Hydra has no setting for either); they are
not installed as a Hydra plugin on purpose, so other Hydra applications in the same environment are unaffected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["cache_compositions", "mode_is_never_configured", "skip_mode_probe", "stop_workers", "structures",
           "validate_structures_once"]


def mode_is_never_configured(argv: Sequence[str], conf: Path) -> bool:
    """Whether neither ``argv`` nor any YAML file under ``conf`` can set ``hydra.mode``."""
    if any("hydra.mode" in a or "searchpath" in a or a.startswith(("-cd", "--config-dir", "-cp", "--config-path",
                                                                    "-cn", "--config-name")) for a in argv):
        return False
    for path in conf.rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if (re.search(r"^hydra:|@package\s+hydra", text, re.MULTILINE)
                and re.search(r"^\s*mode\s*:", text, re.MULTILINE)):
            return False
    return True


def skip_mode_probe() -> None:
    """Answer ``Hydra.get_mode`` with ``None`` (call only when :func:`mode_is_never_configured`)."""
    from hydra._internal.hydra import Hydra

    Hydra.get_mode = lambda self, config_name, overrides: None


def structures(batch: Sequence[Sequence[str]], is_group: Callable[[str], bool]) -> list[Sequence[str]]:
    """One job (the first) per distinct config structure in ``batch``; ``is_group(key)`` says whether an
    override key names a config group (its option is then part of the structure)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    seen: dict[tuple, Sequence[str]] = {}
    for overrides in batch:
        key = []
        for o in parser.parse_overrides(list(overrides)):
            group = is_group(o.key_or_group)
            option = o.get_value_element_as_str() if group and not o.is_delete() else None
            key.append((o.type.name, o.key_or_group, o.package, group, option))
        seen.setdefault(tuple(sorted(key, key=repr)), overrides)
    return list(seen.values())


def validate_structures_once() -> None:
    """Make Hydra's sweepers compose one job per distinct structure when validating a batch.

    The method is defined on Hydra's ``Sweeper`` base class (the basic sweeper inherits it). It is patched
    there: Hydra loads its sweeper plugin modules without registering them in ``sys.modules``, so the class it
    instantiates is not the one an ``import`` of the basic sweeper's module would give."""
    from hydra.plugins.sweeper import Sweeper

    original = Sweeper.validate_batch_is_legal
    if getattr(original, "_privrec", False):
        return

    def validate(self, batch):
        loader = self.hydra_context.config_loader if getattr(self, "hydra_context", None) else self.config_loader
        repository = getattr(loader, "repository", None)
        if repository is None:  # an unexpected loader: validate every job, as Hydra does
            return original(self, batch)
        return original(self, structures(batch, repository.group_exists))

    validate._privrec = True
    Sweeper.validate_batch_is_legal = validate


# ------------------------------------------------------------------ composition cache (sweep workers)
_DEFAULTS: dict = {}  # (config name, group overrides, flags) -> Hydra's DefaultsList of the first such job
_COMPOSED: dict = {}  # id(defaults) -> (defaults, the config composed from them, before any value override)


def cache_compositions() -> None:
    """Compose each distinct config structure once per process (used in sweep workers).

    A job's config is composed by Hydra in two expensive steps that depend only on the config-group choices -
    building the defaults list and merging the config files it names (~0.2 s) - followed by cheap ones that
    apply the job's value overrides and fill in ``hydra.*`` (overrides, choices, override_dirname, ...). This
    caches the two expensive steps by the job's group overrides and hands back a deep copy of the merged
    config, so the cheap steps run unchanged for every job. ``tests/test_hydra_adjustments.py`` checks that the
    configs are identical to Hydra's own for group sweeps, value sweeps, added keys and Hydra overrides."""
    import copy

    from hydra._internal import config_loader_impl as cli_impl
    from hydra._internal.defaults_list import DefaultsList, Overrides

    if getattr(cli_impl.create_defaults_list, "_privrec", False):
        return
    original_defaults = cli_impl.create_defaults_list
    original_compose = cli_impl.ConfigLoaderImpl._compose_config_from_defaults_list

    def create_defaults_list(repo, config_name, overrides_list, prepend_hydra, skip_missing):
        groups = tuple(o.input_line for o in overrides_list
                       if not o.is_sweep_override() and repo.group_exists(o.key_or_group)
                       and not isinstance(o.value(), dict))
        key = (config_name, prepend_hydra, skip_missing, groups)
        hit = _DEFAULTS.get(key)
        if hit is None:
            hit = original_defaults(repo=repo, config_name=config_name, overrides_list=overrides_list,
                                    prepend_hydra=prepend_hydra, skip_missing=skip_missing)
            _DEFAULTS[key] = hit
            return hit
        values = Overrides(repo=repo, overrides_list=overrides_list).config_overrides  # this job's value overrides
        return DefaultsList(defaults=hit.defaults, defaults_tree=hit.defaults_tree, config_overrides=values,
                            overrides=hit.overrides)

    def compose(self, defaults, repo):
        entry = _COMPOSED.get(id(defaults))
        if entry is not None and entry[0] is defaults:
            return copy.deepcopy(entry[1])
        cfg = original_compose(self, defaults=defaults, repo=repo)
        if any(d.defaults is defaults for d in _DEFAULTS.values()):
            _COMPOSED[id(defaults)] = (defaults, copy.deepcopy(cfg))
        return cfg

    create_defaults_list._privrec = True
    cli_impl.create_defaults_list = create_defaults_list
    cli_impl.ConfigLoaderImpl._compose_config_from_defaults_list = compose


# ------------------------------------------------------------------ end of a sweep
def stop_workers() -> None:
    """After a sweep: ask joblib's idle worker processes to exit now, all at once, instead of one after the
    other at interpreter exit (~1 s saved; their jobs are done and recorded)."""
    import sys

    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(module, "_executor", None) if module is not None else None
    if executor is not None:
        executor.shutdown(wait=True)
