"""Direct reads (connectors/sql/direct.py): after a statement's first read through SQLAlchemy,
SQLite and PostgreSQL read it on the driver itself, SQLite in one trip to aiosqlite's thread. A
page read directly holds the rows the same page holds through SQLAlchemy, whatever its limit and
offset; a direct read that fails gives its connection back to the pool; SQLite's statement
deadline holds on the direct path as it does through SQLAlchemy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiosqlite
import pytest
import sqlalchemy as sa

from connectors.base import Compare, Op, OrderKey, Query, UnavailableError
from connectors.sql import SqlConnector
from tests.contract.conftest import PEOPLE_ROWS, Backend, _open

if TYPE_CHECKING:
    from pathlib import Path

DIRECT = ("sqlite", "postgresql")
# The people by age, oldest first, then by key: the order every page below reads.
BY_AGE = (OrderKey("age", descending=True),)


def _expected(limit: int | None, offset: int) -> list[int]:
    # Descending puts NULLs first (the contract's order), then the key breaks ties.
    ages = {row["id"]: row["age"] for row in PEOPLE_ROWS}
    ordered = sorted(ages, key=lambda key: (ages[key] is not None, -(ages[key] or 0), key))
    return ordered[offset:] if limit is None else ordered[offset : offset + limit]


class _Executions:
    """How many statements went through SQLAlchemy's execution (a direct read makes none)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        sa.event.listen(engine, "after_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        self.count += 1


# Pages of one shape each (a limit or none, an offset or none), each read first through
# SQLAlchemy and then, with other values, directly.
PAGES: list[tuple[str, list[tuple[int | None, int]]]] = [
    ("limit, no offset", [(3, 0), (5, 0), (1, 0)]),
    ("limit and offset", [(3, 2), (4, 7), (10, 13)]),
    ("offset, no limit", [(None, 3), (None, 11), (None, 1)]),
]


@pytest.mark.parametrize(("shape", "pages"), PAGES, ids=[name for name, _ in PAGES])
async def test_a_page_read_directly_holds_the_rows_it_holds_through_sqlalchemy(
    sql_backend: Backend, shape: str, pages: list[tuple[int | None, int]]
) -> None:
    people = await sql_backend.load_people(pool_size=1)
    assert people.engine is not None
    executions = _Executions(people.engine.sync_engine)
    for limit, offset in pages:
        assert await people.ids(order=BY_AGE, limit=limit, offset=offset) == _expected(limit, offset), (limit, offset)
    # The shape's first read went through SQLAlchemy; where the driver reads directly, the
    # others did not (MariaDB's driver does not).
    assert executions.count == (1 if sql_backend.name in DIRECT else len(pages))


