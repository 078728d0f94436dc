"""The trail's flush on PostgreSQL (hub/audit/postgres_writer.py): one statement stores exactly
what the locking path (store.append_in) stores, in the hub or in the writer's process
(hub/audit/flush_process.py), follows another writer's appends without a gap,
and an event the table would refuse fails its own request, not the others of its flush."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from hub.audit.event import Event
from hub.audit.models import AuditEvent, AuditLog, AuditNode, AuditPerson
from hub.audit.postgres_writer import IDLE_S
from hub.audit.store import TrailUnavailable, append_in
from hub.audit.verify import verify_log
from hub.audit.writer import TrailWriter
from hub.db.engine import hub_engine, sessions
from hub.migrate import upgrade
from tests.servers import fresh_database
from tests.unit.audit.test_writer import event


def database(name: str) -> URL:
    url = fresh_database("postgresql", name)
    upgrade(url)
    return url


async def tables(url: URL) -> dict[str, list[Any]]:
    engine = hub_engine(url)
    try:
        report = await verify_log(sessions(engine), None)
        assert report.ok, report.findings[:3]
        async with engine.connect() as connection:
            found: dict[str, list[Any]] = {}
            for model in (AuditEvent, AuditPerson, AuditNode, AuditLog):
                table = model.__table__
                found[table.name] = [
                    tuple(r) for r in await connection.execute(select(table).order_by(*table.primary_key))
                ]  # type: ignore[attr-defined]
            return found
    finally:
        await engine.dispose()


def crowd(n: int) -> Event:
    """An event touching many persons, in three sets of entities (a W1 event has 1,330)."""
    sets = ("population.Person", "civil_affairs.AssistanceCase,population.Person", "health.Visit")
    persons = {hashlib.sha256(f"{n}/{k}".encode()).hexdigest(): sets[k % 3] for k in range(200)}
    return replace(event(n), persons=persons)


@pytest.mark.parametrize("process", [False, True], ids=["in the hub", "in the writer process"])
def test_the_one_statement_flush_stores_what_the_locking_path_stores(process: bool) -> None:
    flushed, locked = database("hub_it_trail_flush"), database("hub_it_trail_locked")
    # Events of one person, of many in several sets of entities, and of none.
    made = [event(0), crowd(1), event(2), event(3), crowd(4), replace(event(5), persons={}), event(6)]

    async def write(url: URL, writer_path: bool) -> None:
        engine = hub_engine(url)
        writer = TrailWriter(engine, process=process)
        try:
            if writer_path:
                assert writer._flusher is not None
                for n in range(3):
                    await writer.append(made[n])
                await writer.write(made[3:7])
            else:
                for batch in ([0], [1], [2], [3, 4, 5, 6]):
                    async with engine.begin() as connection:
                        await append_in(connection, [made[n] for n in batch])
        finally:
            await writer.close()
            await engine.dispose()

    asyncio.run(write(flushed, True))
    asyncio.run(write(locked, False))
    one, other = asyncio.run(tables(flushed)), asyncio.run(tables(locked))
    assert one == other
    assert len(one["hub_audit_event"]) == 7 and len(one["hub_audit_person"]) == 404


@pytest.mark.parametrize("process", [False, True], ids=["in the hub", "in the writer process"])
def test_a_flush_after_another_writer_appended_continues_the_log_without_a_gap(process: bool) -> None:
    url = database("hub_it_trail_follow")

    async def work() -> list[int]:
        engine = hub_engine(url)
        writer = TrailWriter(engine, process=process)
        try:
            positions = [await writer.append(event(0))]
            # Another process (an admin command) appends: this writer's edge is stale.
            async with engine.begin() as connection:
                await append_in(connection, [event(1), event(2)])
            positions.append(await writer.append(event(3)))
            return positions
        finally:
            await writer.close()
            await engine.dispose()

    assert asyncio.run(work()) == [0, 3]
    assert [row[0] for row in asyncio.run(tables(url))["hub_audit_event"]] == [0, 1, 2, 3]


def test_an_event_postgresql_would_refuse_fails_only_its_own_request() -> None:
    url = database("hub_it_trail_unfit")

    async def work() -> list[Any]:
        engine = hub_engine(url)
        writer = TrailWriter(engine)
        try:
            appends = [writer.append(event(n)) for n in range(4)]
            appends.insert(2, writer.append(event(9, principal="p\x00")))
            return list(await asyncio.gather(*appends, return_exceptions=True))
        finally:
            await writer.close()
            await engine.dispose()

    outcomes = asyncio.run(work())
    assert isinstance(outcomes[2], TrailUnavailable)
    assert sorted(o for i, o in enumerate(outcomes) if i != 2) == [0, 1, 2, 3]
    assert len(asyncio.run(tables(url))["hub_audit_event"]) == 4


async def terminate_writers_connection(engine: Any, writer: TrailWriter) -> None:
    """The server ends the writer's kept connection (as a restart would)."""
    flusher = writer._flusher
    assert flusher is not None and flusher._connection is not None  # type: ignore[attr-defined]
    pid = (await flusher._connection.execute(select(func.pg_backend_pid()))).scalar()  # type: ignore[attr-defined]
    async with engine.begin() as connection:
        await connection.execute(select(func.pg_terminate_backend(pid)))


