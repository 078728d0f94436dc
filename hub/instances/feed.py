"""How an instance learns of changes other instances made: PostgreSQL LISTEN/NOTIFY on a
dedicated connection, the change serial checked on that connection every interval (its
keep-alive), and the same check through the hub database's pool as the fallback when the
listener is down.

Every check reads the serial; when it differs from the one last applied, the instance applies
everything again (newest policy version, keyring, forgets cached tokens and trusted documents)
before it takes the serial as seen. A check that began at time T and found nothing left to apply
confirms that the instance holds every change committed before T. An instance whose last
confirmation is older than the bound (HUB_UNCONFIRMED_AFTER_SECONDS) is unconfirmed: the
planner withholds L3 and L4 fields (unconfirmed.py) and /readyz answers 503 until a check
succeeds again.

asyncpg's `add_listener` on a connection of its own, not a pooled one: a pooled connection is
handed to requests, and LISTEN lasts as long as the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.instances.models import CHANNEL, ChangeSerial

log = logging.getLogger("hub.instances")

SERIAL_SQL = "SELECT serial FROM hub_change WHERE id = 1"
# Shown in pg_stat_activity, so an operator (and the tests) can find the listener.
APPLICATION_NAME = "hub-listener"

Apply = Callable[[], Awaitable[object]]


class ChangeFeed:
    def __init__(
        self,
        url: URL,
        sessions: async_sessionmaker[AsyncSession],
        poll_s: float,
        bound_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._sessions = sessions
        self.poll_s = poll_s
        self.bound_s = bound_s
        self.clock = clock
        self._applies: list[Apply] = []
        self._seen: int | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.confirmed_at = clock()
        self.listening = False
        # For /metrics and the tests: notifications received, and times everything was applied.
        self.notifications = self.applied = 0

    def __repr__(self) -> str:
        return f"ChangeFeed(listening={self.listening}, seen={self._seen})"

    def on_change(self, apply: Apply) -> None:
        """Run `apply` whenever the serial moved (in the order given)."""
        self._applies.append(apply)

    def confirmed(self) -> bool:
        """Whether this instance holds every change committed more than the bound ago. Asked
        per request: a clock read."""
        return self.clock() - self.confirmed_at <= self.bound_s

    def report(self) -> dict[str, Any]:
        """For /readyz: the state, its age and whether the listener is up (no address, no error)."""
        age = max(0.0, self.clock() - self.confirmed_at)
        return {
            "state": "current" if age <= self.bound_s else "unconfirmed",
            "confirmed_seconds_ago": round(age, 3),
            "listening": self.listening,
        }

    async def prime(self) -> None:
        """Read the serial before the instance loads what it serves, so that a change committed
        while it loads is applied by the first check."""
        began = self.clock()
        self._seen = await self._read_pooled()
        self.confirmed_at = began

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        # Start-up may have taken longer than the bound since `prime`: one check first, so the
        # first requests are not decided as unconfirmed (a failure leaves that to the tasks).
        try:
            await self._check(self._read_pooled)
        except Exception as error:
            log.warning("the first change check failed: %s", type(error).__name__)
        tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._poll())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _check(self, read: Callable[[], Awaitable[int]]) -> None:
        began = self.clock()
        serial = await read()
        async with self._lock:
            if serial != self._seen:
                for apply in self._applies:
                    await apply()
                self._seen = serial
                self.applied += 1
            # A check that began before another's confirmation does not move it back.
            self.confirmed_at = max(self.confirmed_at, began)

    async def _read_pooled(self) -> int:
        async with asyncio.timeout(self.poll_s), self._sessions() as session:
            return int(await session.scalar(select(ChangeSerial.serial).where(ChangeSerial.id == 1)) or 0)

    async def _serial(self, connection: asyncpg.Connection) -> int:
        async with asyncio.timeout(self.poll_s):
            return int(await connection.fetchval(SERIAL_SQL) or 0)

    def _notified(self, *_: object) -> None:
        self.notifications += 1
        self._wake.set()

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                connection = await asyncpg.connect(
                    self._dsn, timeout=self.poll_s * 2, server_settings={"application_name": APPLICATION_NAME}
                )
            except Exception as error:
                failures += 1
                # The class only: a driver's message may carry the database's address.
                log.warning("the change listener cannot connect: %s", type(error).__name__)
                await asyncio.sleep(min(self.poll_s * failures, 5.0))
                continue
            try:
                await connection.add_listener(CHANNEL, self._notified)
                connection.add_termination_listener(self._notified)
                self.listening = True
                failures = 0
                while not connection.is_closed():
                    # Cleared before the check: a notification arriving during it wakes the next.
                    self._wake.clear()
                    await self._check(functools.partial(self._serial, connection))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("the change listener stopped: %s", type(error).__name__)
            finally:
                self.listening = False
                connection.terminate()
            await asyncio.sleep(min(self.poll_s, 1.0))

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            # The listener's check confirms as often as this would; this one stands in for it.
            if self.listening and self.clock() - self.confirmed_at < self.poll_s:
                continue
            try:
                await self._check(self._read_pooled)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("the fallback change check failed: %s", type(error).__name__)
