"""The person backlog on a SQLite hub database (hub/audit/backlog.py, hub/audit/sqlite_writer.py):
an event touching many persons keeps them in the backlog in its flush; readers find them there;
the move after the flush puts every one into the index once; a backlog left by a writer that
stopped before moving is moved by the next writer's first flush; and the rows' encoding."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from hub.audit.backlog import DEFER_PERSONS, backlog_positions, backlog_row, deferred, entities_of, unpack
from hub.audit.event import Event
from hub.audit.models import AuditPerson, AuditPersonBacklog
from hub.audit.rows import stage
from hub.audit.sqlite_writer import SqliteFlusher
from hub.audit.store import persons_between
from hub.audit.verify import verify_log
from hub.audit.writer import TrailWriter
from hub.db.engine import hub_engine, sessions
from hub.migrate import upgrade
from tests.unit.audit.test_writer import event

ENTITIES = ("civil_affairs.ServiceDelivery", "population.Person,civil_affairs.ServiceDelivery")


def person(k: int) -> str:
    return hashlib.sha256(f"person {k}".encode()).hexdigest()


def crowd(n: int, persons: int = 300) -> Event:
    return replace(event(n), persons={person(k): ENTITIES[k % 2] for k in range(persons)})


@pytest.fixture
def url(tmp_path: Path) -> URL:
    url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "hub.db"))
    upgrade(url)
    return url


def test_a_backlog_row_unpacks_to_the_events_persons_and_entities() -> None:
    item = stage(crowd(0))
    assert deferred(item) and not deferred(stage(crowd(1, DEFER_PERSONS)))
    row = backlog_row(item, 7)
    assert row["position"] == 7 and len(row["persons"]) == 300 * 32
    found = sorted((raw.hex(), entities) for raw, entities in unpack(row["runs"], row["persons"]))
    assert found == sorted((person(k), ENTITIES[k % 2]) for k in range(300))
    assert entities_of(row["runs"], row["persons"], bytes.fromhex(person(5))) == ENTITIES[1]
    # 32 bytes across two persons' boundary are no person of the row.
    straddling = row["persons"][16:48]
    assert entities_of(row["runs"], row["persons"], straddling) is None


async def moved(writer: TrailWriter) -> None:
    """Until the writer's backlog moves (one transaction a call, queued again while more are
    left) are done."""
    flusher = writer._flusher
    assert isinstance(flusher, SqliteFlusher)
    for _ in range(3_000):
        if flusher._moving is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the backlog's move did not end in 30 s")


async def counts(url: URL) -> tuple[int, int]:
    engine = hub_engine(url)
    try:
        async with engine.connect() as connection:
            indexed = (await connection.execute(select(func.count()).select_from(AuditPerson))).scalar_one()
            waiting = (await connection.execute(select(func.count()).select_from(AuditPersonBacklog))).scalar_one()
            return indexed, waiting
    finally:
        await engine.dispose()


def test_a_crowd_events_persons_are_found_in_the_backlog_then_in_the_index(
    url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def held() -> None:
        engine = hub_engine(url)
        writer = TrailWriter(engine)
        try:
            for n, made in enumerate([event(0), crowd(1), event(2)]):
                assert await writer.append(made) == n
        finally:
            await writer.close()
            await engine.dispose()

    # A writer stopped before its move: the persons wait in the backlog.
    with monkeypatch.context() as patch:
        patch.setattr(SqliteFlusher, "_queue_move", lambda self: None)
        asyncio.run(held())
    assert asyncio.run(counts(url)) == (2, 1)

    async def read() -> tuple[dict[int, str], int, bool]:
        engine = hub_engine(url)
        try:
            async with engine.connect() as connection:
                found = await backlog_positions(connection, bytes.fromhex(person(3)), None, None)
                persons = await persons_between(connection, 0, 3)
            return found, len(persons[1]), (await verify_log(sessions(engine), None)).ok
        finally:
            await engine.dispose()

    assert asyncio.run(read()) == ({1: ENTITIES[1]}, 300, True)

    # The next writer's first flush moves what was left.
    async def next_hub() -> None:
        engine = hub_engine(url)
        writer = TrailWriter(engine)
        try:
            await writer.append(event(3))
            await moved(writer)
        finally:
            await writer.close()
            await engine.dispose()

    asyncio.run(next_hub())
    assert asyncio.run(counts(url)) == (2 + 300 + 1, 0)
    found, persons, ok = asyncio.run(read())
    assert (found, persons, ok) == ({}, 300, True)


def test_many_crowd_events_at_once_are_all_moved_between_flushes(url: URL) -> None:
    async def work() -> None:
        engine = hub_engine(url)
        writer = TrailWriter(engine)
        try:
            await writer.write([crowd(n, 100 + n) for n in range(10)])
            # Flushes after the backlog's move was queued: written between its transactions.
            assert await asyncio.gather(*(writer.append(event(n)) for n in range(10, 14))) == [10, 11, 12, 13]
            await moved(writer)
        finally:
            await writer.close()
            await engine.dispose()

    asyncio.run(work())
    assert asyncio.run(counts(url)) == (sum(100 + n for n in range(10)) + 4, 0)