def test_after_the_server_dropped_the_connection_the_trail_writes_again() -> None:
    url = database("hub_it_trail_reconnect")

    async def work() -> tuple[int, Any, int, int]:
        engine = hub_engine(url)
        writer = TrailWriter(engine)
        try:
            first = await writer.append(event(0))
            # Idle for a while: the kept connection is pinged, found dead and replaced.
            await terminate_writers_connection(engine, writer)
            writer._flusher._used_at -= IDLE_S + 1  # type: ignore[union-attr]
            after_idle = await writer.append(event(1))
            # In use: the flush on the dead connection fails closed, the next one reconnects.
            await terminate_writers_connection(engine, writer)
            outcome = await asyncio.gather(writer.append(event(2)), return_exceptions=True)
            last = await writer.append(event(3))
            return first, (after_idle, outcome[0]), last, writer.flushes
        finally:
            await writer.close()
            await engine.dispose()

    first, (after_idle, refused), last, _ = asyncio.run(work())
    assert (first, after_idle) == (0, 1)
    assert isinstance(refused, TrailUnavailable) and last == 2
    assert [row[0] for row in asyncio.run(tables(url))["hub_audit_event"]] == [0, 1, 2]


# Names and purposes a caller writes (operationName, X-Hub-Purpose as the trail keeps it) that a
# statement built as text, or a JSON document built by hand, would break on or be steered by.
CRAFTED = [
    'q", "outcome": "refused", "status": 403, "x": "',
    "q'); DELETE FROM hub_audit_event; --",
    'back\\slash \\u0000 \\" }] ::json',
    "line\u2028separator\u2029and\x01\x1f\x7fcontrols\ttab\nnewline",
    "\u202eevil right-to-left \U0001f600 \ufeff\uffff",
    "\u00e9" * 200,
]


def test_crafted_operation_names_and_purposes_are_stored_as_given_beside_others_events() -> None:
    url = database("hub_it_trail_crafted")
    made = [event(0)]
    for n, text in enumerate(CRAFTED, start=1):
        made.append(replace(event(n, operation_name=text), purpose=text[:100]))
    made.append(event(len(CRAFTED) + 1))

    async def work() -> list[int]:
        engine = hub_engine(url)
        writer = TrailWriter(engine)
        try:
            assert writer._flusher is not None
            # One flush for them all: a crafted value must not fail or alter its neighbours.
            return list(await asyncio.gather(*(writer.append(e) for e in made)))
        finally:
            await writer.close()
            await engine.dispose()

    assert sorted(asyncio.run(work())) == list(range(len(made)))
    rows = asyncio.run(tables(url))["hub_audit_event"]
    columns = [c.name for c in AuditEvent.__table__.columns]  # type: ignore[attr-defined]
    stored = [dict(zip(columns, row, strict=True)) for row in rows]
    assert [(r["operation_name"], r["purpose"], r["outcome"], r["status"]) for r in stored] == [
        (e.operation_name, e.purpose, "served", 200) for e in made
    ]
