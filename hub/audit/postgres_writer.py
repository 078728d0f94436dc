"""The trail's flush on a PostgreSQL hub database: one statement, one round trip, few values.

Through a pooled connection a flush was nine round trips (the pool's ping, BEGIN, the log's
size, three inserts, COMMIT, ...), and on loopback each costs the hub's process kernel time as
well as the server's: about 5 ms of the hub's CPU per flush on this machine, under load
(bench/trail_writer.py). Here the writer holds one connection in autocommit and writes a flush
as a single statement, so it is one transaction:

    WITH grown AS (UPDATE hub_audit_log SET size = size + :count
                   WHERE id = 1 AND size = :expected RETURNING size),
         event_ AS (INSERT INTO hub_audit_event SELECT e.* FROM grown JOIN
                    json_to_recordset(:events) AS e(position BIGINT, ...) ON true),
         person_ AS (INSERT INTO hub_audit_person SELECT r.position, substr(:persons, s.i * 32 + 1, 32), ...
                     FROM grown JOIN json_to_recordset(:runs) AS r(...) ON true
                     JOIN generate_series(r.first, r.first + r.count - 1) AS s(i) ON true),
         node_ AS (INSERT INTO hub_audit_node SELECT unnest(:node_node), unnest(:node_hash) FROM grown),
         backlog_ AS (INSERT INTO hub_audit_person_backlog SELECT unnest(:backlog_position), ... FROM grown)
    SELECT size FROM grown

An event touching more than DEFER_PERSONS persons (W1's 1,330) sends them to the backlog
instead (hub/audit/backlog.py): one row, in this same statement, moved into the person index by
the flusher's `Mover` once the flush's requests are answered.

What it sends is a handful of values, whatever the flush carries: the events as one JSON text
(orjson's, in C), the persons' raw blind indexes end to end as one bytea, with a short JSON list
of runs (an event's persons sharing its entities: W1's 1,330 persons are one run), and the few
subtrees as two arrays. One array value per column and row made SQLAlchemy and the driver
convert and check each value: a W1 event (1,330 persons) sent 5,320 person values and cost the
hub 6.8-7.8 ms of CPU, now 0.8-3.9 ms (`bench.trail_writer --database postgresql --persons 1330
--clients 1 --work-us 50000`, load average 3.5-5.4, so indicative); the server's time per such
flush fell too (about 27 to 20 ms of wall time).

The rows are made for the log's size as this writer last left it (`expected`); the UPDATE takes
the log row's lock, as every writer's does, so writers of all processes still take turns. When
another process wrote meanwhile, `grown` is empty, nothing is inserted, and the flush reads the
tree's right edge again and tries once more; after that it takes the lock first, in an explicit
transaction (store.append_in), which always succeeds. The statement is built by SQLAlchemy from
the models, so its text (and its prepared plan) does not depend on how many events a flush
carries. A connection that failed is dropped (the next flush opens another); one idle for more
than IDLE_S is pinged first, as the pool would, so a server restarted in a quiet spell does not
cost the next group its answers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    Select,
    Table,
    Text,
    bindparam,
    column,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.audit.backlog import Mover, backlog_row, deferred
from hub.audit.merkle import Frontier
from hub.audit.models import AuditEvent, AuditLog, AuditNode, AuditPerson, AuditPersonBacklog
from hub.audit.rows import PERSON_BYTES, Staged, rows_at
from hub.audit.sqlite_direct import compiled_for
from hub.audit.store import TrailUnavailable, append_in, frontier_at

_LOG = cast(Table, AuditLog.__table__)
_BACKLOG = cast(Table, AuditPersonBacklog.__table__)
_SIZE = select(_LOG.c.size).where(_LOG.c.id == 1)
# Optimistic tries before the flush takes the log's lock first.
TRIES = 2
# A connection unused this long is pinged before a flush.
IDLE_S = 10.0
_PING = select(literal(1))


# A run of persons: the event's position and time, the entities of its persons in the run, and
# where in the bytea its persons are (the first's index and how many).
_RUN: list[Column[Any]] = [
    Column("position", BigInteger),
    Column("at_us", BigInteger),
    Column("entities", Text),
    Column("first", Integer),
    Column("count", Integer),
]


def _recordset(name: str, columns: Sequence[Column[Any]], alias: str) -> Any:
    """`json_to_recordset` of one text parameter (a JSON array of objects) as rows of `columns`."""
    rows = func.json_to_recordset(sql_cast(bindparam(name, type_=Text), JSON))
    return rows.table_valued(*(column(c.name, c.type) for c in columns)).render_derived(name=alias, with_types=True)


def _statement(backlog: bool) -> Select[tuple[int]]:
    grown = (
        update(_LOG)
        .where(_LOG.c.id == 1, _LOG.c.size == bindparam("expected"))
        .values(size=_LOG.c.size + bindparam("count"))
        .returning(_LOG.c.size)
        .cte("grown")
    )
    # Events: one JSON array of their rows, typed by the models' columns.
    event_table = cast(Table, AuditEvent.__table__)
    events = _recordset("events", list(event_table.columns), "e")
    event_rows = insert(event_table).from_select(
        list(events.c.keys()), select(*events.c).select_from(grown.join(events, true()))
    )
    # Persons: their raw blind indexes end to end in one bytea, cut into 32-byte rows by the
    # server, by runs of one event's persons sharing its entities (W1: 1,330 persons, one run).
    person_table = cast(Table, AuditPerson.__table__)
    runs = _recordset("runs", _RUN, "r")
    series = func.generate_series(runs.c.first, runs.c.first + runs.c.count - 1).table_valued("i").render_derived("s")
    person = func.substr(bindparam("persons", type_=LargeBinary), series.c.i * PERSON_BYTES + 1, PERSON_BYTES)
    person_rows = insert(person_table).from_select(
        ["position", "person", "at_us", "entities"],
        select(runs.c.position, person, runs.c.at_us, runs.c.entities).select_from(
            grown.join(runs, true()).join(series, true())
        ),
    )
    # Subtrees: one or two per event, as arrays.
    node_table = cast(Table, AuditNode.__table__)
    nodes = [func.unnest(bindparam(f"node_{c.name}", type_=ARRAY(c.type))) for c in node_table.columns]
    node_rows = insert(node_table).from_select(list(node_table.columns.keys()), select(*nodes).select_from(grown))
    filled = [event_rows.cte("event_"), person_rows.cte("person_"), node_rows.cte("node_")]
    if backlog:
        # The persons of events that touched many: one backlog row each, as arrays
        # (hub/audit/backlog.py). Only in the flushes that carry such an event: the others (W6's)
        # send the statement they sent before the backlog.
        values = [func.unnest(bindparam(f"backlog_{c.name}", type_=ARRAY(c.type))) for c in _BACKLOG.columns]
        rows = insert(_BACKLOG).from_select(list(_BACKLOG.columns.keys()), select(*values).select_from(grown))
        filled.append(rows.cte("backlog_"))
    return select(grown.c.size).add_cte(*filled)


_APPEND = _statement(backlog=False)
_APPEND_BACKLOG = _statement(backlog=True)
_NODE_COLUMNS = [c.name for c in cast(Table, AuditNode.__table__).columns]
_BACKLOG_COLUMNS = [c.name for c in _BACKLOG.columns]


def parameters(staged: Sequence[Staged], first: int, edge: Frontier) -> dict[str, Any]:
    """The statement's parameters for `staged` at positions first, first + 1, ...; `edge` (the
    tree's right edge at `first`) is advanced past them."""
    rows = rows_at(staged, first, edge, persons=False)
    runs: list[dict[str, Any]] = []
    persons: list[bytes] = []
    backlog: list[dict[str, Any]] = []
    count = 0
    for offset, item in enumerate(staged):
        position, at_us = first + offset, item.event.at_us
        if deferred(item):
            backlog.append(backlog_row(item, position))
            continue
        for entities, raw in item.persons:
            n = len(raw) // PERSON_BYTES
            runs.append({"position": position, "at_us": at_us, "entities": entities, "first": count, "count": n})
            persons.append(raw)
            count += n
    found: dict[str, Any] = {
        "expected": first,
        "count": len(staged),
        "events": orjson.dumps(rows.events).decode(),
        "runs": orjson.dumps(runs).decode(),
        "persons": b"".join(persons),
    }
    for name in _NODE_COLUMNS:
        found[f"node_{name}"] = [row[name] for row in rows.nodes]
    if backlog:
        for name in _BACKLOG_COLUMNS:
            found[f"backlog_{name}"] = [row[name] for row in backlog]
    return found


