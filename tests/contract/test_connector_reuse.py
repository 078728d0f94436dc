"""Connections and statements are reused: a connector holds a pool sized by its manifest, builds
one statement per query shape (an IN list of any length is one shape), and on PostgreSQL each
shape is prepared once per connection and executed again with new values, however many requests
send it. A read ends without a ROLLBACK: its connection is in autocommit, with nothing to undo."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from connectors.base import Compare, In, Op, Query, UnavailableError
from connectors.sql import SqlConnector
from tests.contract.conftest import Backend, Loaded, _open

if TYPE_CHECKING:
    from pathlib import Path


async def test_postgresql_prepares_each_statement_shape_once_per_connection(tmp_path: Path) -> None:
    backend: Backend = await _open("postgresql", tmp_path)
    try:
        people = await backend.load_people(pool_size=1)
        assert people.engine is not None
        for key in (1, 5, 9, 12, 2, 3, 4, 6):
            query = Query(people.table, ("id", "name"), Compare("id", Op.EQ, key))
            assert [row["id"] for row in (await people.connector.fetch(query)).rows] == [key]
        # The pool holds one connection, so this runs on the one the reads used.
        async with people.engine.connect() as conn:
            prepared = (await conn.execute(sa.text("SELECT statement FROM pg_prepared_statements"))).scalars().all()
        mine = [text for text in prepared if people.table.name in text]
        # One text, prepared twice at most: by SQLAlchemy for the shape's first read, which
        # shows the driver's rows need no processing, and by asyncpg for the direct reads
        # after it (connectors/sql/direct.py); never once per read.
        assert len(set(mine)) == 1, mine
        assert len(mine) <= 2, mine
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


# IN lists of several lengths, and the people each matches.
IN_LISTS = [
    (In("age", (18,)), {7, 10}),
    (In("age", (18, 25, 60)), {2, 6, 7, 9, 10, 14}),
    (In("age", (30, 41)), {1, 3, 5, 11, 12}),
    (In("name", ("apple", "张三")), {1, 5}),
    (In("name", ("Zebra",)), {10}),
    (In("name", ("a%b", "a_b", "a/b", "nobody")), {7, 8, 12}),
]


async def _read_in_lists(people: Loaded) -> None:
    for where, expected in IN_LISTS:
        assert set(await people.ids(where)) == expected, where


async def test_in_lists_of_any_length_share_one_statement(sql_backend: Backend) -> None:
    people = await sql_backend.load_people()
    assert isinstance(people.connector, SqlConnector)
    await _read_in_lists(people)
    await _read_in_lists(people)
    assert len(people.connector.statements) == 2  # one per column


async def test_postgresql_prepares_one_statement_for_in_lists_of_any_length(tmp_path: Path) -> None:
    backend: Backend = await _open("postgresql", tmp_path)
    try:
        people = await backend.load_people(pool_size=1)
        assert people.engine is not None
        await _read_in_lists(people)
        async with people.engine.connect() as conn:
            prepared = (await conn.execute(sa.text("SELECT statement FROM pg_prepared_statements"))).scalars().all()
        mine = [text for text in prepared if people.table.name in text]
        assert len(mine) == 2, mine  # one per column: each list is one array parameter
    finally:
        await backend.close()


async def test_reads_on_mariadb_send_no_rollback(tmp_path: Path) -> None:
    backend: Backend = await _open("mariadb", tmp_path)
    try:
        people = await backend.load_people(pool_size=1)
        assert people.engine is not None
        engine = people.engine

        async def rollbacks() -> int:
            # The pool holds one connection, so this is the session the reads use.
            async with engine.connect() as conn:
                row = (await conn.execute(sa.text("SHOW SESSION STATUS LIKE 'Com_rollback'"))).one()
            return int(row[1])

        before = await rollbacks()
        for key in (1, 5, 9):
            assert await people.ids(Compare("id", Op.EQ, key)) == [key]
        assert await people.connector.count(people.table, None) == 14
        assert await rollbacks() == before
    finally:
        await backend.close()


# Fast for id 1, three seconds for id 2: the same statement shape, read first quickly (through
# SQLAlchemy) and then directly on the driver, where the server's time limit must still hold.
SLOW_FOR_TWO = (
    "SELECT g AS id, CAST(pg_sleep(CASE WHEN g = 2 THEN 3 ELSE 0 END) AS text) AS name FROM generate_series(1, 2) g"
)


async def test_postgresql_reads_a_seen_shape_on_the_driver_and_still_counts_it(tmp_path: Path) -> None:
    backend: Backend = await _open("postgresql", tmp_path)
    try:
        people = await backend.load_people(pool_size=1)
        assert people.engine is not None
        seen: list[str] = []
        sa.event.listen(people.engine.sync_engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
        executed: list[object] = []
        # SQLAlchemy's execution context is made for reads through SQLAlchemy only.
        sa.event.listen(people.engine.sync_engine, "after_cursor_execute", lambda *args: executed.append(args[4]))
        for key in (1, 5, 9):
            query = Query(people.table, ("id", "name"), Compare("id", Op.EQ, key))
            assert [row["id"] for row in (await people.connector.fetch(query)).rows] == [key]
        assert len(seen) == 3
        assert len(executed) == 1
    finally:
        await backend.close()


async def test_postgresql_direct_read_past_the_time_limit_is_unavailable_and_the_next_answers(
    tmp_path: Path,
) -> None:
    backend: Backend = await _open("postgresql", tmp_path)
    try:
        slow = await backend.create_view(SLOW_FOR_TWO, statement_timeout_ms=300, pool_size=1)
        assert slow.engine is not None
        fast, stalled = (Query(slow.table, ("id", "name"), Compare("id", Op.EQ, key)) for key in (1, 2))
        assert [row["id"] for row in (await slow.connector.fetch(fast)).rows] == [1]
        sent: list[str] = []
        sa.event.listen(slow.engine.sync_engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
        with pytest.raises(UnavailableError, match="did not answer"):
            await slow.connector.fetch(stalled)
        # Cut off once: not read again through SQLAlchemy for a second wait.
        assert len(sent) == 1
        assert [row["id"] for row in (await slow.connector.fetch(fast)).rows] == [1]
    finally:
        await backend.close()
