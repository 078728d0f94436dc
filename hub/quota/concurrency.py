"""How many requests each caller may have in flight at once (per role), on this instance.

One event loop serves every request, so a caller with twenty heavy requests running takes
twenty shares of it (and of the departments' connections) however the work is sliced. Past its
limit, a caller's request waits up to `wait_seconds` for one of its own to finish, first come
first served, and is then refused (429, LIMIT_EXCEEDED, `scope: "concurrency"`). The short wait
absorbs a client that sends a few requests at once; a caller that keeps more in flight is told
to slow down rather than queued without end.

Counted from the lookup quota's check to the answer's encoding: what comes before (reading and
validating the request) is bounded by the body and demand limits, and a request waiting here
holds no connection and no rows. Counts live in this instance's memory: behind a load balancer
each instance allows the limit (unlike the rate limits, a count of requests running now is
only meaningful where they run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from hub.auth.principal import Principal

log = logging.getLogger("hub.alert")


@dataclass(frozen=True)
class ConcurrencyRefusal:
    """A request refused because its caller had `limit` requests in flight for `waited` s."""

    limit: int
    waited: float


class _Caller:
    __slots__ = ("slots", "users")

    def __init__(self, limit: int) -> None:
        # asyncio's semaphore wakes its waiters first come, first served.
        self.slots = asyncio.Semaphore(limit)
        # Requests holding or waiting for a slot: the entry is dropped when none do.
        self.users = 0


class InFlight:
    """The requests each caller has in flight, against its limit."""

    def __init__(self, per_role: Mapping[str, int], default: int, wait_seconds: float) -> None:
        self.per_role = dict(per_role)
        self.default = default
        self.wait_seconds = wait_seconds
        self._callers: dict[str, _Caller] = {}

    def limit_of(self, principal: Principal) -> int:
        """The caller's limit: the largest of its roles'."""
        return max((self.per_role.get(role, self.default) for role in principal.roles), default=self.default)

    @contextlib.asynccontextmanager
    async def slot(self, principal: Principal) -> AsyncIterator[ConcurrencyRefusal | None]:
        """Holds one of the caller's slots while the block runs (None), or yields the refusal
        where none came free in time."""
        limit = self.limit_of(principal)
        caller = self._callers.get(principal.subject)
        if caller is None:
            caller = self._callers[principal.subject] = _Caller(limit)
        caller.users += 1
        try:
            if not await self._acquire(caller.slots):
                log.warning("concurrency limit: refused a request of %s (%s in flight)", principal.subject, limit)
                yield ConcurrencyRefusal(limit, self.wait_seconds)
                return
            try:
                yield None
            finally:
                caller.slots.release()
        finally:
            caller.users -= 1
            if not caller.users:
                del self._callers[principal.subject]

    async def _acquire(self, slots: asyncio.Semaphore) -> bool:
        if not slots.locked():
            await slots.acquire()  # free and nobody waiting: at once
            return True
        if self.wait_seconds <= 0:
            return False
        try:
            async with asyncio.timeout(self.wait_seconds):
                await slots.acquire()
        except TimeoutError:
            return False
        return True
