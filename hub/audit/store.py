"""The trail's writer: one order of positions, and group commit.

Every append goes through one transaction that first adds to the size in `hub_audit_log`'s
single row (`UPDATE ... RETURNING`). That row lock is held to the commit, so writers of every
process on one database take turns: positions are linear, without gaps or duplicates, and each
writer reads the Merkle tree's right edge (O(log n) stored subtrees) as the previous one left it.
On SQLite the same UPDATE takes the database's write lock.

Group commit: requests hand their event to `append` and wait; one flush at a time writes all
events waiting (up to `batch_max`), so concurrent requests share one transaction and one commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from hub.audit.event import Event, person_lines
from hub.audit.merkle import Frontier, Node, leaf_hash, range_nodes
from hub.audit.models import AuditAnonymous, AuditEvent, AuditLog, AuditNode, AuditPerson, node_key
from hub.audit.sqlite_direct import DirectSqlite

log = logging.getLogger("hub.audit")


class TrailUnavailable(Exception):
    """The event could not be written; the request's data must not leave."""


async def read_nodes(session: AsyncSession | AsyncConnection, wanted: Iterable[Node]) -> dict[Node, bytes]:
    """The stored hashes of these complete subtrees (one statement)."""
    keys = {node_key(level, idx): (level, idx) for level, idx in wanted}
    if not keys:
        return {}
    rows = await session.execute(select(AuditNode.node, AuditNode.hash).where(AuditNode.node.in_(keys)))
    return {keys[key]: bytes(digest) for key, digest in rows}


async def frontier_at(session: AsyncSession | AsyncConnection, size: int) -> Frontier:
    """The tree's right edge at `size`, from its stored subtrees."""
    if size == 0:
        return Frontier()
    wanted = range_nodes(0, size)
    found = await read_nodes(session, wanted)
    missing = [node for node in wanted if node not in found]
    if missing:
        raise TrailUnavailable(f"the trail's subtree {missing[0]} is missing")
    return Frontier(size, [found[node] for node in wanted])


async def persons_between(
    session: AsyncSession | AsyncConnection, start: int, stop: int
) -> dict[int, list[tuple[str, str]]]:
    """The persons of the events at positions [start, stop), by position: (hex blind index,
    entities) each (entities "" in events of format 1)."""
    persons: dict[int, list[tuple[str, str]]] = {}
    # All rows at once: row by row, each fetch is a hop to the driver.
    rows = await session.execute(
        select(AuditPerson.position, AuditPerson.person, AuditPerson.entities).where(
            AuditPerson.position >= start, AuditPerson.position < stop
        )
    )
    for position, person, entities in rows.all():
        persons.setdefault(position, []).append((person, entities))
    return persons


def digest_lines(format_: int, persons: list[tuple[str, str]]) -> list[str]:
    """What an event's persons digest covers in its format (docs/audit.md)."""
    return [person for person, _ in persons] if format_ == 1 else person_lines(persons)


# The statements of a flush, on the tables (Core: the ORM's bulk path costs more per flush).
_LOG = cast(Table, AuditLog.__table__)
_GROW = update(_LOG).where(_LOG.c.id == 1).values(size=_LOG.c.size + bindparam("count")).returning(_LOG.c.size)
_EVENTS = insert(cast(Table, AuditEvent.__table__))
_PERSONS = insert(cast(Table, AuditPerson.__table__))
_NODES = insert(cast(Table, AuditNode.__table__))


class TrailWriter:
    def __init__(self, engine: AsyncEngine, batch_max: int = 500) -> None:
        self.engine = engine
        self._batch_max = batch_max
        self._pending: list[tuple[Event, asyncio.Future[int]]] = []
        self._flushing: asyncio.Task[None] | None = None
        # The tree's right edge as this writer's last flush left it: when no other process
        # wrote since, the next flush needs not read it back.
        self._edge: Frontier | None = None
        self.flushes = 0

    async def append(self, event: Event) -> int:
        """Write `event` (with whatever else is waiting) and return its position."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append((event, future))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        # Shielded: a request given up on still has its event written once it is in a batch.
        return await asyncio.shield(future)

    async def drain(self) -> None:
        """Wait for the flush in progress (at shutdown)."""
        if self._flushing is not None:
            await asyncio.shield(self._flushing)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._batch_max]
                del self._pending[: self._batch_max]
                try:
                    first = await self.write([event for event, _ in batch])
                except Exception as exc:
                    log.error("the access trail could not be written: %s", type(exc).__name__)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(TrailUnavailable("the access trail could not be written"))
                    continue
                for offset, (_, future) in enumerate(batch):
                    if not future.done():
                        future.set_result(first + offset)
        finally:
            self._flushing = None

    async def write(self, events: Sequence[Event]) -> int:
        """Append `events` in one transaction; the first one's position."""
        edge, self._edge = self._edge, None  # kept again only once this flush commits
        async with self.engine.begin() as connection:
            first, edge = await append_in(connection, events, edge)
        self._edge = edge
        self.flushes += 1
        return first


async def append_in(
    connection: AsyncConnection, events: Sequence[Event], edge: Frontier | None = None
) -> tuple[int, Frontier]:
    """Append `events` inside the caller's transaction (an admin action writes its event in the
    transaction that makes the change, so neither lands without the other): the first event's
    position and the tree's new right edge. `edge` is the right edge as last seen, if known; it
    is read back from the stored subtrees unless it is the log's size."""
    count = len(events)
    # On SQLite, each statement in one trip to aiosqlite's thread (hub/audit/sqlite_direct.py).
    direct = await DirectSqlite.of(connection)
    size: int | None
    if direct is not None:
        size = await direct.scalar(_GROW, {"count": count})
    else:
        size = (await connection.execute(_GROW, {"count": count})).scalar()
    if size is None:
        raise TrailUnavailable("the trail's log row is missing (run `hub migrate`)")
    first = size - count
    if edge is None or edge.size != first:
        edge = await frontier_at(connection, first)
    rows: list[dict[str, Any]] = []
    persons: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    for offset, event in enumerate(events):
        position = first + offset
        columns = event.columns()
        rows.append({"position": position, **columns})
        at_us = event.at_us
        persons.extend(
            {"position": position, "person": p, "at_us": at_us, "entities": e} for p, e in event.persons.items()
        )
        closed = edge.append(leaf_hash(event.leaf_of(position, columns)))
        nodes.extend({"node": node_key(level, idx), "hash": digest} for (level, idx), digest in closed)
    if direct is not None:
        await direct.many(_EVENTS, rows)
        await direct.many(_PERSONS, persons)
        await direct.many(_NODES, nodes)
    else:
        await connection.execute(_EVENTS, rows)
        if persons:
            await connection.execute(_PERSONS, persons)
        await connection.execute(_NODES, nodes)
    return first, edge


async def count_anonymous(engine: AsyncEngine, counts: dict[tuple[int, str], int]) -> None:
    """Add requests without a valid token, per (minute, source address)."""
    if not counts:
        return
    rows = [{"minute": minute, "address": address, "count": n} for (minute, address), n in counts.items()]
    async with engine.begin() as connection:
        await connection.execute(insert(cast(Table, AuditAnonymous.__table__)), rows)
