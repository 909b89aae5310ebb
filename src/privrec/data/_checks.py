"""Field validation shared by the data-layer dataclasses (loaders, preprocessing, splitters).

Every check raises :class:`~privrec.errors.ConfigError` with the house message shape
``<group>.<field> must be <rule>; got <value>.`` Configuration values are not records, so they may be quoted.
Values arrive from Hydra as plain YAML types (``ListConfig``/``DictConfig`` included): sequences become tuples.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from typing import Any, cast

from privrec.errors import ConfigError

__all__: list[str] = []


def check_int(group: str, name: str, value: object, *, minimum: int | None = None) -> int:
    """``value`` as an int (bools refused), at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        rule = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise ConfigError(f"{group}.{name} must be {rule}; got {value!r}.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{group}.{name} must be >= {minimum}; got {value}.")
    return value


def check_float(
    group: str,
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a finite float inside the stated interval (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ConfigError(f"{group}.{name} must be a finite number; got {value!r}.")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        interval = (
            f"{'(' if low_open or low is None else '['}{left}, {right}{')' if high_open or high is None else ']'}"
        )
        raise ConfigError(f"{group}.{name} must be in {interval}; got {value:g}.")
    return value


def check_choice(group: str, name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{group}.{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")
    return value


def check_bool(group: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{group}.{name} must be true or false; got {value!r}.")
    return value


def check_str(group: str, name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{group}.{name} must be a non-empty string; got {value!r}.")
    return value


def check_path(group: str, name: str, value: object, *, optional: bool = False) -> str | None:
    """A path as a plain string (YAML-friendly and picklable); ``None`` allowed when ``optional``."""
    if value is None and optional:
        return None
    if isinstance(value, (str, os.PathLike)) and os.fspath(value):
        return os.fspath(value)
    rule = "a path or null" if optional else "a path"
    raise ConfigError(f"{group}.{name} must be {rule}; got {value!r}.")


def check_column(group: str, name: str, value: object, *, header: bool, optional: bool = False) -> int | str | None:
    """A column given by position (int >= 0) or by name (str, only when the file has a header)."""
    if value is None and optional:
        return None
    if isinstance(value, str) and value:
        if not header:
            raise ConfigError(
                f"{group}.{name} names a column, which needs a header row; got {value!r} with the header off. "
                "Give a position (0, 1, ...) or turn the header on."
            )
        return value
    if not isinstance(value, bool) and isinstance(value, Integral) and int(value) >= 0:
        return int(value)
    rule = "a column position (int >= 0) or name (str)" + (" or null" if optional else "")
    raise ConfigError(f"{group}.{name} must be {rule}; got {value!r}.")


def check_names(group: str, name: str, value: object) -> tuple[str, ...]:
    """A sequence of column names as a tuple (a single string counts as one name)."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise ConfigError(f"{group}.{name} must be a list of column names; got {value!r}.")
    names = tuple(value)
    if not all(isinstance(v, str) and v for v in names):
        raise ConfigError(f"{group}.{name} must be a list of non-empty column names; got {list(names)!r}.")
    if len(set(names)) != len(names):
        raise ConfigError(f"{group}.{name} must not repeat a name; got {list(names)!r}.")
    return names


def check_hierarchies(group: str, name: str, value: object) -> tuple[tuple[str, str], ...]:
    """``{attribute: kind}`` (or pairs) as a tuple of ``(attribute, kind)`` pairs, the :class:`Schema` form."""
    try:
        # Anything else that is not an iterable of pairs raises TypeError/ValueError here.
        pairs = value.items() if isinstance(value, Mapping) else cast("Iterable[Any]", value)
        out = tuple((k, v) for k, v in pairs)
    except (TypeError, ValueError):
        raise ConfigError(f"{group}.{name} must map attribute names to hierarchy kinds; got {value!r}.") from None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in out):
        raise ConfigError(f"{group}.{name} must map attribute names to hierarchy kinds (strings); got {value!r}.")
    return out
