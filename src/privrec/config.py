"""Turning plain config mappings into objects, without importing Hydra (the pipeline must not need it).

**Only privrec's components are built.** A config may come from somewhere else than the person running it:
``privrec reproduce`` builds the config stored with a run, and anyone who can write to a shared MLflow store
can write that config. So :func:`build` instantiates a ``_target_`` only if it names

- a class defined in one of privrec's component packages (:data:`COMPONENT_PACKAGES`: ``privrec.data``,
  ``privrec.privacy``, ``privrec.models``, ``privrec.attacks``, ``privrec.evaluation``, ``privrec.tuning``),
  e.g. ``privrec.privacy.ConsentDrop``; not the harness (``privrec.tracking``, ``privrec.cli``, ...), whose
  classes open stores and processes; or
- a class registered with :func:`register` by the program that builds the config (your own components).

Anything else - ``subprocess.run``, ``builtins.eval``, ``os.system``, a function, a module outside privrec -
is refused with a one-line :class:`~privrec.errors.ConfigError` *before anything is imported or built*: the
string is checked first (importing a module chosen by someone else runs its code), then every ``_target_`` of
the whole tree is resolved, and only then is the first object built.

Your own component, from Python::

    from privrec.config import register

    @register
    @dataclass(frozen=True, kw_only=True)
    class MyTransform:
        rate: float

    privrec.experiment.run({... "privacy": {"_target_": "mypkg.transforms.MyTransform", "rate": 0.1} ...})

``register`` allows exactly that class (by its ``module.QualifiedName``), in the process that called it; a
stored config that names an unregistered class of yours is refused like any other.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import re
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from privrec.errors import ConfigError

__all__ = ["COMPONENT_PACKAGES", "build", "check_targets", "flatten", "register", "registered", "resolve_target"]

#: The packages whose classes :func:`build` may instantiate without registration.
COMPONENT_PACKAGES = ("privrec.attacks", "privrec.data", "privrec.evaluation", "privrec.models", "privrec.privacy",
                      "privrec.tuning")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_REGISTERED: dict[str, type] = {}


def register(cls: type) -> type:
    """Allow ``cls`` as a ``_target_`` in configs built by this process (usable as a class decorator).

    The config names it by ``f"{cls.__module__}.{cls.__qualname__}"``. Only classes can be registered: a
    component is a class whose constructor takes its hyperparameters as keywords."""
    if not inspect.isclass(cls):
        raise ConfigError(f"register needs a class (a component); got {type(cls).__name__} {cls!r}.")
    _REGISTERED[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


def registered() -> list[str]:
    """The ``_target_`` names allowed through :func:`register` in this process, sorted."""
    return sorted(_REGISTERED)


def _in_packages(dotted: str) -> bool:
    return any(dotted == p or dotted.startswith(f"{p}.") for p in COMPONENT_PACKAGES)


def resolve_target(target: object, *, name: str = "config") -> type:
    """The class a ``_target_`` names, if it is one of privrec's components or registered; otherwise a
    one-line ConfigError. Nothing outside privrec is imported: the string is checked before any import."""
    if isinstance(target, str) and target in _REGISTERED:
        return _REGISTERED[target]
    rule = (f"{name}._target_ must name one of privrec's components (a class in "
            f"{', '.join(COMPONENT_PACKAGES)}) or a class registered with privrec.config.register")
    if not isinstance(target, str) or not _DOTTED.fullmatch(target) or not _in_packages(target.rpartition(".")[0]):
        raise ConfigError(f"{rule}; got {target!r}.")
    module_name, _, attr = target.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        raise ConfigError(f"{rule}; got {target!r}, which does not exist.") from None
    if not inspect.isclass(obj):
        raise ConfigError(f"{rule}; got {target!r}, which is a {type(obj).__name__}, not a class.")
    if not _in_packages(obj.__module__) or typing.Protocol in obj.__bases__ or inspect.isabstract(obj):
        raise ConfigError(f"{rule}; got {target!r}, which is not a component (defined in {obj.__module__}, "
                          f"or an interface).")
    return obj


def _targets(node: Any, name: str) -> Iterator[tuple[Any, str]]:
    if isinstance(node, Mapping):
        if "_target_" in node:
            yield node["_target_"], name
        for k, v in node.items():
            if k != "_target_":
                yield from _targets(v, f"{name}.{k}")
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _targets(v, f"{name}.{i}")


def check_targets(node: Any, *, name: str = "config") -> None:
    """Resolve every ``_target_`` in ``node`` (see :func:`resolve_target`); a ConfigError for the first that
    is not a component. Nothing is built."""
    for target, where in _targets(node, name):
        resolve_target(target, name=where)


def build(node: Any, *, name: str = "config", **extra: Any) -> Any:
    """Instantiate every mapping with a ``_target_`` (recursively, depth first); other values pass through.

    Every ``_target_`` of ``node`` is checked (:func:`check_targets`) before anything is built. ``extra``
    keywords go to the top-level target only. Unknown or missing parameters give a one-line ConfigError that
    names the group and lists the valid parameters.
    """
    check_targets(node, name=name)
    return _build(node, name, extra)


def _build(node: Any, name: str, extra: Mapping[str, Any]) -> Any:
    if isinstance(node, Mapping):
        built = {k: _build(v, f"{name}.{k}", {}) for k, v in node.items() if k != "_target_"}
        if "_target_" not in node:
            return built
        return _call(resolve_target(node["_target_"], name=name), {**built, **extra}, name)
    if isinstance(node, (list, tuple)):
        return [_build(v, f"{name}.{i}", {}) for i, v in enumerate(node)]
    return node


def _call(obj: type, kwargs: dict[str, Any], name: str) -> Any:
    params = _parameters(obj)
    if params is not None:  # None: **kwargs or no readable signature; the call decides
        names, required = params
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ConfigError(f"{name} has no parameter {unknown[0]!r}; parameters are {sorted(names)}.")
        missing = sorted(required - set(kwargs))
        if missing:
            raise ConfigError(f"{name}.{missing[0]} must be set; got nothing. Parameters are {sorted(names)}.")
    return obj(**kwargs)


def _parameters(obj: Any) -> tuple[set[str], set[str]] | None:
    """(accepted keyword names, required ones), or None when any keyword may be accepted."""
    if dataclasses.is_dataclass(obj):
        fields = [f for f in dataclasses.fields(obj) if f.init]
        return ({f.name for f in fields},
                {f.name for f in fields
                 if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING})
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    named = [p for p in sig.parameters.values() if p.kind is not p.VAR_POSITIONAL]
    return {p.name for p in named}, {p.name for p in named if p.default is p.empty}


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}`` (Hydra override syntax); lists become JSON."""
    out: dict[str, str] = {}
    for key, value in cfg.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, prefix=f"{path}."))
        elif isinstance(value, (list, tuple)):
            out[path] = json.dumps(list(value), default=str)
        else:
            out[path] = "null" if value is None else str(value)
    return out


def accepts(node: Mapping[str, Any], parameter: str) -> bool:
    """Whether the ``_target_`` of ``node`` takes ``parameter`` (False when it is not a component)."""
    try:
        obj = resolve_target(node.get("_target_", ""))
    except ConfigError:
        return False
    params = _parameters(obj)
    return params is None or parameter in params[0]
