"""Rotation: one new data-key version for each of a set of departments, in one transaction.

The caller owns the transaction, and commits only after every department has its new version, so
a rotation that stops anywhere (killed, failed, lost its database) has added nothing or all of it.
Older versions stay for good: every stored value names its version. Values move to the new version
when they are re-encrypted; until then they still decrypt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hub.crypto.errors import KeyringError
from hub.crypto.keyring import rotate_data_key
from hub.crypto.master import MasterKey
from hub.crypto.models import DATA, WrappedKey


@dataclass(frozen=True)
class Rotation:
    department: str
    old: int  # the version new values use now
    new: int  # the version they use after the rotation


async def data_versions(session: AsyncSession) -> dict[str, int]:
    """The current data-key version of every department that has one."""
    rows = await session.execute(
        select(WrappedKey.scope, func.max(WrappedKey.version))
        .where(WrappedKey.purpose == DATA)
        .group_by(WrappedKey.scope)
    )
    return {scope: int(version) for scope, version in rows}


async def plan_rotation(session: AsyncSession, master: MasterKey, departments: Sequence[str] = ()) -> list[Rotation]:
    """What a rotation of `departments` (every department with a data key, if none named) would
    do. Refuses a department without a data key (a typo would otherwise make a key for nobody) and
    a master key that is not the one every key is under."""
    current = await data_versions(session)
    named = sorted(set(departments)) if departments else sorted(current)
    unknown = [d for d in named if d not in current]
    if unknown:
        raise KeyringError(
            f"no data key for the department(s) {', '.join(unknown)}; a department's first data key is made "
            "when the hub starts with its manifest"
        )
    others = await session.scalar(
        select(WrappedKey.master_key_id).where(WrappedKey.master_key_id != master.id).limit(1)
    )
    if others is not None:
        raise KeyringError(
            f"keys in the hub database are wrapped by master key {others}, not by the configured {master.id}: "
            "finish the rewrap, or configure the master key those keys are under"
        )
    return [Rotation(d, current[d], current[d] + 1) for d in named]


async def rotate(
    session: AsyncSession,
    master: MasterKey,
    plan: Sequence[Rotation],
    progress: Callable[[Rotation], None] | None = None,
) -> list[Rotation]:
    """Add the planned versions. The caller commits; a version that another rotation took in the
    meantime fails the whole rotation, so it can be run again from a clean state."""
    for step in plan:
        try:
            version = await rotate_data_key(session, master, step.department)
        except IntegrityError:
            version = None
        if version != step.new:
            raise KeyringError(
                f"another rotation of {step.department} ran at the same time; nothing was rotated, run it again"
            )
        if progress is not None:
            progress(step)
    return list(plan)
