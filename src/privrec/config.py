"""Turning plain config mappings into objects, without importing Hydra (the pipeline must not need it)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
from collections.abc import Mapping
from typing import Any

from privrec.errors import ConfigError

__all__ = ["build", "flatten"]


def build(node: Any, *, name: str = "config", **extra: Any) -> Any:
    """Instantiate every mapping with a ``_target_`` (recursively, depth first); other values pass through.

    ``extra`` keywords go to the top-level target only. Unknown parameters give a one-line ConfigError that
    names the group and lists the valid parameters.
    """
    if isinstance(node, Mapping):
        built = {k: build(v, name=f"{name}.{k}") for k, v in node.items() if k != "_target_"}
        if "_target_" not in node:
            return built
        return _call(node["_target_"], {**built, **extra}, name)
    if isinstance(node, (list, tuple)):
        return [build(v, name=f"{name}.{i}") for i, v in enumerate(node)]
    return node


def _call(target: str, kwargs: dict[str, Any], name: str) -> Any:
    module_name, _, attr = str(target).rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"{name}._target_ must name an importable class; got {target!r}.") from None
    params = _parameters(obj)
    if params is not None:  # None: **kwargs or no readable signature; the call decides
        unknown = sorted(set(kwargs) - params)
        if unknown:
            raise ConfigError(f"{name} has no parameter {unknown[0]!r}; parameters are {sorted(params)}.")
    return obj(**kwargs)


def _parameters(obj: Any) -> set[str] | None:
    if dataclasses.is_dataclass(obj):
        return {f.name for f in dataclasses.fields(obj) if f.init}
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return set(sig.parameters)


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
    """Whether the ``_target_`` of ``node`` takes ``parameter`` (False when it cannot be imported)."""
    module_name, _, attr = str(node.get("_target_", "")).rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        return False
    params = _parameters(obj)
    return params is None or parameter in params
