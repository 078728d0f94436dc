"""What every `hub` command shares: reading settings once, running async work, and failing with
one clear line and a non-zero exit instead of a traceback."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.auth.registry import AppError
from hub.catalog import ManifestError
from hub.catalog.connections import ConnectionSetupError
from hub.config import Settings, SettingsError, load_settings
from hub.crypto.errors import CryptoError
from hub.db.engine import hub_engine, sessions

T = TypeVar("T")


class HubDatabaseUnusable(Exception):
    """The hub database could not be reached or read (the message is safe to show)."""


# Errors an operator can act on: their messages name what to fix and never carry a key.
EXPECTED: tuple[type[Exception], ...] = (
    AppError,
    ManifestError,
    ConnectionSetupError,
    CryptoError,
    HubDatabaseUnusable,
)


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def settings_from_env(**overrides: Any) -> Settings:
    try:
        return load_settings(os.environ, **overrides)
    except SettingsError as exc:
        fail(str(exc))


def run(work: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(_call(work))
    except EXPECTED as exc:
        fail(str(exc))


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


@asynccontextmanager
async def hub_database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the hub database for one command; a database that cannot be reached or is
    not migrated is one HubDatabaseUnusable line, not a traceback."""
    engine = hub_engine(settings.database_url)
    try:
        yield sessions(engine)
    except (SQLAlchemyError, OSError) as error:
        # The error's type, never its text: that may quote SQL or the connection string.
        where = settings.database_url.render_as_string(hide_password=True)
        raise HubDatabaseUnusable(
            f"the hub database {where} cannot be used ({type(error).__name__}): check HUB_DATABASE_URL, "
            "and that it is reachable and migrated (`hub migrate`)"
        ) from None
    finally:
        await engine.dispose()


# The manifest folder, for commands that read the catalog (policy, apps).
MANIFESTS_OPTION = click.option(
    "--manifests", type=click.Path(path_type=Path), help="Manifest folder (default HUB_MANIFESTS)."
)
