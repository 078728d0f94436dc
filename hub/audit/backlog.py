"""The person index's backlog: the persons of an event that touched many, kept beside the event
until they are moved into the person index (`hub_audit_person`) off the request's path.

Why: a W1 answer (10,000 rows) touches about 1,330 persons. Writing their 1,330 rows into the
(person, time) index in the flush lands them at 1,330 scattered places of that index, and the
answer waited for it: in process a median 8.5-11 ms a flush on PostgreSQL (2 ms without the
rows), the whole of the trail's cost on W1 (bench/README.md, "The access trail"). So an event with more than
DEFER_PERSONS persons keeps them in its flush as one backlog row (its persons' raw blind indexes
end to end, and their runs of entities), in the same transaction as the event: they are exactly
as durable as the event, and nothing is lost on a crash. A mover then copies the row into the
index and deletes it, in one statement (so a row is in the index or in the backlog, never lost
between), after the flush's requests were answered, and at start for a backlog left by a hub
that stopped.

The index is derived data, the backlog its not-yet-indexed tail: every reader of persons reads
both. `personAccessHistory` and `auditEvents`' person filter read the backlog's (few) rows
before the index, each in a statement of its own: a row moved between the two reads is then
found twice (one position), never missed. Verify and the archive read both by position.

Both flushes defer. On PostgreSQL (hub/audit/postgres_writer.py) the `Mover` runs on a
connection of its own, beside the next flush. On SQLite (hub/audit/sqlite_writer.py), which has
one writer at a time, the move is queued on the flushes' own thread once the flush's requests
are answered, one transaction of MOVE_ROWS events at a time, so flushes queued meanwhile go
between them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import orjson
from sqlalchemy import (
    JSON,
    Column,
    Integer,
    Table,
    Text,
    column,
    delete,
    func,
    insert,
    select,
    true,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from hub.audit.models import AuditPerson, AuditPersonBacklog
from hub.audit.rows import PERSON_BYTES, Staged

log = logging.getLogger("hub.audit")

# An event touching more persons than this keeps them in the backlog. W6 (one person) and the
# requests of a few persons write their rows in the flush, as before: a second transaction per
# small flush would cost them more than their rows do.
DEFER_PERSONS = 64
# Backlog rows moved per statement: a W1 event's 1,330 persons take 10-15 ms to move (PostgreSQL,
# in process), so a few events a statement keep each one short.
MOVE_ROWS = 4

_BACKLOG = cast(Table, AuditPersonBacklog.__table__)
_PERSON = cast(Table, AuditPerson.__table__)


def deferred(item: Staged) -> bool:
    """Whether `item`'s persons go to the backlog rather than to the index in the flush."""
    return len(item.event.persons) > DEFER_PERSONS


def backlog_row(item: Staged, position: int) -> dict[str, Any]:
    """The backlog row of a staged event at `position`: its persons end to end, and their runs
    as a JSON list of {entities, first, count} (`first`: the run's first person's index)."""
    runs, first = [], 0
    for entities, raw in item.persons:
        count = len(raw) // PERSON_BYTES
        runs.append({"entities": entities, "first": first, "count": count})
        first += count
    return {
        "position": position,
        "at_us": item.event.at_us,
        "runs": orjson.dumps(runs).decode(),
        "persons": b"".join(raw for _, raw in item.persons),
    }


def unpack(runs: str, persons: bytes) -> list[tuple[bytes, str]]:
    """A backlog row's persons: (raw blind index, entities) each."""
    return [
        (persons[k * PERSON_BYTES : (k + 1) * PERSON_BYTES], str(run["entities"]))
        for run in orjson.loads(runs)
        for k in range(run["first"], run["first"] + run["count"])
    ]


def entities_of(runs: str, persons: bytes, person: bytes) -> str | None:
    """The entities of `person` in a backlog row, or None when the row does not hold it. Only a
    match at a person's boundary counts (the 32 bytes could straddle two persons)."""
    start = persons.find(person)
    while start >= 0:
        if start % PERSON_BYTES == 0:
            index = start // PERSON_BYTES
            for run in orjson.loads(runs):
                if run["first"] <= index < run["first"] + run["count"]:
                    return str(run["entities"])
            return None
        start = persons.find(person, start + 1)
    return None


