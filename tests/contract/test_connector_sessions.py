"""Sessions are read-only and time-limited by the database itself, and failures reach callers as
UnavailableError with a message that gives away no SQL, URL, password or file path."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from connectors.base import ColumnSpec, Kind, Query, TableSpec, UnavailableError
from connectors.sql import SqlConnector

if TYPE_CHECKING:
    from pathlib import Path

    from tests.contract.conftest import Backend

# A view whose one row takes seconds to compute, per database.
SLOW_SELECTS = {
    "postgresql": "SELECT 1 AS id, CAST(pg_sleep(3) AS text) AS name",
    "mariadb": "SELECT 1 AS id, CAST(SLEEP(3) AS CHAR) AS name",
    "sqlite": (
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000000000) "
        "SELECT 1 AS id, CAST(count(*) AS TEXT) AS name FROM c"
    ),
}

CITIZENS = TableSpec("citizens", "id", {"id": ColumnSpec("id", Kind.INT), "name": ColumnSpec("name", Kind.STRING)})


def assert_tells_nothing(error: Exception, *secrets: str) -> None:
    message = str(error)
    for secret in ("SELECT", "citizens", *secrets):
        assert secret not in message, message


async def test_the_connectors_engine_cannot_write(sql_backend: Backend) -> None:
    people = await sql_backend.load_people()
    assert people.engine is not None
    before = await sql_backend.read_back(people)
    table = sa.table(people.table.name, sa.column("id"), sa.column("name"))
    async with people.engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError):
            await conn.execute(sa.insert(table).values(id=99, name="intruder"))
    async with people.engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError):
            await conn.execute(sa.delete(table))
    assert await sql_backend.read_back(people) == before


async def test_a_slow_statement_is_cut_off_as_unavailable(sql_backend: Backend) -> None:
    slow = await sql_backend.create_view(SLOW_SELECTS[sql_backend.name], statement_timeout_ms=300)
    started = time.monotonic()
    with pytest.raises(UnavailableError) as caught:
        await slow.connector.fetch(Query(slow.table, ("id", "name")))
    assert time.monotonic() - started < 2.5
    assert "did not answer" in str(caught.value)
    assert_tells_nothing(caught.value, slow.table.name)


async def test_the_connector_answers_again_after_a_timeout(sql_backend: Backend) -> None:
    slow = await sql_backend.create_view(SLOW_SELECTS[sql_backend.name], statement_timeout_ms=300)
    with pytest.raises(UnavailableError):
        await slow.connector.count(slow.table, None)
    people = await sql_backend.load_people()
    assert await people.connector.count(people.table, None) == 14


async def test_a_cancelled_read_gives_its_connection_back(sql_backend: Backend) -> None:
    slow = await sql_backend.create_view(SLOW_SELECTS[sql_backend.name], statement_timeout_ms=600, pool_size=1)
    assert slow.engine is not None
    read = asyncio.create_task(slow.connector.fetch(Query(slow.table, ("id", "name"))))
    await asyncio.sleep(0.2)
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    assert slow.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # The pool's one connection is free: the next read runs at once and is cut off by the
    # server's time limit, where a lost connection would leave it waiting for the pool.
    started = time.monotonic()
    with pytest.raises(UnavailableError) as caught:
        await slow.connector.fetch(Query(slow.table, ("id", "name")))
    assert "did not answer" in str(caught.value)
    assert time.monotonic() - started < 2.5


# What the log gives as the reason a read of a table another session holds locked failed: the
# servers stop the waiting statement at its time limit, SQLite stops waiting for the lock.
LOCKED_REASONS = {"postgresql": "statement timeout", "mariadb": "statement timeout", "sqlite": "database is locked"}


async def test_a_table_another_session_holds_locked_is_unavailable_within_the_timeout(sql_backend: Backend) -> None:
    people = await sql_backend.load_people(statement_timeout_ms=300)
    assert sql_backend.url is not None
    name = people.table.name
    async with contextlib.AsyncExitStack() as held:
        if sql_backend.name == "sqlite":
            writer = held.enter_context(
                contextlib.closing(sqlite3.connect(sa.make_url(sql_backend.url).database or "", isolation_level=None))
            )
            writer.execute("BEGIN EXCLUSIVE")
        else:
            conn = await held.enter_async_context(sql_backend.write.connect())
            if sql_backend.name == "postgresql":
                await conn.begin()
                await conn.execute(sa.text(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
            else:
                await conn.execute(sa.text(f"LOCK TABLES {name} WRITE"))
                held.push_async_callback(conn.execute, sa.text("UNLOCK TABLES"))
        started = time.monotonic()
        with pytest.raises(UnavailableError) as caught:
            await people.connector.count(people.table, None)
        assert time.monotonic() - started < 2.0
    assert LOCKED_REASONS[sql_backend.name] in caught.value.reason
    assert_tells_nothing(caught.value, name)
    # The lock released, the same connector reads again.
    assert await people.connector.count(people.table, None) == 14


async def test_concurrent_reads_hold_at_most_pool_size_connections(sql_backend: Backend) -> None:
    people = await sql_backend.load_people(pool_size=2)
    assert people.engine is not None
    pool = people.engine.sync_engine.pool
    peak = 0

    def on_checkout(*args: object) -> None:
        nonlocal peak
        peak = max(peak, pool.checkedout())  # type: ignore[attr-defined]

    sa.event.listen(people.engine.sync_engine, "checkout", on_checkout)
    counts = await asyncio.gather(*(people.connector.count(people.table, None) for _ in range(8)))
    assert counts == [14] * 8
    assert 1 <= peak <= 2


async def test_a_connection_the_server_dropped_is_replaced_unseen(server_backend: Backend) -> None:
    people = await server_backend.load_people()
    assert await people.connector.count(people.table, None) == 14
    await server_backend.drop_connection(people)
    assert await people.connector.count(people.table, None) == 14


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://hub_reader:s3cr3t-pw@127.0.0.1:1/citizens",
        "mysql+asyncmy://hub_reader:s3cr3t-pw@127.0.0.1:1/citizens",
    ],
    ids=["postgresql", "mariadb"],
)
async def test_an_unreachable_server_is_unavailable_without_secrets(url: str) -> None:
    connector = SqlConnector(url)
    try:
        for call in (
            connector.fetch(Query(CITIZENS, ("id", "name"))),
            connector.count(CITIZENS, None),
            connector.fetch_by(CITIZENS, "id", [1], ["name"]),
        ):
            with pytest.raises(UnavailableError) as caught:
                await call
            assert_tells_nothing(caught.value, "s3cr3t-pw", "hub_reader", "127.0.0.1", ":1")
    finally:
        await connector.close()


async def test_an_unopenable_sqlite_file_is_unavailable_without_its_path(tmp_path: Path) -> None:
    path = tmp_path / "missing-folder" / "secret-registry.db"
    connector = SqlConnector(f"sqlite+aiosqlite:///{path}")
    try:
        with pytest.raises(UnavailableError) as caught:
            await connector.fetch(Query(CITIZENS, ("id",)))
        assert_tells_nothing(caught.value, "secret-registry", str(tmp_path), "missing-folder")
    finally:
        await connector.close()
        # aiosqlite stops the worker thread of a failed connection without waiting for it; let
        # it finish while this test's event loop can still hear from it.
        for thread in threading.enumerate():
            if "_connection_worker_thread" in thread.name:
                await asyncio.to_thread(thread.join, 5)


def test_a_bad_time_zone_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="time zone"):
        SqlConnector("sqlite+aiosqlite://", timezone="Mars/Olympus_Mons")
