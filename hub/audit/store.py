"""The trail's store: one order of positions, the tree's right edge, and reads of stored rows.

Every append goes through one transaction that first adds to the size in `hub_audit_log`'s
single row (`UPDATE ... RETURNING`). That row lock is held to the commit, so writers of every
process on one database take turns: positions are linear, without gaps or duplicates, and each
writer reads the Merkle tree's right edge (O(log n) stored subtrees) as the previous one left it.
On SQLite the same UPDATE takes the database's write lock. The group commit of a hub's requests
is hub/audit/writer.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from hub.audit.backlog import backlog_between
from hub.audit.event import Event, person_lines
from hub.audit.merkle import Frontier, Node, range_nodes
from hub.audit.models import AuditAnonymous, AuditEvent, AuditLog, AuditNode, AuditPerson, node_key
from hub.audit.rows import Staged, rows_at, stage
from hub.audit.sqlite_direct import DirectSqlite


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
    entities) each (entities "" in events of format 1); those still in the backlog too
    (hub/audit/backlog.py), read first, so a row moved meanwhile is read twice, never missed."""
    persons = await backlog_between(session, start, stop)
    # All rows at once: row by row, each fetch is a hop to the driver.
    rows = await session.execute(
        select(AuditPerson.position, AuditPerson.person, AuditPerson.entities).where(
            AuditPerson.position >= start, AuditPerson.position < stop
        )
    )
    for position, person, entities in rows.all():
        # Stored as the raw 32 bytes; shown, archived and digested as hex.
        persons.setdefault(position, []).append((bytes(person).hex(), entities))
    # Read twice if moved between the two reads: once each.
    return {position: list(dict.fromkeys(found)) for position, found in persons.items()}


def digest_lines(format_: int, persons: list[tuple[str, str]]) -> list[str]:
    """What an event's persons digest covers in its format (docs/audit.md)."""
    return [person for person, _ in persons] if format_ == 1 else person_lines(persons)


# The statements of a flush, on the tables (Core: the ORM's bulk path costs more per flush).
_LOG = cast(Table, AuditLog.__table__)
GROW = update(_LOG).where(_LOG.c.id == 1).values(size=_LOG.c.size + bindparam("count")).returning(_LOG.c.size)
EVENTS = insert(cast(Table, AuditEvent.__table__))
PERSONS = insert(cast(Table, AuditPerson.__table__))
NODES = insert(cast(Table, AuditNode.__table__))


async def append_in(
    connection: AsyncConnection, events: Sequence[Event | Staged], edge: Frontier | None = None
) -> tuple[int, Frontier]:
    """Append `events` inside the caller's transaction (an admin action writes its event in the
    transaction that makes the change, so neither lands without the other): the first event's
    position and the tree's new right edge. `edge` is the right edge as last seen, if known; it
    is read back from the stored subtrees unless it is the log's size."""
    staged = [item if isinstance(item, Staged) else stage(item) for item in events]
    count = len(staged)
    # On SQLite, each statement in one trip to aiosqlite's thread (hub/audit/sqlite_direct.py).
    direct = await DirectSqlite.of(connection)
    size: int | None
    if direct is not None:
        size = await direct.scalar(GROW, {"count": count})
    else:
        size = (await connection.execute(GROW, {"count": count})).scalar()
    if size is None:
        raise TrailUnavailable("the trail's log row is missing (run `hub migrate`)")
    first = size - count
    if edge is None or edge.size != first:
        edge = await frontier_at(connection, first)
    rows = rows_at(staged, first, edge)
    if direct is not None:
        await direct.many(EVENTS, rows.events)
        await direct.many(PERSONS, rows.persons)
        await direct.many(NODES, rows.nodes)
    else:
        await connection.execute(EVENTS, rows.events)
        if rows.persons:
            await connection.execute(PERSONS, rows.persons)
        await connection.execute(NODES, rows.nodes)
    return first, edge


async def count_anonymous(engine: AsyncEngine, counts: dict[tuple[int, str], int]) -> None:
    """Add requests without a valid token, per (minute, source address)."""
    if not counts:
        return
    rows = [{"minute": minute, "address": address, "count": n} for (minute, address), n in counts.items()]
    async with engine.begin() as connection:
        await connection.execute(insert(cast(Table, AuditAnonymous.__table__)), rows)
