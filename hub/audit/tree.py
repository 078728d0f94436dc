"""Roots and proofs of the stored log, read from its complete subtrees (O(log n) rows each).

Sizes and positions are checked against the log's committed size; every read is one short
statement on the async engine, so nothing here blocks the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hub.audit.event import stored_leaf
from hub.audit.merkle import (
    EMPTY_ROOT,
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


async def log_size(session: AsyncSession) -> int:
    size: int | None = await session.scalar(select(AuditLog.size).where(AuditLog.id == 1))
    return size or 0


async def root_at(session: AsyncSession, size: int) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return (await _hashes(session, [(0, size)]))[0]


async def inclusion(session: AsyncSession, position: int, size: int) -> Inclusion:
    """The event at `position` with its audit path in the tree of `size`."""
    if not 0 <= position < size:
        raise ProofError(f"position {position} is not in a tree of {size} events")
    row = await session.get(AuditEvent, position)
    if row is None:
        raise ProofError(f"the event at position {position} is not in the table (archived?)")
    path = await _hashes(session, inclusion_spans(position, size))
    return Inclusion(position, size, stored_leaf(row), path)


async def consistency(session: AsyncSession, first: int, second: int) -> list[bytes]:
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from {first} to {second} events")
    return await _hashes(session, consistency_spans(first, second))


async def _hashes(session: AsyncSession, spans: list[Span]) -> list[bytes]:
    nodes = await read_nodes(session, proof_nodes(spans))
    if any(node not in nodes for span in spans for node in range_nodes(*span)):
        # Subtrees are stored as the log grows: one is missing only past the log's end.
        end = max(stop for _, stop in spans)
        raise ProofError(f"the log holds fewer than {end} events")
    return [range_hash(span, nodes) for span in spans]
