"""Authenticated principals remembered for a moment, so a busy app's requests do not each
cost a hub-database read.

A revoked token therefore keeps working on an instance for at most `ttl_s`
(HUB_TOKEN_CACHE_SECONDS, 1 s by default) after `hub apps revoke` or a rotation; an expired
token never does, since each entry also carries the token's own expiry. Entries are keyed by
the token's SHA-256, never by the token itself, and unknown tokens are not remembered, so a
new token works at once.

A token in use is read again in the background once its entry is half its time old, and the
entry it makes counts from when that read began: the bound on a revoked token holds, and a
busy app's requests do not wait for the hub database once a second. Under a heavy request a
read of the hub database takes many turns of the event loop (a lookup by key waited up to
0.3 s for one, bench/fairness.py); ahead of time, no request waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.auth.principal import Principal
from hub.auth.registry import authenticate_until, digest

MAX_ENTRIES = 10_000
# The share of its time after which an entry in use is read again in the background.
REFRESH_AFTER = 0.5

log = logging.getLogger("hub.auth")


class PrincipalCache:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ttl_s: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessions = sessions
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self.now = now
        # digest -> (principal, the token's expiry, when it was read)
        self._entries: OrderedDict[str, tuple[Principal, datetime, float]] = OrderedDict()
        self._reading: dict[str, asyncio.Future[tuple[Principal, datetime] | None]] = {}
        # Raised by `forget`: a read begun before it must not put back what it read.
        self._generation = 0

    def forget(self) -> None:
        """Drop every entry: the hub database announced a change of apps or tokens (hub/instances),
        so the next request of each app reads its token again."""
        self._generation += 1
        self._entries.clear()
        self._reading.clear()

    async def principal(self, token: str) -> Principal | None:
        """The principal `token` stands for, or None if unknown, expired or revoked."""
        if self.ttl_s <= 0:
            found = await self._read(token)
            return None if found is None else found[0]
        key = digest(token)
        entry = self._entries.get(key)
        if entry is not None:
            principal, expires_at, read_at = entry
            age = self.clock() - read_at
            if age < self.ttl_s and self.now() < expires_at:
                if age >= self.ttl_s * REFRESH_AFTER and key not in self._reading:
                    self._refresh(key, token)
                return principal
            del self._entries[key]
        # Requests that miss together share one read: when an entry ages out under load, every
        # request of that app misses at once, and each reading the hub database on its own
        # made a queue there (bench W6: p99 from ~50 to ~120 ms).
        reading = self._reading.get(key)
        if reading is None:
            reading = self._reading[key] = asyncio.ensure_future(self._read(token))
            reading.add_done_callback(lambda done: self._done(key, done))
        generation = self._generation
        found = await asyncio.shield(reading)
        if found is None:
            return None
        if generation != self._generation:
            # Forgotten while it was read: the answer may predate the change; read again.
            return await self.principal(token)
        self._entries[key] = (found[0], found[1], self.clock())
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return found[0]

    def _done(self, key: str, done: asyncio.Future[tuple[Principal, datetime] | None]) -> None:
        if self._reading.get(key) is done:
            del self._reading[key]

    def _refresh(self, key: str, token: str) -> None:
        """Reads `token` again without waiting: the entry it makes counts from now."""
        began = self.clock()
        generation = self._generation
        reading = self._reading[key] = asyncio.ensure_future(self._read(token))

        def refreshed(done: asyncio.Future[tuple[Principal, datetime] | None]) -> None:
            self._done(key, done)
            if done.cancelled():
                return
            error = done.exception()
            if error is not None:
                # The entry ages out as it would have; the request that then reads the token
                # meets the failure itself.
                log.warning("reading a cached token again failed: %s", type(error).__name__)
                return
            if generation != self._generation:
                return  # forgotten while it was read: the answer may predate the change
            found = done.result()
            if found is None:
                self._entries.pop(key, None)  # revoked or expired since: refused from now on
            else:
                self._entries[key] = (found[0], found[1], began)

        reading.add_done_callback(refreshed)

    async def _read(self, token: str) -> tuple[Principal, datetime] | None:
        async with self.sessions() as session:
            return await authenticate_until(session, token)
