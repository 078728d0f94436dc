"""Connections and statements are reused: a connector holds a pool sized by its manifest, and
on PostgreSQL each statement shape is prepared once per connection and executed again with
new values, however many requests send it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import sqlalchemy as sa

from connectors.base import Compare, Op, Query
from tests.contract.conftest import Backend, _open

if TYPE_CHECKING:
    from pathlib import Path


async def test_postgresql_prepares_each_statement_shape_once_per_connection(tmp_path: Path) -> None:
    backend: Backend = await _open("postgresql", tmp_path)
    try:
        people = await backend.load_people(pool_size=1)
        assert people.engine is not None
        for key in (1, 5, 9, 12):
            query = Query(people.table, ("id", "name"), Compare("id", Op.EQ, key))
            assert [row["id"] for row in (await people.connector.fetch(query)).rows] == [key]
        # The pool holds one connection, so this runs on the one the reads used.
        async with people.engine.connect() as conn:
            prepared = (await conn.execute(sa.text("SELECT statement FROM pg_prepared_statements"))).scalars().all()
        mine = [text for text in prepared if people.table.name in text]
        assert len(mine) == 1, mine
    finally:
        await backend.close()


async def test_a_connector_never_opens_more_connections_than_its_pool_size(sql_backend: Backend) -> None:
    people = await sql_backend.load_people(pool_size=2)
    assert people.engine is not None
    opened: list[object] = []
    sa.event.listen(people.engine.sync_engine, "connect", lambda conn, record: opened.append(conn))
    query = Query(people.table, ("id",), Compare("id", Op.GT, 0))
    # Twelve requests at once share two connections; the rest wait for a free one.
    pages = await asyncio.gather(*(people.connector.fetch(query) for _ in range(12)))
    assert [len(page.rows) for page in pages] == [14] * 12
    assert 1 <= len(opened) <= 2
