"""Opening one connector per department from the catalog's connection declarations.

Connection URLs with passwords come from the settings' environment snapshot by the name the
manifest gives; SQLite paths may sit in the manifest and resolve against its folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from connectors.base import Connector
from connectors.sql import SqlConnector
from hub.catalog import Catalog
from hub.catalog.manifest import ConnectionDecl
from hub.config import Settings
from hub.db.url import url_problem


class ConnectionSetupError(Exception):
    """A department's connection cannot be set up; the message names the department."""


def connection_url(decl: ConnectionDecl, manifests_dir: Path, settings: Settings, department: str) -> URL:
    if decl.sqlite_path is not None:
        path = Path(decl.sqlite_path)
        if not path.is_absolute():
            path = (manifests_dir / path).resolve()
        if not path.exists():
            raise ConnectionSetupError(f"department {department}: SQLite database {path.name} does not exist")
        return URL.create("sqlite+aiosqlite", database=str(path))
    assert decl.url_env is not None  # the manifest model requires one of the two
    value = settings.secret(decl.url_env)
    if not value:
        raise ConnectionSetupError(f"department {department}: environment variable {decl.url_env} is not set")
    try:
        url = make_url(value)
    except Exception:
        raise ConnectionSetupError(f"department {department}: {decl.url_env} does not hold a database URL") from None
    problem = url_problem(url)
    if problem is not None:
        raise ConnectionSetupError(f"department {department}: {decl.url_env}: {problem}")
    return url


def open_connectors(catalog: Catalog, settings: Settings) -> Mapping[str, Connector]:
    connectors: dict[str, Connector] = {}
    for name, department in catalog.departments.items():
        decl = department.connection
        url = connection_url(decl, settings.manifests_dir, settings, name)
        connectors[name] = SqlConnector(
            url,
            timezone=decl.timezone,
            statement_timeout_ms=decl.statement_timeout_ms,
            pool_size=decl.pool_size,
        )
    return connectors
