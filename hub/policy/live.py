"""The live policy of one hub instance: the newest snapshot, swapped whole.

Requests take `current()` once per plan, so they decide on one snapshot; a change made here is
swapped in at once, and changes made by other instances (or `hub policy import`) arrive within
the poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.catalog import Catalog
from hub.policy.decisions import Clock, SnapshotPolicy, utc_now
from hub.policy.snapshot import Snapshot
from hub.policy.store import latest, latest_version
from hub.policy.terms import Terms

log = logging.getLogger("hub.policy")


class LivePolicy:
    def __init__(self, catalog: Catalog, terms: Terms, clock: Clock = utc_now) -> None:
        self.catalog = catalog
        self.terms = terms
        self.clock = clock
        self._current = SnapshotPolicy(Snapshot(), catalog, clock, terms)  # nothing allowed until loaded

    def current(self) -> SnapshotPolicy:
        return self._current

    def install(self, snapshot: Snapshot) -> None:
        if snapshot.version >= self._current.snapshot.version:
            self._current = SnapshotPolicy(snapshot, self.catalog, self.clock, self.terms)

    async def refresh(self, sessions: async_sessionmaker[AsyncSession]) -> bool:
        """Load the newest snapshot if the database holds a newer one; True if it did."""
        async with sessions() as session:
            if await latest_version(session) <= self._current.snapshot.version:
                return False
            snapshot = await latest(session)
        if snapshot is None:
            return False
        self.install(snapshot)
        log.info("policy version %s is live", snapshot.version)
        return True

    @contextlib.asynccontextmanager
    async def watching(self, sessions: async_sessionmaker[AsyncSession], every: float = 1.0) -> AsyncIterator[None]:
        async def poll() -> None:
            while True:
                await asyncio.sleep(every)
                try:
                    await self.refresh(sessions)
                except Exception:  # a failed poll keeps the current policy; the next one retries
                    log.warning("could not check for a newer policy version", exc_info=True)

        task = asyncio.create_task(poll())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
