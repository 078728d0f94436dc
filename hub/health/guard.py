"""A department's connector behind its deadline and its circuit breaker: what the reader calls.

Every call is bounded by the department's statement timeout plus a margin, whatever it waits for
(a pool slot, a connection, the statement, its rows): the database's own timeout stops a slow
statement, but not a network that stopped delivering, a server that accepts connections and
never answers, or a queue for a pool that slow statements hold. Past the deadline (watched by
`deadline.py`) the call is cancelled (the connector gives its connection back, or drops it)
and the department is unavailable for that read. Unavailable reads count towards the
department's breaker; once it is open, reads are refused at once, without touching the
database, until a probe gets through. Each read is reported to the department's watch (its time,
or why it got no answer, and a span where tracing is on): hub/observe/departments.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from connectors.aggregates import AggregateQuery, Groups
from connectors.base import Connector, ConnectorError, Filter, OrderKey, Page, Query, TableSpec, UnavailableError
from hub.health.breaker import Breaker, CircuitOpen, Ticket
from hub.health.deadline import Deadlines, Read
from hub.health.schema_gate import SchemaGate
from hub.health.share import Share, current_owner
from hub.observe.departments import DepartmentWatch, ReadSpan, clock

# Time past the statement timeout for what the database's own limit does not cover: reaching
# the server and carrying the rows back. The database stops its statement first, so a read that
# is merely slow still ends with the database's answer, not the hub's deadline. (The watcher
# may add up to WATCH_PERIOD_S.)
DEADLINE_MARGIN_S = 0.5


class CircuitOpenError(UnavailableError):
    """A read refused by an open circuit: the database was not asked."""


class GuardedConnector:
    """`inner`, one department's connector, with a deadline on each call and a breaker."""

    def __init__(
        self,
        department: str,
        inner: Connector,
        breaker: Breaker,
        timeout_ms: int,
        pool_size: int = 5,
        watch: DepartmentWatch | None = None,
        gate: SchemaGate | None = None,
    ) -> None:
        self.department = department
        # Whether the database matches the manifest (schema_gate.py); None: not checked (a
        # connector without an engine to reflect, such as the in-memory one).
        self.gate = gate
        self.inner = inner
        self.breaker = breaker
        self.timeout_ms = timeout_ms
        self.deadlines = Deadlines(timeout_ms / 1000 + DEADLINE_MARGIN_S)
        # The department's connections, shared between requests (share.py); waiting for one
        # other requests hold is inside the read's deadline, waiting behind the request's own
        # reads is not.
        self.share = Share(pool_size)
        self.watch = watch

    # The guard's bookkeeping lives in `_Read`, entered around the inner call in each method's
    # own frame: a lookup by key is one fetch, and a wrapper coroutine between it and the driver
    # would be one more frame paid again on each suspension.
    async def fetch(self, query: Query) -> Page:
        await self._gate()
        async with self._read("fetch", query.table.name) as read:
            page = await self.inner.fetch(query)
        read.answered(page.count)
        return page

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        await self._gate()
        async with self._read("count", table.name) as read:
            total = await self.inner.count(table, where)
        read.answered(None)
        return total

    async def aggregate(self, query: AggregateQuery) -> Groups:
        async with self._read("aggregate", query.table.name) as read:
            groups = await self.inner.aggregate(query)
        read.answered(len(groups.rows))
        return groups

    async def fetch_by(
        self,
        table: TableSpec,
        column: str,
        values: Sequence[Any],
        columns: Sequence[str],
        *,
        where: Filter | None = None,
        per_value: int | None = None,
        limit: int | None = None,
        order: Sequence[OrderKey] = (),
        on_chunk: Callable[[Page], None] | None = None,
    ) -> Page:
        # One read under one deadline, whatever the chunks: the request as a whole is what
        # must end within the department's timeout.
        await self._gate()
        async with self._read("fetch_by", table.name, len(values)) as read:
            rows = await self.inner.fetch_by(
                table,
                column,
                values,
                columns,
                where=where,
                per_value=per_value,
                limit=limit,
                order=order,
                on_chunk=on_chunk,
            )
        read.answered(rows.count)
        return rows

    async def close(self) -> None:
        self.deadlines.stop()
        await self.inner.close()

    async def _gate(self) -> None:
        """Waits where the database was found not to match its manifest (schema_gate.py)."""
        gate = self.gate
        if gate is not None and not gate.matches:
            await gate.admit()

    def _read(self, kind: str, table: str, values: int | None = None) -> _Read:
        """One read of `kind` on `table`, admitted by the breaker (or refused at once), under
        its deadline once its request's slot is taken."""
        watch = self.watch
        span = None if watch is None or watch.tracer is None else watch.span(kind, table, values)
        ticket = self._admit(span)
        return _Read(self, ticket, span)

    def _admit(self, span: ReadSpan | None) -> Ticket:
        try:
            return self.breaker.admit()
        except CircuitOpen as refused:
            if self.watch is not None:
                self.watch.failed("circuit_open", span)
            raise CircuitOpenError(
                "the department database is unavailable",
                f"circuit open, next probe in {max(refused.retry_after, 0.0):.1f} s",
            ) from None

    def _failure(self, ticket: Ticket, error: BaseException, late: bool, span: ReadSpan | None) -> BaseException:
        """What a failed call raises (`late`: cancelled for its deadline), having told the
        breaker, and the watch, what it showed."""
        if late or isinstance(error, TimeoutError):
            self.breaker.failed(ticket)
            reason = "timeout"
            error = UnavailableError(
                f"the department database did not answer within {self.timeout_ms} ms",
                f"no answer within the hub's deadline of {self.deadlines.seconds:g} s",
            )
        elif isinstance(error, UnavailableError):
            self.breaker.failed(ticket)
            reason = "unavailable"
        elif isinstance(error, ConnectorError):
            # The database answered, with a refusal of the query: it is there, but its schema
            # may have changed under the manifest.
            self.breaker.succeeded(ticket)
            reason = "refused"
            if self.gate is not None:
                self.gate.suspect()
        else:
            # Cancelled with its request, or a fault of the hub's: nothing learnt of the database.
            self.breaker.abandoned(ticket)
            reason = "abandoned"
        if self.watch is not None:
            self.watch.failed(reason, span)
        return error


