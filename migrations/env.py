"""Alembic environment for the hub's own database (async engines, SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection

from hub.config import load_settings
from hub.db.engine import hub_engine
from hub.db.metadata import all_metadata

config = context.config
target_metadata = all_metadata()

# The advisory lock `hub migrate` holds on PostgreSQL for its whole transaction: concurrent runs
# (several instances' deployments starting at once) wait, then find the database at head and do
# nothing. Any fixed number; this one spells "hubmigr" in ASCII.
MIGRATE_LOCK = 0x6875626D696772


def _url() -> URL:
    given = config.attributes.get("url")
    if isinstance(given, URL):
        return given
    return load_settings(os.environ).database_url


def _configure(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Taken before alembic reads the current revision; released at the commit.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = hub_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url().render_as_string(hide_password=False), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
