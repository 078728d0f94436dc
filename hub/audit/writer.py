"""The trail's group commit: requests wait on one shared flush that writes every event queued.

A request stages its event (hub/audit/rows.py) in its own task, queues it and waits. One flush
at a time takes every event queued (up to `batch_max`) and writes them in one transaction, in
queue order; each waiter is answered with its position once the commit returned, or with
`TrailUnavailable` when the transaction failed (then no event of the group was written, and
each of their requests withholds its L3/L4 data). An event that cannot be staged fails its own
request before it joins a group, so no caller's event can make another's fail.

A request may queue its event before it waits for it (`enqueue`, then `Pending.wait`): the app
queues it as soon as the answer is decided and encodes the answer meanwhile (hub/audit/trail.py).
Until a flush takes it, the queued event can still be replaced (`Pending.amend`: the encoding
failed, so the request failed), so a request stays one event.

Events queued while a flush is on its way form the next group by themselves. On small requests
that is too few: a flush takes a millisecond or two, in which a couple of requests arrive, so
nearly every request paid a commit of its own. So before a flush, while other requests are in
flight that have not queued their event yet (the app says when a request begins and ends), the
flush waits for them up to `gather_ms`, and no longer than until each of them is waiting. A lone
request (W1: one large answer at a time) never waits.

With the flushes written in the writer's process, there is no gathering unless set: a flush
goes as soon as the one before has committed, with whatever was queued meanwhile. A flush there
costs the event loop only a pipe's write and read, so more flushes cost little, while every
request held back for a group is one the loop cannot run while the flush is written: on W6 the
loop sat idle for the commit with all 32 requests waiting in one group (0.84 of the trail-off
hub's requests per second with a 12 ms window, 0.95 with none; bench/README.md).

Only requests begun in the last `young_ms` are waited for. A request still running after that
is a heavy one (an auditor's eight lists of 10,000 rows run for a second or more): its event is
far off, and waiting for it would add the whole window to every small request's flush for as
long as it runs (issue 13's fairness: lookups beside the heaviest request).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from hub.audit.event import Event
from hub.audit.flush_process import ProcessFlusher
from hub.audit.merkle import Frontier
from hub.audit.postgres_writer import PostgresFlusher
from hub.audit.rows import Staged, stage
from hub.audit.sqlite_writer import SqliteFlusher
from hub.audit.store import TrailUnavailable, append_in

log = logging.getLogger("hub.audit")

GATHER_MS = 12.0
YOUNG_MS = 200.0


class Flight:
    """A request in flight, as the writer's gathering sees it: when it began, and whether its
    event is queued yet."""

    __slots__ = ("began", "queued")

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.queued = False


class Flusher(Protocol):
    """A database's own way to write one flush in one transaction."""

    async def write(self, staged: Sequence[Staged], edge: Frontier | None) -> tuple[int, Frontier | None]: ...

    async def close(self) -> None: ...


class Pending:
    """An event queued for a flush, and its request's wait for it."""

    __slots__ = ("_open", "future", "staged", "taken")

    def __init__(self, staged: Staged, future: asyncio.Future[int]) -> None:
        self.staged = staged
        self.future = future
        # Set once a flush has taken the event: from then on it is written as it is.
        self.taken = False
        # Until its request has waited (or ended without waiting).
        self._open = True

    def amend(self, event: Event) -> bool:
        """Queue `event` in place of the one queued, if no flush has taken that yet."""
        if self.taken or self.future.done():
            return False
        try:
            self.staged = stage(event)
        except Exception:
            return False
        return True

    async def wait(self) -> int:
        """The event's position once its flush committed; TrailUnavailable if it failed."""
        try:
            # Awaited as it is, not through asyncio.shield: a shield hands the result on in one
            # more turn of the loop, and beside a heavy request a turn can take 10-20 ms
            # (bench/README.md, issue 13's fairness on PostgreSQL). A request given up on while
            # it waits cancels this future only: its event is written all the same (a flush
            # takes every queued event, whatever became of its waiter) and then finds the
            # future done, so it answers nobody.
            return await self.future
        finally:
            self.close()

    def close(self) -> None:
        """The request waits no more (it ended without waiting: cancelled, or failed)."""
        if self._open:
            self._open = False
            # Nobody may await it now: its failure, if it fails, is the log's to report.
            self.future.add_done_callback(_retrieve)


class TrailWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        batch_max: int = 500,
        gather_ms: float | None = None,
        young_ms: float = YOUNG_MS,
        process: bool = False,
    ) -> None:
        self.engine = engine
        self._batch_max = batch_max
        # Unset: GATHER_MS in the hub's process, none with the writer's process (above).
        self.gather_ms = gather_ms if gather_ms is not None else 0.0 if process else GATHER_MS
        self._gather_s = self.gather_ms / 1000
        self._young_s = young_ms / 1000
        # On a SQLite file, a flush is one trip to a thread of its own (hub/audit/sqlite_writer.py);
        # on PostgreSQL, one statement on a connection of its own (hub/audit/postgres_writer.py);
        # with `process`, either of them in a process of its own (hub/audit/flush_process.py).
        remote = ProcessFlusher.of(engine) if process else None
        self._flusher: Flusher | None = remote or SqliteFlusher.of(engine) or PostgresFlusher.of(engine)
        self._pending: list[Pending] = []
        self._flushing: asyncio.Task[None] | None = None
        # The tree's right edge as this writer's last flush left it: when no other process
        # wrote since, the next flush needs not read it back.
        self._edge: Frontier | None = None
        # Requests begun and not ended whose event is not queued yet (the app says when): they
        # may still bring an event to the next flush. In the order they began (a dict keeps it),
        # so the youngest is last.
        self._flights: dict[Flight, None] = {}
        self._gathering: asyncio.Future[None] | None = None
        self.flushes = 0
        self.events = 0

    def begin(self) -> Flight:
        """A request has begun: its event may come soon. Pass what this returns to `enqueue`
        (or `append`) and `end`."""
        flight = Flight()
        self._flights[flight] = None
        return flight

    def end(self, flight: Flight) -> None:
        """A request has ended (with its event written, or with none to write)."""
        self._flights.pop(flight, None)
        self._nudge()

    async def append(self, event: Event, flight: Flight | None = None) -> int:
        """Write `event` (with whatever else is waiting) and return its position."""
        return await self.enqueue(event, flight).wait()

    def enqueue(self, event: Event, flight: Flight | None = None) -> Pending:
        """Queue `event` (of the request `flight`, if the app said it began) for the next flush;
        its request waits for it with `Pending.wait`. TrailUnavailable, at once, for an event
        the log cannot hold."""
        try:
            staged = stage(event)
        except Exception as exc:
            log.error("an access event could not be prepared: %s", type(exc).__name__)
            raise TrailUnavailable("the access event could not be prepared") from None
        pending = Pending(staged, asyncio.get_running_loop().create_future())
        self._pending.append(pending)
        if flight is not None:
            flight.queued = True
            self._flights.pop(flight, None)
        self._nudge()
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        return pending

    async def open(self) -> None:
        """Make ready what the first flush would (the writer's process), at the hub's start."""
        if isinstance(self._flusher, ProcessFlusher):
            await self._flusher.open()

    async def drain(self) -> None:
        """Wait for the flush in progress (at shutdown)."""
        if self._flushing is not None:
            await asyncio.shield(self._flushing)

    async def close(self) -> None:
        await self.drain()
        if self._flusher is not None:
            await self._flusher.close()

    async def write(self, events: Sequence[Event]) -> int:
        """Append `events` in one transaction, now; the first one's position."""
        return await self._write([stage(event) for event in events])

    def _coming(self) -> bool:
        """Whether a request begun lately has not queued its event yet: one a flush may wait for.
        Asked at every enqueue and end: the youngest such request is the last one begun, so one
        look answers (a count over the requests in flight cost as much as the rest of the check)."""
        flights = self._flights
        if not flights:
            return False
        youngest = next(reversed(flights))
        return youngest.began >= time.monotonic() - self._young_s

    def _nudge(self) -> None:
        """End the gathering once nobody else is coming or the group is full."""
        gathering = self._gathering
        full = len(self._pending) >= self._batch_max
        if gathering is not None and not gathering.done() and (full or not self._coming()):
            gathering.set_result(None)

    async def _gather(self) -> None:
        loop = asyncio.get_running_loop()
        self._gathering = gathering = loop.create_future()
        timer = loop.call_later(self._gather_s, _settle, gathering)
        try:
            await gathering
        finally:
            timer.cancel()
            self._gathering = None

    async def _flush(self) -> None:
        try:
            while self._pending:
                if self._gather_s > 0 and self._coming() and len(self._pending) < self._batch_max:
                    await self._gather()
                batch = self._pending[: self._batch_max]
                del self._pending[: self._batch_max]
                for pending in batch:
                    pending.taken = True
                try:
                    first = await self._write([pending.staged for pending in batch])
                except Exception as exc:
                    log.error("the access trail could not be written: %s", type(exc).__name__)
                    for pending in batch:
                        if not pending.future.done():
                            pending.future.set_exception(TrailUnavailable("the access trail could not be written"))
                    continue
                for offset, pending in enumerate(batch):
                    if not pending.future.done():
                        pending.future.set_result(first + offset)
        finally:
            self._flushing = None

    async def _write(self, staged: Sequence[Staged]) -> int:
        edge, self._edge = self._edge, None  # kept again only once this flush commits
        if self._flusher is not None:
            first, edge = await self._flusher.write(staged, edge)
        else:
            async with self.engine.begin() as connection:
                first, edge = await append_in(connection, staged, edge)
        self._edge = edge
        self.flushes += 1
        self.events += len(staged)
        return first


def _settle(gathering: asyncio.Future[None]) -> None:
    if not gathering.done():
        gathering.set_result(None)


def _retrieve(future: asyncio.Future[int]) -> None:
    if not future.cancelled():
        future.exception()
