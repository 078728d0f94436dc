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
from hub.config_file import DEFAULT_NAME, read_config_file
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
    """The settings of this command: the environment over the settings file (`hub --config
    FILE`, else `hub.toml` in the working folder when there is one), the command's options
    over both."""
    try:
        return load_settings(os.environ, file_values=_file_values(), **overrides)
    except SettingsError as exc:
        fail(str(exc))


def _file_values() -> dict[str, str]:
    context = click.get_current_context(silent=True)
    given = context.find_root().params.get("config") if context is not None else None
    if isinstance(given, Path):
        return read_config_file(given)
    default = Path(DEFAULT_NAME)
    return read_config_file(default) if default.is_file() else {}


def require_migrated(settings: Settings) -> None:
    """Stop with one line unless the hub database exists and is at the newest revision: a
    command never creates it (only `hub migrate` does) nor runs on a half-made one."""
    from hub.migrate import unmigrated

    async def check() -> str | None:
        try:
            return await unmigrated(settings.database_url)
        except (SQLAlchemyError, OSError) as error:
            raise _unusable(settings, error) from None

    problem = run(check)
    if problem is not None:
        fail(problem)


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
    from hub.migrate import unmigrated

    try:
        problem = await unmigrated(settings.database_url)
    except (SQLAlchemyError, OSError) as error:
        raise _unusable(settings, error) from None
    if problem is not None:
        raise HubDatabaseUnusable(problem)
    engine = hub_engine(settings.database_url)
    try:
        yield sessions(engine)
    except (SQLAlchemyError, OSError) as error:
        raise _unusable(settings, error) from None
    finally:
        await engine.dispose()


def _unusable(settings: Settings, error: BaseException) -> HubDatabaseUnusable:
    # The error's type, never its text: that may quote SQL or the connection string.
    where = settings.database_url.render_as_string(hide_password=True)
    return HubDatabaseUnusable(
        f"the hub database {where} cannot be used ({type(error).__name__}): check HUB_DATABASE_URL, "
        "and that it is reachable and migrated (`hub migrate`)"
    )


# The manifest folder, for commands that read the catalog (policy, apps).
MANIFESTS_OPTION = click.option(
    "--manifests", type=click.Path(path_type=Path), help="Manifest folder (default HUB_MANIFESTS)."
)
