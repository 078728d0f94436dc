"""Running the hub database's alembic migrations from the installed package.

The migration scripts ship inside the wheel (`migrations` package data), so `hub migrate` works
from a plain `pip install` as well as from a checkout."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL

from hub.db.engine import hub_engine

# `migrations` sits beside `hub` both in a checkout and in site-packages (it has no __init__.py,
# so importlib.resources cannot name it reliably under an editable install).
SCRIPTS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: URL) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["url"] = url
    return config


def upgrade(url: URL) -> None:
    """Bring the hub database at `url` to the newest revision (creating it if needed)."""
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


def check(url: URL) -> None:
    """Fail if the models and the migrations disagree (`alembic check`)."""
    command.check(alembic_config(url))


def head() -> str:
    """The newest revision the installed migrations reach."""
    revision = ScriptDirectory(str(SCRIPTS)).get_current_head()
    assert revision is not None, "the migrations have a head"
    return revision


def sqlite_file_missing(url: URL) -> bool:
    """A SQLite hub database named by a file that is not there (connecting would create it)."""
    database = url.database or ""
    return url.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not Path(database).exists()


async def current(url: URL) -> str | None:
    """The revision the hub database at `url` is at; None for a database never migrated (or a
    SQLite file that does not exist, which this does not create)."""
    if sqlite_file_missing(url):
        return None
    engine = hub_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()


async def unmigrated(url: URL) -> str | None:
    """Why the hub database at `url` cannot serve yet, ending in what to run; None when it is at
    the newest revision. Only `hub migrate` creates or upgrades it."""
    where = url.database if url.get_backend_name() == "sqlite" else url.render_as_string(hide_password=True)
    if sqlite_file_missing(url):
        return f"the hub database {where} does not exist: run `hub migrate` to create it"
    revision = await current(url)
    if revision is None:
        return f"the hub database {where} is not migrated: run `hub migrate`"
    if revision != head():
        return f"the hub database {where} is at revision {revision}, this hub needs {head()}: run `hub migrate`"
    return None
