"""One exception tree and the toolkit's warnings.

Messages follow one shape: *what* must be *what rule*; got *what*. *What to do*.
They never contain a record value or an individual user's id: counts and aggregates only.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataValidationError",
    "DataWarning",
    "NotFittedError",
    "PrivRecError",
    "PrivacyGuaranteeError",
    "PrivacyLeakWarning",
]


class PrivRecError(Exception):
    """Base class of every error privrec raises on purpose (a user error, not a bug)."""


class ConfigError(PrivRecError, ValueError):
    """A configuration value breaks a rule (unknown name, out-of-range parameter, ...)."""


class DataValidationError(PrivRecError, ValueError):
    """Input data is missing, malformed, or leaves nothing to work with."""


class NotFittedError(PrivRecError, RuntimeError):
    """A model was used before ``fit``."""


class PrivacyGuaranteeError(PrivRecError):
    """A requested privacy guarantee cannot be met on this data."""


class PrivacyLeakWarning(UserWarning):
    """Something may reveal more about individuals than the configuration suggests."""


class DataWarning(UserWarning):
    """Data is usable but unusual (tiny segments, users without test data, ...)."""
