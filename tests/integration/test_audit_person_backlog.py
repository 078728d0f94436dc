"""The person index's backlog on a PostgreSQL hub database (hub/audit/backlog.py): an event
touching many persons is written with them in one backlog row, in its flush; a citizen's history
and the auditors' person filter find it there before it is moved, and in the index after; verify
and the archive read it in either place; a backlog left by a hub that stopped before moving it
is moved by the next hub's first flush; and the move never loses nor doubles a person."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import URL

from hub.audit.archive import archive
from hub.audit.backlog import DEFER_PERSONS, backlog_positions, move_some
from hub.audit.event import Event
from hub.audit.history import PersonHistory
from hub.audit.models import AuditEvent
from hub.audit.store import persons_between
from hub.audit.verify import verify_log
from hub.audit.writer import TrailWriter
from hub.auth.principal import Principal
from hub.crypto.signing import TreeSigner
from hub.db.engine import hub_engine, sessions
from hub.migrate import upgrade
from tests.servers import fresh_database
from tests.unit.audit.test_backlog import counts
from tests.unit.audit.test_writer import event

ENTITIES = ("civil_affairs.ServiceDelivery", "population.Person,civil_affairs.ServiceDelivery")


def database(name: str) -> URL:
    url = fresh_database("postgresql", name)
    upgrade(url)
    return url


def person(k: int) -> str:
    return hashlib.sha256(f"person {k}".encode()).hexdigest()


def crowd(n: int, persons: int = 300) -> Event:
    """A W1-like event: more persons than DEFER_PERSONS, in two sets of entities."""
    return replace(event(n), persons={person(k): ENTITIES[k % 2] for k in range(persons)})


class StillMover:
    """A mover that never moves: the backlog stays as the flush left it."""

    moved = 0

    def kick(self) -> None:
        pass

    async def close(self) -> None:
        pass


async def write(url: URL, events: list[Event], move: bool) -> None:
    engine = hub_engine(url)
    writer = TrailWriter(engine)
    flusher: Any = writer._flusher
    if not move:
        flusher.mover = StillMover()
    try:
        for made in events:
            await writer.append(made)
    finally:
        await writer.close()
        await engine.dispose()


class Portal:
    """What PersonHistory asks of the query service: the person's blind index (quota aside)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    async def person(self, actor: Principal, id_number: str) -> bytes:
        return self.raw


async def history_positions(url: URL, raw: bytes) -> list[tuple[int, list[str]]]:
    engine = hub_engine(url)
    try:
        portal = Principal(subject="citizen-portal", department="citizen_portal", roles=("citizen_portal",))
        signer = TreeSigner(bytes(range(32)))
        found = await PersonHistory(sessions(engine), Portal(raw), lambda: signer).history(  # type: ignore[arg-type]
            portal, "citizen_service", "-", None, None
        )
        return [(entry.event.position, entry.entities) for entry in found.entries]
    finally:
        await engine.dispose()


def test_a_crowd_event_keeps_its_persons_in_the_backlog_and_history_finds_them_there_and_after_the_move() -> None:
    url = database("hub_it_trail_backlog")
    made = [event(0), crowd(1), event(2), crowd(3, DEFER_PERSONS)]
    asyncio.run(write(url, made, move=False))
    # The crowd event's 300 persons wait in one backlog row; the others (one person each, and
    # 64: not more than DEFER_PERSONS) were written to the index in their flush.
    assert asyncio.run(counts(url)) == (1 + 1 + DEFER_PERSONS, 1)
    raw = bytes.fromhex(person(7))
    # Person 7 is in events 1 and 3; the entities are its own records'.
    expected = [(3, ENTITIES[1].split(",")), (1, ENTITIES[1].split(","))]
    assert asyncio.run(history_positions(url, raw)) == expected

    async def verified() -> bool:
        engine = hub_engine(url)
        try:
            return (await verify_log(sessions(engine), None)).ok
        finally:
            await engine.dispose()

    assert asyncio.run(verified())
    # The next hub's first flush moves what was left, and the answer is the same from the index.
    asyncio.run(write(url, [event(4)], move=True))
    assert asyncio.run(counts(url)) == (1 + 1 + DEFER_PERSONS + 300 + 1, 0)
    assert asyncio.run(history_positions(url, raw)) == expected
    assert asyncio.run(verified())


def test_a_person_straddling_two_others_in_the_backlog_is_not_a_match() -> None:
    url = database("hub_it_trail_backlog_straddle")
    asyncio.run(write(url, [crowd(1)], move=False))
    straddling = bytes.fromhex(person(4))[16:] + bytes.fromhex(person(5))[:16]

    async def found(raw: bytes) -> dict[int, str]:
        engine = hub_engine(url)
        try:
            async with engine.connect() as connection:
                return await backlog_positions(connection, raw, None, None)
        finally:
            await engine.dispose()

    assert asyncio.run(found(straddling)) == {}
    assert asyncio.run(found(bytes.fromhex(person(4)))) == {0: ENTITIES[0]}
    assert asyncio.run(found(hashlib.sha256(b"never touched").digest())) == {}


def test_moves_beside_each_other_and_beside_reads_lose_and_double_no_person() -> None:
    url = database("hub_it_trail_backlog_race")
    asyncio.run(write(url, [crowd(n, 100 + n) for n in range(12)], move=False))
    expected = {n: sorted((person(k), ENTITIES[k % 2]) for k in range(100 + n)) for n in range(12)}

    async def race() -> list[dict[int, list[tuple[str, str]]]]:
        engine = hub_engine(url)
        seen: list[dict[int, list[tuple[str, str]]]] = []

        async def mover() -> None:
            async with engine.connect() as connection:
                moved = 1
                while moved:
                    # One batch at a time, the reader's statements between them.
                    moved = await move_some(connection)
                    await asyncio.sleep(0)

        async def reader() -> None:
            for _ in range(20):
                async with engine.connect() as connection:
                    seen.append(await persons_between(connection, 0, 12))

        try:
            await asyncio.gather(mover(), mover(), reader())
            async with engine.connect() as connection:
                seen.append(await persons_between(connection, 0, 12))
            return seen
        finally:
            await engine.dispose()

    for reading in asyncio.run(race()):
        assert {n: sorted(found) for n, found in reading.items()} == expected
    assert asyncio.run(counts(url)) == (sum(100 + n for n in range(12)), 0)


def test_the_archive_takes_backlog_persons_and_leaves_neither_table_holding_them(tmp_path: Path) -> None:
    url = database("hub_it_trail_backlog_archive")
    asyncio.run(write(url, [crowd(0), crowd(1), event(2)], move=False))

    async def archived() -> int:
        engine = hub_engine(url)
        try:
            with (tmp_path / "archive.jsonl").open("wb") as out:
                await archive(sessions(engine), event(2).at_us, out)
            async with engine.connect() as connection:
                return (await connection.execute(select(func.count()).select_from(AuditEvent))).scalar_one()
        finally:
            await engine.dispose()

    assert asyncio.run(archived()) == 1
    assert asyncio.run(counts(url)) == (1, 0)
    # Each archived event carries its 300 persons, read from the backlog.
    assert (tmp_path / "archive.jsonl").read_bytes().count(person(299).encode()) == 2
