"""Recorded links: the hub database's append-only record of links the departments' data lacks.

A link is recorded once per idempotency key and caller, and superseded (never deleted) by a
later retraction. Rows form a hash chain (each holds the hash of the one before), and the
request that appends one writes the row's hash into its audit event (hub/access/record.py),
so `verify` finds a row changed, removed or reordered. The checks of who may record what are
the caller's (hub/lineage/recording.py); this module only stores and reads.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.errors import BadUserInput, Internal
from hub.lineage.models import LineageLink

GENESIS = "0" * 64
CHUNK = 400
# Attempts to append when another writer extended the chain at the same moment.
ATTEMPTS = 8


@dataclass(frozen=True)
class Link:
    id: int
    kind: str
    source: tuple[str, str]  # (entity id, stored key)
    target: tuple[str, str]
    recorded_by: str
    department: str
    at_us: int
    reason: str
    row_hash: str
    retracts: int | None = None


@dataclass(frozen=True)
class NewRow:
    """What a recording or retraction writes, before the chain places it."""

    kind: str
    source: tuple[str, str]
    target: tuple[str, str]
    reason: str
    recorded_by: str
    department: str
    idempotency_key: str
    retracts: int | None = None


def row_hash(columns: dict[str, Any]) -> str:
    """SHA-256 (hex) of a row's canonical JSON: every column but its id and own hash."""
    body = {k: v for k, v in columns.items() if k not in ("id", "row_hash")}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def columns_of(row: LineageLink) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in LineageLink.__table__.columns}


def _link(row: LineageLink) -> Link:
    return Link(
        row.id,
        row.kind,
        (row.from_entity, row.from_key),
        (row.to_entity, row.to_key),
        row.recorded_by,
        row.department,
        row.at_us,
        row.reason,
        row.row_hash,
        row.retracts,
    )


class LinkStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def append(self, new: NewRow) -> tuple[Link, bool]:
        """The row written (or, for a retried idempotency key, the row written before) and
        whether this call wrote it."""
        for _ in range(ATTEMPTS):
            async with self._sessions() as session:
                earlier = await self._by_idempotency(session, new)
                if earlier is not None:
                    return earlier, False
                last = await session.scalar(select(LineageLink.row_hash).order_by(LineageLink.id.desc()).limit(1))
                row = LineageLink(
                    kind=new.kind,
                    from_entity=new.source[0],
                    from_key=new.source[1],
                    to_entity=new.target[0],
                    to_key=new.target[1],
                    reason=new.reason,
                    recorded_by=new.recorded_by,
                    department=new.department,
                    at_us=time.time_ns() // 1000,
                    idempotency_key=new.idempotency_key,
                    retracts=new.retracts,
                    prev_hash=last or GENESIS,
                )
                row.row_hash = row_hash(columns_of(row))
                session.add(row)
                try:
                    await session.commit()
                except IntegrityError:
                    # Another writer took the same place in the chain, or the same key: again.
                    await session.rollback()
                    continue
                return _link(row), True
        raise Internal("the link could not be recorded; try again")

    async def _by_idempotency(self, session: AsyncSession, new: NewRow) -> Link | None:
        row = await session.scalar(
            select(LineageLink).where(
                LineageLink.recorded_by == new.recorded_by, LineageLink.idempotency_key == new.idempotency_key
            )
        )
        if row is None:
            return None
        same = (row.kind, (row.from_entity, row.from_key), (row.to_entity, row.to_key), row.retracts) == (
            new.kind,
            new.source,
            new.target,
            new.retracts,
        )
        if not same:
            raise BadUserInput("this idempotency key was used for another link; use a new key")
        return _link(row)

    async def get(self, link_id: int) -> tuple[Link, bool] | None:
        """A recorded link and whether it is retracted; None for none (or a retraction's id)."""
        async with self._sessions() as session:
            row = await session.get(LineageLink, link_id)
            if row is None or row.retracts is not None:
                return None
            retracted = await session.scalar(select(LineageLink.id).where(LineageLink.retracts == link_id).limit(1))
            return _link(row), retracted is not None

    async def touching(self, keys: Sequence[tuple[str, str]]) -> list[Link]:
        """The links in force from or to any of `keys` ((entity id, stored key)): one
        statement per CHUNK keys."""
        found: dict[int, Link] = {}
        retracted = select(LineageLink.retracts).where(LineageLink.retracts.is_not(None))
        async with self._sessions() as session:
            for start in range(0, len(keys), CHUNK):
                chunk = list(keys[start : start + CHUNK])
                statement = select(LineageLink).where(
                    and_(
                        LineageLink.retracts.is_(None),
                        LineageLink.id.not_in(retracted),
                        or_(
                            tuple_(LineageLink.from_entity, LineageLink.from_key).in_(chunk),
                            tuple_(LineageLink.to_entity, LineageLink.to_key).in_(chunk),
                        ),
                    )
                )
                for row in await session.scalars(statement):
                    found[row.id] = _link(row)
        return [found[i] for i in sorted(found)]
