"""The trail's writes on SQLite: the writer's flush is one trip to a thread of its own
(hub/audit/sqlite_writer.py), an admin action's append runs each statement in one trip to
aiosqlite's thread (hub/audit/sqlite_direct.py), and both store exactly what SQLAlchemy's own
execution stores: the same rows, the same tree."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite.core
import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL

from hub.audit import sqlite_direct
from hub.audit.event import Event
from hub.audit.models import AuditEvent, AuditLog, AuditNode, AuditPerson
from hub.audit.store import append_in
from hub.audit.writer import TrailWriter
from hub.db.engine import hub_engine
from hub.migrate import upgrade


def event(n: int) -> Event:
    return Event(
        at_us=1_765_000_000_000_000 + n,
        principal="auditor",
        department="audit",
        purpose="audit" if n % 2 else None,
        operation_hash=f"{n:064x}",
        operation_name=None,
        document_id=None,
        outcome="served",
        status=200,
        code=None,
        policy_version="7",
        released={"civil_affairs.ServiceDelivery.amount": {"PLAIN": n}},
        persons=(
            {f"{n:064x}": "civil_affairs.ServiceDelivery", f"{n + 1:064x}": "civil_affairs.AssistanceCase"}
            if n % 3
            else {}
        ),
    )


def counting(calls: list[str]) -> Callable[..., Awaitable[Any]]:
    """aiosqlite's `Connection._execute`, noting in `calls` each trip to a driver thread made
    from this thread's event loop only: the session's demo hub, serving on a thread of its own,
    polls its own databases meanwhile, and its trips are not this test's."""
    original = aiosqlite.core.Connection._execute
    here = threading.get_ident()

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == here:
            calls.append(getattr(fn, "__name__", "?"))
        return await original(self, fn, *args, **kwargs)

    return counted


def new_database(folder: Path) -> URL:
    url = URL.create("sqlite+aiosqlite", database=str(folder / "hub.db"))
    upgrade(url)  # alembic runs its own event loop: before ours
    return url


async def written(
    url: URL, way: str, monkeypatch: pytest.MonkeyPatch, batches: tuple[int, ...] = (1, 1, 1, 4)
) -> dict[str, list[Any]]:
    """Events in flushes of these sizes (by default seven: one at a time, then four together)
    on a new hub database; its tables. `way`: the writer's flush on its own thread, `append_in`
    with the direct statements (an admin action's path), or `append_in` through SQLAlchemy's
    own execution."""
    if way == "sqlalchemy":

        async def none(connection: Any) -> None:
            return None

        monkeypatch.setattr(sqlite_direct.DirectSqlite, "of", none)
    engine = hub_engine(url)
    try:
        starts = [sum(batches[:k]) for k in range(len(batches))]
        if way == "writer":
            writer = TrailWriter(engine)
            for start, size in zip(starts, batches, strict=True):
                await writer.write([event(n) for n in range(start, start + size)])
            await writer.close()
        else:
            for start, size in zip(starts, batches, strict=True):
                async with engine.begin() as connection:
                    await append_in(connection, [event(n) for n in range(start, start + size)])
        async with engine.connect() as connection:
            tables: dict[str, list[Any]] = {}
            for model in (AuditEvent, AuditPerson, AuditNode, AuditLog):
                table = model.__table__
                tables[table.name] = [
                    tuple(r) for r in await connection.execute(select(table).order_by(*table.primary_key))
                ]  # type: ignore[attr-defined]
            return tables
    finally:
        monkeypatch.undo()
        await engine.dispose()


def test_the_writer_and_the_direct_writes_store_what_sqlalchemy_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = {}
    for way in ("writer", "direct", "sqlalchemy"):
        (tmp_path / way).mkdir()
        tables[way] = asyncio.run(written(new_database(tmp_path / way), way, monkeypatch))
    assert tables["writer"] == tables["direct"] == tables["sqlalchemy"]
    assert len(tables["writer"]["hub_audit_event"]) == 7
    assert tables["writer"]["hub_audit_log"][0][1] == 7
    assert tables["writer"]["hub_audit_person"]


def test_flushes_of_any_size_as_multi_row_inserts_store_what_sqlalchemy_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 13 events (runs of 8, 4 and 1 rows), then 300 (past the largest run, MAX_ROWS), then 3.
    batches = (13, 300, 3)
    tables = {}
    for way in ("writer", "sqlalchemy"):
        (tmp_path / way).mkdir()
        tables[way] = asyncio.run(written(new_database(tmp_path / way), way, monkeypatch, batches))
    assert tables["writer"] == tables["sqlalchemy"]
    assert [row[0] for row in tables["writer"]["hub_audit_event"]] == list(range(316))
    assert tables["writer"]["hub_audit_log"][0][1] == 316


def test_rows_are_cut_into_runs_of_powers_of_two_within_sqlites_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    def sizes(count: int, columns: int = 4) -> list[int]:
        rows = [{f"c{k}": k for k in range(columns)}] * count
        return [len(chunk) for chunk in sqlite_direct.row_chunks(rows)]

    assert sizes(0) == []
    assert sizes(1) == [1]
    assert sizes(13) == [8, 4, 1]
    assert sizes(16) == [16]
    assert sizes(600) == [256, 256, 64, 16, 8]
    # An older SQLite takes 999 parameters a statement: 19 columns, at most 32 rows a run.
    monkeypatch.setattr(sqlite_direct, "MAX_PARAMETERS", 999)
    assert sizes(100, 19) == [32, 32, 32, 4]
    assert sum(sizes(1_000, 19)) == 1_000


def test_a_direct_append_is_one_trip_to_the_driver_thread_per_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = asyncio.run(one_append(new_database(tmp_path), monkeypatch))
    # The log's size, the event, its persons and the tree's nodes, then the commit and the pool's
    # reset: six, where SQLAlchemy's adapter made twelve (open, execute, fetch, close).
    assert len(calls) <= 6, calls


def test_a_writers_flush_makes_no_trip_to_aiosqlite_and_one_to_its_own_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = new_database(tmp_path)

    async def work() -> tuple[list[str], int, int]:
        engine = hub_engine(url)
        calls: list[str] = []
        counted = counting(calls)
        writer = TrailWriter(engine)
        trips = []
        assert writer._flusher is not None
        real = writer._flusher._write

        def trip(*args: Any) -> Any:
            trips.append(threading.current_thread().name)
            return real(*args)

        try:
            await writer.append(event(0))
            monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
            monkeypatch.setattr(writer._flusher, "_write", trip)
            position = await writer.append(event(1))
        finally:
            monkeypatch.undo()
            await writer.close()
            await engine.dispose()
        assert all(name.startswith("hub-trail") for name in trips)
        return calls, len(trips), position

    calls, trips, position = asyncio.run(work())
    assert (calls, trips, position) == ([], 1, 1)


async def one_append(url: URL, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls to aiosqlite's thread of the second direct append to a new log."""
    engine = hub_engine(url)
    calls: list[str] = []
    counted = counting(calls)
    try:
        async with engine.begin() as connection:
            _, edge = await append_in(connection, [event(0)])
        monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
        started = time.perf_counter()
        async with engine.begin() as connection:
            await append_in(connection, [event(1)], edge)
        assert time.perf_counter() - started < 5
    finally:
        monkeypatch.undo()
        await engine.dispose()
    return calls