class PostgresFlusher:
    """One connection, in autocommit, that writes the writer's flushes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._used_at = 0.0
        # Moves the persons a flush kept in the backlog into the index once its requests are
        # answered; at the first flush, whatever an earlier hub left there.
        self.mover = Mover(engine)
        self._caught_up = False

    @classmethod
    def of(cls, engine: AsyncEngine) -> PostgresFlusher | None:
        if engine.dialect.name != "postgresql" or engine.dialect.driver != "asyncpg":
            return None
        return cls(engine)

    async def write(self, staged: Sequence[Staged], edge: Frontier | None) -> tuple[int, Frontier]:
        """Append `staged` in one transaction: the first one's position and the new right edge."""
        connection = await self._open()
        try:
            for _ in range(TRIES):
                if edge is None:
                    size = (await connection.execute(_SIZE)).scalar()
                    if size is None:
                        raise TrailUnavailable("the trail's log row is missing (run `hub migrate`)")
                    edge = await frontier_at(connection, size)
                first, after = edge.size, edge.copy()
                values = parameters(staged, first, after)
                deferring = "backlog_position" in values
                statement = _APPEND_BACKLOG if deferring else _APPEND
                grown = await self._append(connection, statement, values)
                if grown is not None:
                    if deferring or not self._caught_up:
                        self._caught_up = True
                        # After the waiters are answered: the task starts at the loop's next turn.
                        self.mover.kick()
                    return first, after
                edge = None  # another process wrote since: read the edge again
            # Taking turns on the log row's lock: slower, and always through.
            async with self._engine.begin() as locked:
                return await append_in(locked, staged)
        except BaseException:
            # A connection that failed may be broken (the server restarted): the next flush
            # opens another.
            await self._drop()
            raise

    async def _append(self, connection: AsyncConnection, statement: Select[tuple[int]], values: dict[str, Any]) -> Any:
        """The flush's one statement, run by asyncpg itself on the connection's driver: its SQL
        is SQLAlchemy's compilation (once), its values go to the driver as they are. Through
        SQLAlchemy's execution (greenlet, result, type processors: each node's hash and key, one
        by one) it cost the event loop about as much as the driver's own work. Autocommit: the
        statement is its own transaction."""
        if connection.in_transaction():
            await connection.commit()  # what a read of the log's edge began
        sql, names, defaults = compiled_for(self._engine.dialect, statement, ())
        arguments = [values[name] if name in values else defaults[name] for name in names]
        engine = self._engine.sync_engine
        if engine.dispatch.before_cursor_execute:  # statement observers (tests) see it too
            engine.dispatch.before_cursor_execute(None, None, sql, arguments, None, False)
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        return await driver.fetchval(sql, *arguments)

    async def close(self) -> None:
        await self.mover.close()
        await self._drop()

    async def _open(self) -> AsyncConnection:
        now = time.monotonic()
        if self._connection is not None and now - self._used_at > IDLE_S:
            # Idle for a while: the server may have restarted since. A ping costs one round trip
            # here rather than a refused group (the pool pings at every checkout).
            try:
                await self._connection.execute(_PING)
                await self._connection.commit()
            except Exception:
                await self._drop()
        if self._connection is None:
            connection = await self._engine.connect()
            self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        self._used_at = now
        return self._connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:  # already broken: nothing more to give back
                await connection.invalidate()
