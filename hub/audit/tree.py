"""Roots and proofs of the stored log, read from its complete subtrees (O(log n) rows each).

Sizes and positions are checked against the log's committed size; every read is one short
statement on the async engine, so nothing here blocks the event loop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.audit.event import LEAF_COLUMNS, canonical, parsed
from hub.audit.merkle import (
    EMPTY_ROOT,
    Node,
    Span,
    consistency_spans,
    inclusion_spans,
    proof_nodes,
    range_hash,
    range_nodes,
)
from hub.audit.models import AuditEvent, AuditLog
from hub.audit.store import read_nodes


class ProofError(Exception):
    """The proof asked for cannot exist (a position or size outside the log); says why."""


@dataclass(frozen=True)
class Inclusion:
    position: int
    size: int
    leaf: bytes  # the event's canonical leaf
    path: list[bytes]


class NodeCache:
    """Stored subtree hashes already read, by (level, index): a complete subtree's hash never
    changes once written, so every proof of one database may share them (the upper subtrees,
    which most proofs need, stay; at most `limit`, the oldest read dropped first). One per
    hub database: keys of another database's tree are other hashes."""

    def __init__(self, limit: int = 65_536) -> None:
        self._limit = limit
        self._hashes: OrderedDict[Node, bytes] = OrderedDict()

    async def read(self, session: AsyncSession, wanted: Iterable[Node]) -> dict[Node, bytes]:
        hashes = self._hashes
        found = {node: hashes[node] for node in wanted if node in hashes}
        missing = [node for node in wanted if node not in found]
        if missing:
            read = await read_nodes(session, missing)
            found.update(read)
            hashes.update(read)
            while len(hashes) > self._limit:
                hashes.popitem(last=False)
        return found


# The columns of an inclusion proof's event, read as one Core row (no ORM object to build).
_EVENT = select(AuditEvent.position, *(getattr(AuditEvent, name) for name in LEAF_COLUMNS))


async def log_size(session: AsyncSession) -> int:
    size: int | None = await session.scalar(select(AuditLog.size).where(AuditLog.id == 1))
    return size or 0


async def root_at(session: AsyncSession, size: int, cache: NodeCache | None = None) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return (await _hashes(session, [(0, size)], cache))[0]


async def inclusion(session: AsyncSession, position: int, size: int, cache: NodeCache | None = None) -> Inclusion:
    """The event at `position` with its audit path in the tree of `size`: two statements, one
    when the cache holds every subtree the path needs."""
    if not 0 <= position < size:
        raise ProofError(f"position {position} is not in a tree of {size} events")
    row = (await session.execute(_EVENT.where(AuditEvent.position == position))).first()
    if row is None:
        raise ProofError(f"the event at position {position} is not in the table (archived?)")
    path = await _hashes(session, inclusion_spans(position, size), cache)
    leaf = canonical(position, parsed(dict(zip(LEAF_COLUMNS, row[1:], strict=True))))
    return Inclusion(position, size, leaf, path)


async def consistency(session: AsyncSession, first: int, second: int, cache: NodeCache | None = None) -> list[bytes]:
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from {first} to {second} events")
    return await _hashes(session, consistency_spans(first, second), cache)


async def _hashes(session: AsyncSession, spans: list[Span], cache: NodeCache | None = None) -> list[bytes]:
    wanted = proof_nodes(spans)
    nodes = await (read_nodes(session, wanted) if cache is None else cache.read(session, wanted))
    if any(node not in nodes for span in spans for node in range_nodes(*span)):
        # Subtrees are stored as the log grows: one is missing only past the log's end.
        end = max(stop for _, stop in spans)
        raise ProofError(f"the log holds fewer than {end} events")
    return [range_hash(span, nodes) for span in spans]
