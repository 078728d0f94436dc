"""Counting supplied values in the hub database: one transaction per request that brings values
the instance has not counted yet, serialised per caller and window by a lock on the window's
row, so concurrent requests on any number of instances never pass a quota together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Insert

from hub.quota.models import LookupSeen, LookupWindow

CHUNK = 1000


@dataclass(frozen=True)
class Counted:
    admitted: bool
    # The window's count after this request (or, refused, before it) and the values new to it.
    used: int
    new: int


async def count(session: AsyncSession, principal: str, hour: int, digests: Sequence[bytes], limit: int) -> Counted:
    """Add `digests` not yet counted in the window to it, unless that would pass `limit`; then
    nothing is added. The caller commits (or rolls back)."""
    # Creating the row (or finding it) takes the write lock that serialises the caller's
    # requests: PostgreSQL's row lock below, SQLite's database write lock at this statement.
    await session.execute(_insert_missing(session, principal, hour))
    window = (LookupWindow.principal == principal) & (LookupWindow.hour == hour)
    used = (await session.execute(select(LookupWindow.count).where(window).with_for_update())).scalar_one()
    wanted = list(dict.fromkeys(digests))
    if len(wanted) > limit:
        # More than the whole quota: refused whatever was counted before, without asking.
        return Counted(False, used, len(wanted))
    known: set[bytes] = set()
    # In chunks: drivers bound the parameters of one statement (SQLite 32,766, asyncpg 32,767).
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        seen = select(LookupSeen.digest).where(
            LookupSeen.principal == principal, LookupSeen.hour == hour, LookupSeen.digest.in_(chunk)
        )
        known.update(await session.scalars(seen))
    new = [d for d in wanted if d not in known]
    if used + len(new) > limit:
        return Counted(False, used, len(new))
    if new:
        await session.execute(insert(LookupSeen), [{"principal": principal, "hour": hour, "digest": d} for d in new])
        await session.execute(update(LookupWindow).where(window).values(count=used + len(new)))
    return Counted(True, used + len(new), len(new))


async def purge(session: AsyncSession, before: int) -> None:
    """Forget windows that ended: their counts no longer limit anyone."""
    await session.execute(delete(LookupSeen).where(LookupSeen.hour < before))
    await session.execute(delete(LookupWindow).where(LookupWindow.hour < before))


def _insert_missing(session: AsyncSession, principal: str, hour: int) -> Insert:
    row = {"principal": principal, "hour": hour, "count": 0}
    # The hub database is SQLite or PostgreSQL (DESIGN.md); both say "insert unless present".
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(LookupWindow).values(row).on_conflict_do_nothing()
    return sqlite.insert(LookupWindow).values(row).on_conflict_do_nothing()