class _Read:
    """One guarded read: its breaker ticket, span, deadline and connection share. Entered, it
    takes a slot of its request's share (waiting behind the request's own reads), starts its
    deadline, then takes a connection (waiting within the deadline); left, it gives both back
    and settles the deadline and the breaker, and turns a failure into what the reader sees
    (`GuardedConnector._failure`)."""

    __slots__ = ("claimed", "guard", "owner", "read", "span", "started", "taken", "ticket")

    def __init__(self, guard: GuardedConnector, ticket: Ticket, span: ReadSpan | None) -> None:
        self.guard = guard
        self.ticket = ticket
        self.span = span
        self.read: Read | None = None
        self.owner = current_owner()
        self.started = 0.0
        self.claimed = False
        self.taken = False

    async def __aenter__(self) -> _Read:
        guard = self.guard
        share, owner = guard.share, self.owner
        if not share.claim(owner):
            try:
                await share.wait_claim(owner)
            except BaseException as error:
                raise self._failed(error) from None
        self.claimed = True
        # The deadline and the read's time count from here: what the department takes.
        self.read = guard.deadlines.start()
        self.started = clock()
        if not share.take(owner):
            try:
                await share.wait(owner)
            except BaseException as error:
                self._release()
                raise self._failed(error) from None
        self.taken = True
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._release()
        if error is not None:
            raise self._failed(error) from None
        assert self.read is not None
        self.guard.deadlines.finish(self.read)
        self.guard.breaker.succeeded(self.ticket)

    def answered(self, count: int | None) -> None:
        """Reports the answered read to the department's watch, with how many rows it gave."""
        watch = self.guard.watch
        if watch is not None:
            watch.answered(self.started, self.span, count)

    def _release(self) -> None:
        share = self.guard.share
        if self.taken:
            self.taken = False
            share.give(self.owner)
        if self.claimed:
            self.claimed = False
            share.unclaim(self.owner)

    def _failed(self, error: BaseException) -> BaseException:
        guard = self.guard
        late = self.read is not None and guard.deadlines.finish(self.read)
        return guard._failure(self.ticket, error, late, self.span)