async def backlog_between(
    session: AsyncSession | AsyncConnection, start: int, stop: int
) -> dict[int, list[tuple[str, str]]]:
    """The backlog's persons of the events at positions [start, stop): (hex, entities) each."""
    rows = await session.execute(
        select(_BACKLOG.c.position, _BACKLOG.c.runs, _BACKLOG.c.persons).where(
            _BACKLOG.c.position >= start, _BACKLOG.c.position < stop
        )
    )
    return {
        position: [(raw.hex(), entities) for raw, entities in unpack(runs, bytes(persons))]
        for position, runs, persons in rows.all()
    }


async def backlog_positions(
    session: AsyncSession | AsyncConnection, person: bytes, since_us: int | None, until_us: int | None
) -> dict[int, str]:
    """The events of the backlog that touched `person` (position: entities), between the times
    given. Read before the index (see the module's docstring)."""
    wanted = select(_BACKLOG.c.position, _BACKLOG.c.runs, _BACKLOG.c.persons)
    if since_us is not None:
        wanted = wanted.where(_BACKLOG.c.at_us >= since_us)
    if until_us is not None:
        wanted = wanted.where(_BACKLOG.c.at_us < until_us)
    found: dict[int, str] = {}
    for position, runs, persons in (await session.execute(wanted)).all():
        entities = entities_of(runs, bytes(persons), person)
        if entities is not None:
            found[position] = entities
    return found


_RUN: list[Column[Any]] = [Column("entities", Text), Column("first", Integer), Column("count", Integer)]


def _move_statement() -> Any:
    """Up to MOVE_ROWS backlog rows (the oldest not being moved by another process) deleted and
    their persons inserted into the index, in one statement: one transaction, so each person is
    in the backlog or in the index at every moment."""
    oldest = select(_BACKLOG.c.position).order_by(_BACKLOG.c.position).limit(MOVE_ROWS)
    oldest = oldest.with_for_update(skip_locked=True)
    taken = (
        delete(_BACKLOG)
        .where(_BACKLOG.c.position.in_(oldest.scalar_subquery()))
        .returning(_BACKLOG.c.position, _BACKLOG.c.at_us, _BACKLOG.c.runs, _BACKLOG.c.persons)
        .cte("taken")
    )
    runs = (
        func.json_to_recordset(sql_cast(taken.c.runs, JSON))
        .table_valued(*(column(c.name, c.type) for c in _RUN))
        .render_derived(name="r", with_types=True)
    )
    series = func.generate_series(runs.c.first, runs.c.first + runs.c.count - 1).table_valued("i").render_derived("s")
    person = func.substr(taken.c.persons, series.c.i * PERSON_BYTES + 1, PERSON_BYTES)
    moved = insert(_PERSON).from_select(
        ["position", "person", "at_us", "entities"],
        select(taken.c.position, person, taken.c.at_us, runs.c.entities).select_from(
            taken.join(runs, true()).join(series, true())
        ),
    )
    return select(func.count()).select_from(taken).add_cte(moved.cte("moved"))


_MOVE = _move_statement()


async def move_some(connection: AsyncConnection) -> int:
    """Move up to MOVE_ROWS backlog rows into the index (PostgreSQL); how many were moved."""
    moved = (await connection.execute(_MOVE)).scalar()
    await connection.commit()
    return int(moved or 0)


class Mover:
    """Moves the backlog into the index on a connection of its own, one task at a time: kicked
    after each flush that deferred persons, and after this hub's first flush for what an earlier
    hub left."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._task: asyncio.Task[None] | None = None
        # Kicked while running: run once more (a flush may have deferred after the last read).
        self._again = False
        # Backlog rows (events) moved so far.
        self.moved = 0

    def kick(self) -> None:
        if self._task is not None:
            self._again = True
            return
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Wait for the move in progress (at shutdown); what is left stays in the backlog."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        try:
            while True:
                self._again = False
                async with self._engine.connect() as connection:
                    while (moved := await move_some(connection)) > 0:
                        self.moved += moved
                if not self._again:
                    return
        except Exception as exc:
            # The persons stay in the backlog (readers read it): the next kick tries again.
            log.warning("the access trail's person backlog could not be moved: %s", type(exc).__name__)
        finally:
            self._task = None