async def test_sqlite_reads_a_seen_shape_in_one_trip_to_the_driver_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = await _open("sqlite", tmp_path)
    try:
        people = await backend.load_people(pool_size=1)
        trips: list[Callable[..., Any]] = []
        handoff = aiosqlite.Connection._execute

        async def counted(self: aiosqlite.Connection, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            trips.append(fn)
            return await handoff(self, fn, *args, **kwargs)

        assert await people.ids(Compare("id", Op.EQ, 1), limit=1) == [1]  # opens, and reads once through SQLAlchemy
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        for key in (5, 9, 12):
            assert await people.ids(Compare("id", Op.EQ, key), limit=1) == [key]
        assert len(trips) == 3, trips
    finally:
        await backend.close()


# One row that reads at once and one that counts to a hundred million first (seconds of work):
# the same statement shape, read first quickly (through SQLAlchemy), then directly.
SQLITE_SLOW_FOR_TWO = (
    "SELECT g.id AS id, CASE WHEN g.id = 2 THEN (WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL "
    "SELECT x + 1 FROM n WHERE x < 100000000) SELECT CAST(count(*) AS TEXT) FROM n) ELSE 'quick' END AS name "
    "FROM (SELECT 1 AS id UNION ALL SELECT 2) AS g"
)


async def test_sqlite_direct_read_past_its_deadline_is_unavailable_and_gives_its_connection_back(
    tmp_path: Path,
) -> None:
    backend = await _open("sqlite", tmp_path)
    try:
        slow = await backend.create_view(SQLITE_SLOW_FOR_TWO, statement_timeout_ms=300, pool_size=1)
        assert slow.engine is not None and isinstance(slow.connector, SqlConnector)
        quick, stalled = (Query(slow.table, ("id", "name"), Compare("id", Op.EQ, key), limit=5) for key in (1, 2))
        assert [row["id"] for row in (await slow.connector.fetch(quick)).rows] == [1]
        executions = _Executions(slow.engine.sync_engine)
        with pytest.raises(UnavailableError, match="did not answer within 300 ms"):
            await slow.connector.fetch(stalled)
        # Cut off on the driver, once: not read again through SQLAlchemy for a second wait.
        assert executions.count == 0
        # The pool's one connection came back: the next read answers, directly.
        assert [row["id"] for row in (await slow.connector.fetch(quick)).rows] == [1]
        assert executions.count == 0
        pool = slow.engine.sync_engine.pool
        assert isinstance(pool, sa.pool.QueuePool)
        assert pool.checkedout() == 0
    finally:
        await backend.close()


async def test_reads_of_a_limited_shape_leave_no_connection_checked_out(sql_backend: Backend) -> None:
    people = await sql_backend.load_people(pool_size=1)
    assert people.engine is not None
    for key in (1, 5, 9, 12, 2):
        assert await people.ids(Compare("id", Op.EQ, key), limit=3) == [key]
    pool = people.engine.sync_engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    assert pool.checkedout() == 0


async def test_sqlite_direct_read_cancelled_mid_statement_gives_its_connection_back(tmp_path: Path) -> None:
    backend = await _open("sqlite", tmp_path)
    try:
        slow = await backend.create_view(SQLITE_SLOW_FOR_TWO, statement_timeout_ms=600, pool_size=1)
        assert slow.engine is not None and isinstance(slow.connector, SqlConnector)
        quick, stalled = (Query(slow.table, ("id", "name"), Compare("id", Op.EQ, key), limit=5) for key in (1, 2))
        assert [row["id"] for row in (await slow.connector.fetch(quick)).rows] == [1]
        executions = _Executions(slow.engine.sync_engine)
        read = asyncio.create_task(slow.connector.fetch(stalled))
        await asyncio.sleep(0.2)
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        assert executions.count == 0  # it was read directly
        pool = slow.engine.sync_engine.pool
        assert isinstance(pool, sa.pool.QueuePool)
        assert pool.checkedout() == 0
        # The next read answers, well before the cancelled statement could have run to its end.
        started = time.monotonic()
        assert [row["id"] for row in (await slow.connector.fetch(quick)).rows] == [1]
        assert time.monotonic() - started < 2.0
    finally:
        await backend.close()


async def test_concurrent_direct_reads_each_get_their_own_rows_and_cancelled_ones_leak_no_connection(
    sql_backend: Backend,
) -> None:
    people = await sql_backend.load_people(pool_size=2)
    assert people.engine is not None
    # Each shape read once through SQLAlchemy first, so that every read below goes direct.
    for limit, offset in ((3, 0), (4, 2), (None, 5)):
        await people.ids(order=BY_AGE, limit=limit, offset=offset)
    pages = [(limit, offset) for offset in range(0, 9) for limit in (3, 4, None)]
    for _ in range(3):
        reads = [asyncio.create_task(people.ids(order=BY_AGE, limit=lim, offset=off)) for lim, off in pages]
        # Every third read is given up on while others wait for a connection or run.
        await asyncio.sleep(0)
        for read in reads[::3]:
            read.cancel()
        answers = await asyncio.gather(*reads, return_exceptions=True)
        for (limit, offset), read, got in zip(pages, reads, answers, strict=True):
            if read.cancelled():
                continue
            assert got == _expected(limit, offset), (limit, offset)
    # The next reads still answer, and no connection is left checked out.
    assert await people.ids(order=BY_AGE, limit=3, offset=2) == _expected(3, 2)
    pool = people.engine.sync_engine.pool
    assert isinstance(pool, sa.pool.QueuePool)
    assert pool.checkedout() == 0
