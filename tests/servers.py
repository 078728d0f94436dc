"""The database servers the integration and contract tests use, and the rule for when one is
unreachable: skip with the reason locally, fail under CI=true, so a green CI run cannot hide a
skipped database test."""

from __future__ import annotations

import asyncio
import os

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

SERVERS = {
    "postgresql": ("HUB_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"),
    "mariadb": ("HUB_TEST_MARIADB_URL", "mysql+asyncmy://root@127.0.0.1:3306/test"),
}


def server_url(name: str) -> str:
    variable, default = SERVERS[name]
    return os.environ.get(variable, default)


def unavailable(name: str, reason: str) -> None:
    """Skip (locally) or fail (CI) a test whose server cannot be reached."""
    message = f"{name} at {make_url(server_url(name)).render_as_string(hide_password=True)} is unreachable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


# Servers are probed once per run: an unreachable one costs its timeout once, not per test.
_PROBED: dict[str, str | None] = {}


async def reachable_url(name: str) -> str:
    """The server's URL, or a skip (locally) or failure (CI) saying why it cannot be used."""
    url = server_url(name)
    if name not in _PROBED:
        engine = create_async_engine(url)
        try:
            async with asyncio.timeout(10), engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
            _PROBED[name] = None
        except Exception as exc:
            _PROBED[name] = type(exc).__name__
        finally:
            await engine.dispose()
    reason = _PROBED[name]
    if reason is not None:
        unavailable(name, reason)
    return url


def require_server(name: str) -> str:
    return asyncio.run(reachable_url(name))


def database_name(database: str) -> str:
    """`database` with HUB_TEST_DB_SUFFIX appended (two checkouts can then run their suites at
    once on one server), lower-cased: the statements below name it unquoted, so PostgreSQL folds
    it to lower case, and a URL naming it in mixed case would find no such database."""
    suffix = os.environ.get("HUB_TEST_DB_SUFFIX", "")
    if suffix and not suffix.replace("_", "").isalnum():
        raise ValueError("HUB_TEST_DB_SUFFIX takes letters, digits and underscores")
    return (database + suffix).lower()


def fresh_database(name: str, database: str) -> URL:
    """(Re)create `database` (named as `database_name` says) on the server and return its URL."""
    base = make_url(require_server(name))
    database = database_name(database)

    async def recreate() -> None:
        engine = create_async_engine(base, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text(f"DROP DATABASE IF EXISTS {database}"))
                suffix = " CHARACTER SET utf8mb4" if name == "mariadb" else ""
                await conn.execute(sa.text(f"CREATE DATABASE {database}{suffix}"))
        finally:
            await engine.dispose()

    asyncio.run(recreate())
    return base.set(database=database)
