"""The benchmark's PostgreSQL database: created when missing, loaded with the demo data
(encrypted, as the demo stores it) unless it already holds exactly the demo's rows, readable
with the bench's keys.

Every table's row count is checked, not just the one W1 reads: a load interrupted between
departments (each department loads in its own transaction) would otherwise pass unnoticed. And
one stored value of every encrypted table is decrypted: data loaded under other keys (whose
keys were deleted since) or before the demo was encrypted is loaded again.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from hub.crypto.cells import FieldCells, row_keys
from hub.crypto.keyring import Keyring
from hub.demo.catalog import demo_catalog
from hub.demo.generate import generate
from hub.demo.load import load_demo
from hub.demo.tables import METADATA
from hub.demo.workspace import DEPARTMENTS

HOST = "127.0.0.1"
PORT = 5432
USER = "postgres"
DATABASE = "bench"
SEED = 2026  # the seed load_demo uses by default; the expected counts come from the same one


def bench_url(database: str = DATABASE) -> URL:
    return URL.create("postgresql+asyncpg", username=USER, host=HOST, port=PORT, database=database)


def expected_counts(seed: int = SEED) -> dict[str, int]:
    """Rows per table the demo generator produces: the truth a loaded database is held to."""
    return {table: len(rows) for tables in generate(seed).values() for table, rows in tables.items()}


async def ensure_database(name: str = DATABASE) -> bool:
    """Create database `name` if it does not exist; True when it was created."""
    # CREATE DATABASE cannot run inside a transaction, hence AUTOCOMMIT on the maintenance db.
    engine = create_async_engine(bench_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            exists = await connection.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name})
            if exists:
                return False
            # The name is a constant of this module, never user input; quote it all the same.
            quoted = connection.dialect.identifier_preparer.quote(name)
            await connection.execute(sa.text(f"CREATE DATABASE {quoted}"))
            return True
    finally:
        await engine.dispose()


async def table_counts(url: URL, tables: list[str]) -> dict[str, int | None]:
    """Row count of each table, None for a table that does not exist."""
    engine = create_async_engine(url)
    counts: dict[str, int | None] = {}
    try:
        async with engine.connect() as connection:
            present = set(await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
            for table in tables:
                if table not in present:
                    counts[table] = None
                    continue
                statement = sa.select(sa.func.count()).select_from(sa.table(table))
                counts[table] = int(await connection.scalar(statement) or 0)
    finally:
        await engine.dispose()
    return counts


async def readable(url: URL, keyring: Keyring) -> bool:
    """Whether the first stored value of every encrypted field decrypts under `keyring`."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            for entity in demo_catalog():
                table = METADATA[entity.department].tables[entity.table.name]
                for item in entity.fields.values():
                    if not item.encrypted:
                        continue
                    statement = sa.select(table.c[entity.table.key], table.c[item.column]).where(
                        table.c[item.column].is_not(None)
                    )
                    try:
                        row = (await connection.execute(statement.limit(1))).first()
                    except sa.exc.DBAPIError:  # the table or column is missing: an older layout
                        return False
                    if row is None:
                        return False
                    cells = FieldCells(keyring, entity, item)
                    if not isinstance(cells.decrypt([row[1]], row_keys(entity, [row[0]]))[0], str):
                        return False
    finally:
        await engine.dispose()
    return True


async def ensure_demo_data(url: URL, expected: Mapping[str, int], keyring: Keyring) -> bool:
    """Load the demo data into `url`, encrypted under `keyring`, unless every table holds the
    expected rows and its encrypted values open with `keyring`; True when it was (re)loaded."""
    counts = await table_counts(url, sorted(expected))
    if all(counts[table] == rows for table, rows in expected.items()) and await readable(url, keyring):
        return False
    await load_demo(dict.fromkeys(DEPARTMENTS, url.render_as_string(hide_password=False)), keyring, seed=SEED)
    counts = await table_counts(url, sorted(expected))
    wrong = {t: (counts[t], n) for t, n in expected.items() if counts[t] != n}
    if wrong:
        raise RuntimeError(f"the demo load left unexpected row counts (found, expected): {wrong}")
    return True
