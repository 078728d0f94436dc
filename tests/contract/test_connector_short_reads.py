"""A PostgreSQL department's connections hand asyncpg at most READ_BYTES per socket read, so a
large page is decoded in many short turns of the event loop rather than in 256 KiB ones that
hold every other request up (issue 13's fairness), and the page still reads whole."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.base import ColumnSpec, Kind, OrderKey, Query, TableSpec
from connectors.sql import SqlConnector
from connectors.sql.dialects.postgresql import READ_BYTES
from tests.servers import reachable_url

ROWS = 4_000


@pytest.fixture
async def wide() -> AsyncIterator[tuple[SqlConnector, TableSpec]]:
    url = await reachable_url("postgresql")
    name = f"contract_{uuid.uuid4().hex[:12]}"
    table = sa.table(name, sa.column("id"), sa.column("name"))
    writer = create_async_engine(url)
    async with writer.begin() as conn:
        await conn.execute(sa.text(f"CREATE TABLE {name} (id integer PRIMARY KEY, name text NOT NULL)"))
        await conn.execute(sa.insert(table), [{"id": n, "name": f"resident {n:06d} " + "x" * 60} for n in range(ROWS)])
    spec = TableSpec(name, "id", {"id": ColumnSpec("id", Kind.INT), "name": ColumnSpec("name", Kind.STRING)})
    connector = SqlConnector(url)
    try:
        yield connector, spec
    finally:
        await connector.close()
        async with writer.begin() as conn:
            await conn.execute(sa.text(f"DROP TABLE {name}"))
        await writer.dispose()


async def test_a_page_far_larger_than_one_read_comes_whole_through_short_reads(
    wide: tuple[SqlConnector, TableSpec],
) -> None:
    connector, spec = wide
    page = await connector.fetch(Query(spec, ("id", "name"), limit=ROWS, order=(OrderKey("id"),)))
    # About 300 KB of rows: more than one read of asyncio's default size, ten of READ_BYTES.
    assert page.count == ROWS
    assert [row["id"] for row in page.rows] == list(range(ROWS))
    assert page.rows[-1]["name"] == f"resident {ROWS - 1:06d} " + "x" * 60
    engine = connector.engine
    assert engine is not None
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert raw.driver_connection._transport.max_size == READ_BYTES  # type: ignore[union-attr]
