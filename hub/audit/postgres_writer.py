"""The trail's flush on a PostgreSQL hub database: one statement, one round trip.

Through a pooled connection a flush was nine round trips (the pool's ping, BEGIN, the log's
size, three inserts, COMMIT, ...), and on loopback each costs the hub's process kernel time as
well as the server's: about 5 ms of the hub's CPU per flush on this machine, under load
(bench/trail_writer.py). Here the writer holds one connection in autocommit and writes a flush
as a single statement, so it is one transaction:

    WITH grown AS (UPDATE hub_audit_log SET size = size + :count
                   WHERE id = 1 AND size = :expected RETURNING size),
         event_rows AS (INSERT INTO hub_audit_event SELECT unnest(:positions), ... FROM grown),
         person_rows AS (...), node_rows AS (...)
    SELECT size FROM grown

The rows are made for the log's size as this writer last left it (`expected`); the UPDATE takes
the log row's lock, as every writer's does, so writers of all processes still take turns. When
another process wrote meanwhile, `grown` is empty, nothing is inserted, and the flush reads the
tree's right edge again and tries once more; after that it takes the lock first, in an explicit
transaction (store.append_in), which always succeeds. The statement is built by SQLAlchemy from
the models, one array parameter per column, so its text (and its prepared plan) does not depend on
how many events a flush carries. A connection that failed is dropped (the next flush opens
another); one idle for more than IDLE_S is pinged first, as the pool would, so a server restarted
in a quiet spell does not cost the next group its answers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Column, Select, Table, bindparam, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.audit.merkle import Frontier
from hub.audit.models import AuditEvent, AuditLog, AuditNode, AuditPerson
from hub.audit.rows import Staged, rows_at
from hub.audit.store import TrailUnavailable, append_in, frontier_at

_LOG = cast(Table, AuditLog.__table__)
_SIZE = select(_LOG.c.size).where(_LOG.c.id == 1)
# Optimistic tries before the flush takes the log's lock first.
TRIES = 2
# A connection unused this long is pinged before a flush.
IDLE_S = 10.0
_PING = select(literal(1))


def _statement() -> Select[tuple[int]]:
    grown = (
        update(_LOG)
        .where(_LOG.c.id == 1, _LOG.c.size == bindparam("expected"))
        .values(size=_LOG.c.size + bindparam("count"))
        .returning(_LOG.c.size)
        .cte("grown")
    )

    def filled(table: Table, prefix: str) -> Any:
        columns: list[Column[Any]] = list(table.columns)
        values = [func.unnest(bindparam(f"{prefix}{c.name}", type_=ARRAY(c.type))) for c in columns]
        return insert(table).from_select([c.name for c in columns], select(*values).select_from(grown)).cte(prefix)

    tables = ((AuditEvent, "event_"), (AuditPerson, "person_"), (AuditNode, "node_"))
    return select(grown.c.size).add_cte(*(filled(cast(Table, model.__table__), prefix) for model, prefix in tables))


_APPEND = _statement()
_COLUMNS = {
    prefix: [c.name for c in cast(Table, model.__table__).columns]
    for model, prefix in ((AuditEvent, "event_"), (AuditPerson, "person_"), (AuditNode, "node_"))
}


class PostgresFlusher:
    """One connection, in autocommit, that writes the writer's flushes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._used_at = 0.0

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
                rows = rows_at(staged, first, after)
                parameters: dict[str, Any] = {"expected": first, "count": len(staged)}
                for prefix, made in (("event_", rows.events), ("person_", rows.persons), ("node_", rows.nodes)):
                    for name in _COLUMNS[prefix]:
                        parameters[prefix + name] = [row.get(name) for row in made]
                grown = (await connection.execute(_APPEND, parameters)).scalar()
                await connection.commit()
                if grown is not None:
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

    async def close(self) -> None:
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
