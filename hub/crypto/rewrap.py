"""Rewrapping every key under a new master key, resumable.

Each wrapped key names its master key, and each is moved with a compare-and-set on that name, so
a run can stop anywhere (killed, failed, lost its database) and the next run, given the old and
the new master key, moves only what is left. Until it finishes, loading the keyring needs both.
The data itself is untouched: only the wrapping changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.crypto.keyring import unwrap_row
from hub.crypto.master import MasterKey
from hub.crypto.models import WrappedKey


@dataclass(frozen=True)
class RewrapProgress:
    rewrapped: int  # keys moved to the new master key by this batch
    remaining: int  # keys still under another master key after it


async def pending(session: AsyncSession, new: MasterKey) -> int:
    """How many keys are not yet wrapped by `new`."""
    count: int | None = await session.scalar(
        select(func.count()).select_from(WrappedKey).where(WrappedKey.master_key_id != new.id)
    )
    return count or 0


async def rewrap_batch(
    session: AsyncSession, masters: Sequence[MasterKey], new: MasterKey, limit: int = 100
) -> RewrapProgress:
    """Move up to `limit` keys to `new`. `masters` are the master keys they may be under now (the
    old one; more if an earlier rewrap was never finished). The caller commits."""
    by_id = {m.id: m for m in (*masters, new)}
    rows = (
        await session.scalars(
            select(WrappedKey).where(WrappedKey.master_key_id != new.id).order_by(WrappedKey.id).limit(limit)
        )
    ).all()
    moved = 0
    for row in rows:
        key = unwrap_row(row, by_id)
        result = cast(
            CursorResult[Any],
            await session.execute(
                update(WrappedKey)
                # Compare-and-set: a concurrent run that moved this key already wins.
                .where(WrappedKey.id == row.id, WrappedKey.master_key_id == row.master_key_id)
                .values(wrapped=new.wrap(key, row.purpose, row.scope, row.version), master_key_id=new.id)
                .execution_options(synchronize_session=False)
            ),
        )
        moved += result.rowcount
    session.expunge_all()
    return RewrapProgress(moved, await pending(session, new))


async def rewrap(
    sessions: async_sessionmaker[AsyncSession],
    masters: Sequence[MasterKey],
    new: MasterKey,
    batch_size: int = 100,
    progress: Callable[[RewrapProgress], None] | None = None,
) -> int:
    """Rewrap every key under `new`, one committed transaction per batch; returns how many keys
    were moved. Safe to run again after an interruption, and a no-op once done."""
    total = 0
    while True:
        async with sessions() as session, session.begin():
            step = await rewrap_batch(session, masters, new, batch_size)
        total += step.rewrapped
        if progress is not None:
            progress(step)
        if step.remaining == 0:
            return total
