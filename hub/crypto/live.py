"""The keyring a running hub holds, reloaded when the hub database's keys change.

A rotation adds a data-key version while instances keep serving; a re-encryption then writes
values under it. An instance that meets a version it does not hold reloads (at most once per
interval) instead of reporting good values as unreadable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.crypto.errors import KeyringError
from hub.crypto.keyring import Keyring, load_keyring, provision
from hub.crypto.master import MasterKey
from hub.crypto.models import WrappedKey

# A burst of values under an unknown version costs one reload, not one per request.
MIN_RELOAD_SECONDS = 1.0


class LiveKeyring:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], masters: Sequence[MasterKey]) -> None:
        if not masters:
            raise KeyringError("no master key given")
        self._sessions = sessions
        self._masters = list(masters)
        self._keyring: Keyring | None = None
        self._seen: tuple[int, int] | None = None
        self._checked = 0.0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"LiveKeyring({self._keyring!r})"

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            raise KeyringError("the keyring is not loaded yet")
        return self._keyring

    async def start(self, departments: Sequence[str], domains: Sequence[str]) -> list[str]:
        """Make the keys these departments and index domains lack (under the first master key),
        then load. Returns the names of the keys made."""
        async with self._sessions() as session, session.begin():
            made = await provision(session, self._masters[0], departments, domains)
        await self._load()
        return made

    async def refresh(self, force: bool = False, since: Keyring | None = None) -> bool:
        """Reload if keys were added or rewrapped since the last load; True if the keyring is
        newer than before (or than `since`, the one a caller released with).
        `force`: the hub database announced a change of keys (hub/instances), so the interval
        that spaces out reloads prompted by unknown versions does not apply, nor is it restarted:
        a value under a version rotated just after an announced reload still prompts one.
        `since`: requests that met an unknown version together all release again after the one
        reload, instead of the later ones finding the interval not yet over."""
        async with self._lock:
            if since is not None and self._keyring is not since:
                return True
            now = time.monotonic()
            if not force:
                if now - self._checked < MIN_RELOAD_SECONDS:
                    return False
                self._checked = now
            if await self._state() == self._seen:
                return False
            await self._load_locked()
            return True

    async def _load(self) -> None:
        async with self._lock:
            await self._load_locked()

    async def _load_locked(self) -> None:
        async with self._sessions() as session:
            state = await _state_of(session)
            keyring = await load_keyring(session, self._masters)
        # The reload interval limits checks that follow a check, not the first one after a load:
        # a rotation may have landed the moment after this load.
        self._keyring, self._seen = keyring, state

    async def _state(self) -> tuple[int, int]:
        async with self._sessions() as session:
            return await _state_of(session)


async def _state_of(session: AsyncSession) -> tuple[int, int]:
    # Keys are only ever added (rotation) or rewritten under a new master (rewrap, which keeps
    # them the same); the count and the highest id change with every addition.
    row = (await session.execute(select(func.count(), func.max(WrappedKey.id)))).one()
    return int(row[0] or 0), int(row[1] or 0)
