"""The one parser of tracking URIs (no MLflow import).

MLflow hands database URIs to SQLAlchemy, which percent-decodes the database part: ``sqlite:///my%20runs.db``
is the file ``my runs.db``. :func:`parse_tracking_uri` decodes the same way, so privrec and MLflow always
mean the same file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from privrec.errors import ConfigError

__all__ = ["DEFAULT_TRACKING_URI", "StoreURI", "parse_tracking_uri", "resolve_tracking_uri"]

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
#: Schemes MLflow's tracking client accepts (database engines, with an optional ``+driver``, and servers).
_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "file")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9.-]*)(\+[A-Za-z0-9_]+)?:")


@dataclass(frozen=True)
class StoreURI:
    """A tracking URI: ``scheme`` (``sqlite``, ``postgresql``, ``http``...) and, for a local SQLite file given
    without query options, its decoded ``sqlite_path``."""

    uri: str
    scheme: str
    sqlite_path: Path | None = None

    @property
    def is_server(self) -> bool:
        return self.scheme in ("http", "https", "databricks")


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the working directory."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def parse_tracking_uri(uri: str | None = None) -> StoreURI:
    """Parse (after :func:`resolve_tracking_uri`); a one-line ConfigError for a URI MLflow cannot use."""
    uri = resolve_tracking_uri(uri)
    match = _SCHEME.match(uri)
    if match is None or match.group(1).lower() not in _SCHEMES:
        raise ConfigError(f"tracking.tracking_uri must start with one of {', '.join(s + ':' for s in _SCHEMES)}; "
                          f"got {uri!r}. Example: sqlite:///mlflow.db or http://127.0.0.1:5000.")
    scheme = match.group(1).lower()
    path = None
    if scheme == "sqlite":
        if not uri.startswith("sqlite:///"):
            raise ConfigError(f"tracking.tracking_uri for SQLite must be sqlite:///relative.db or "
                              f"sqlite:////absolute.db; got {uri!r}.")
        rest = uri.removeprefix("sqlite:///")
        if rest and rest != ":memory:" and "?" not in rest:
            path = Path(unquote(rest))
    return StoreURI(uri=uri, scheme=scheme, sqlite_path=path)
