"""What the app asks of the trail, once per /graphql request, as its answer is about to leave.

A request of an authenticated caller becomes one event (served, partly served, refused or
failed), written before the answer is sent. When it cannot be written the trail fails closed:
an answer carrying released values is replaced by a 503 saying the trail is unavailable; only
where HUB_AUDIT_UNLOGGED_L1_L2 allows it, an answer whose values are all of tiers L1 and L2
still leaves. An answer without data (a refusal, an error) leaves either way.

An answer that runs is queued as soon as it is decided, before its body is encoded (`start`):
the flush writes the event while the body is encoded (a large answer's encoding takes turns with
the loop), and `seal` then waits for it to be durable before the answer leaves, failing closed as
above. Should the encoding fail, the event still queued becomes the failed request's (`fault`),
so a request stays one event; a flush that took it already writes it as it was decided (the log
then says the data was served though the caller got the fault's 500: more than left, never less).

A request without a valid principal is no event: it is counted per source address and minute
(written every few seconds), so whoever lacks a token cannot grow the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson
from starlette.responses import Response

from hub.access.plan import Decision
from hub.access.record import AccessRecord
from hub.audit.event import Event, released_of
from hub.audit.settings import AuditSettings
from hub.audit.store import TrailUnavailable, count_anonymous
from hub.audit.writer import Flight, Pending, TrailWriter
from hub.catalog import Catalog
from hub.catalog.manifest import Tier
from hub.observe.requests import Seen

log = logging.getLogger("hub.audit")

# The first error codes of an answer without data that the caller caused (else: failed).
REFUSALS = frozenset({"UNAUTHENTICATED", "FORBIDDEN", "BAD_USER_INPUT", "BAD_PURPOSE", "LIMIT_EXCEEDED"})
LOW_TIERS = frozenset({Tier.L1, Tier.L2})
# Addresses counted at most before the counts are written whatever the delay.
ANONYMOUS_KEYS = 10_000
ANONYMOUS_DELAY_S = 5.0
UNAVAILABLE = (
    "the access trail cannot be written, so no data is served: every release is recorded before it "
    "leaves. Try again shortly"
)


class Addressed(Protocol):
    """What the trail reads of an HTTP request (starlette's Request has it)."""

    @property
    def headers(self) -> Any: ...

    @property
    def client(self) -> Any: ...

    @property
    def scope(self) -> Any: ...


# Where a request's early event is kept in its ASGI scope, from `start` to `seal` (or `fault`).
EARLY = "hub.trail.early"
# The writer's note of the request in flight (hub/audit/writer.py: whom a flush waits for).
FLIGHT = "hub.trail.flight"


@dataclass(frozen=True, slots=True)
class Early:
    """A request's event, queued before its answer was encoded."""

    event: Event
    record: AccessRecord | None
    # None when the event could not be queued (the log cannot hold it): the answer fails closed.
    pending: Pending | None


class Refused(Response):
    media_type = "application/json"
    code = "INTERNAL"


def outcome_of(status: int, code: str | None, record: AccessRecord | None) -> str:
    if status >= 500:
        return "failed"
    if status >= 400:
        return "refused"
    if code is None:
        return "served"
    if _releases(record):
        return "partly_served"
    return "refused" if code in REFUSALS else "failed"


def _releases(record: AccessRecord | None) -> bool:
    if record is None:
        return False
    return bool(record.aggregated_entities) or any(
        n and d is not Decision.DENIED for (_, _, d), n in record.released.items()
    )


class Trail:
    def __init__(
        self, settings: AuditSettings, writer: TrailWriter, catalog: Catalog, purposes: Collection[str] = ()
    ) -> None:
        self.settings = settings
        self.writer = writer
        self._catalog = catalog
        self._purposes = frozenset(purposes)
        self._anonymous: Counter[tuple[int, str]] = Counter()
        self._anonymous_task: asyncio.Task[None] | None = None

    def start(self, request: Addressed, seen: Seen, status: int, code: str | None) -> None:
        """Queue the event of a request whose answer is decided (its status and first error
        code) but not yet encoded; `seal` waits for it."""
        if not self.settings.enabled or seen.principal is None:
            return
        record, seen.record = seen.record, None
        event = self._event(request, seen, status, code, record)
        try:
            pending: Pending | None = self.writer.enqueue(event, request.scope.get(FLIGHT))
        except TrailUnavailable:
            pending = None
        request.scope[EARLY] = Early(event, record, pending)

    async def seal(self, request: Addressed, seen: Seen, response: Response) -> Response:
        """Record the request; the answer to send (the given one, or the trail's refusal)."""
        if not self.settings.enabled:
            return response
        early: Early | None = request.scope.pop(EARLY, None)
        if early is not None:
            return await self._written(early.pending, early.record, response)
        principal = seen.principal
        if principal is None:
            self._count_anonymous(request)
            return response
        record, seen.record = seen.record, None
        event = self._event(request, seen, response.status_code, getattr(response, "code", None), record)
        try:
            pending: Pending | None = self.writer.enqueue(event, request.scope.get(FLIGHT))
        except TrailUnavailable:
            pending = None
        return await self._written(pending, record, response)

    async def _written(self, pending: Pending | None, record: AccessRecord | None, response: Response) -> Response:
        """`response` once the event is durable; the trail's refusal in its place when the
        event could not be written and the answer carries data that may not leave unlogged."""
        try:
            if pending is None:
                raise TrailUnavailable("the access event could not be prepared")
            await pending.wait()
        except TrailUnavailable:
            if not _releases(record) or (self.settings.unlogged_low_tiers and self._low_tiers_only(record)):
                return response
            return _unavailable(response)
        return response

    def _event(
        self, request: Addressed, seen: Seen, status: int, code: str | None, record: AccessRecord | None
    ) -> Event:
        principal = seen.principal
        assert principal is not None
        purpose = request.headers.get("x-hub-purpose") or None
        released = released_of(record)
        if seen.limit is not None:
            # A request a limit refused: the trail's record of the alert (docs/audit.md).
            released["limit"] = seen.limit
        return Event(
            at_us=time.time_ns() // 1000,
            principal=principal.subject,
            department=principal.department,
            purpose=self._purpose(purpose),
            operation_hash=None if seen.text is None else hashlib.sha256(seen.text.encode()).hexdigest(),
            operation_name=None if seen.operation is None else seen.operation[:200],
            document_id=seen.document,
            outcome=outcome_of(status, code, record),
            status=status,
            code=code,
            policy_version=None if record is None else record.policy_version,
            released=released,
            persons={} if record is None else record.persons_entities(),
        )

    def _purpose(self, given: str | None) -> str | None:
        """A known purpose's code; an unknown one (refused as BAD_PURPOSE) by a digest only, so
        a caller cannot write what it likes (a resident ID number) into the trail."""
        if given is None or given in self._purposes:
            return given
        return "unknown:" + hashlib.sha256(given.encode()).hexdigest()[:16]

    async def fault(self, request: Addressed, seen: Seen) -> None:
        """Record a request that ended in a fault of the hub's own (answered INTERNAL, no data):
        as its event queued early, when no flush has taken that yet; never as a second one."""
        if not self.settings.enabled or seen.principal is None:
            return
        early: Early | None = request.scope.pop(EARLY, None)
        try:
            if early is None:
                await self.seal(request, seen, Refused(b"", 500))
            elif early.pending is not None:
                failed = replace(
                    early.event, outcome=outcome_of(500, Refused.code, early.record), status=500, code=Refused.code
                )
                early.pending.amend(failed)
                await early.pending.wait()
        except TrailUnavailable:
            pass  # the fault's answer carries no data: it leaves either way
        except Exception:  # the fault's own answer goes out regardless; it carries no data
            log.exception("could not record a failed request")

    def begin(self, request: Addressed) -> None:
        """A request has begun (its event may come: the writer's flush waits for it a little)."""
        request.scope[FLIGHT] = self.writer.begin()

    def end(self, request: Addressed) -> None:
        """The request has ended, its event written or with none to write (or, cancelled, an
        event queued that it no longer waits for: the flush writes it all the same)."""
        early: Early | None = request.scope.pop(EARLY, None)
        if early is not None and early.pending is not None:
            early.pending.close()
        flight: Flight | None = request.scope.pop(FLIGHT, None)
        if flight is not None:
            self.writer.end(flight)

    async def close(self) -> None:
        await self.writer.close()
        if self._anonymous_task is not None:
            self._anonymous_task.cancel()
        await self._write_anonymous()

    def _low_tiers_only(self, record: AccessRecord | None) -> bool:
        if record is None:
            return True
        for (entity_id, name, decision), n in record.released.items():
            if not n or decision is Decision.DENIED:
                continue
            try:
                item = self._catalog.entity(entity_id).fields.get(name)
            except KeyError:
                return False
            if item is None or item.tier not in LOW_TIERS:
                return False
        # Measures and group keys of aggregates are numbers made from their fields' values.
        for entity_id, name in record.aggregated:
            try:
                item = self._catalog.entity(entity_id).fields.get(name)
            except KeyError:
                return False
            if item is None or item.tier not in LOW_TIERS:
                return False
        # A count names no field, yet answers about the rows: how many persons a filter on a
        # looked-up identifier matches tells whether that person is on file. So an entity
        # aggregated at all is of its highest tier.
        for entity_id in record.aggregated_entities:
            try:
                fields = self._catalog.entity(entity_id).fields.values()
            except KeyError:
                return False
            if any(item.tier not in LOW_TIERS for item in fields):
                return False
        return True

    def _count_anonymous(self, request: Addressed) -> None:
        client = request.client
        address = "unknown" if client is None else str(client.host)[:64]
        self._anonymous[(int(time.time() // 60), address)] += 1
        if len(self._anonymous) >= ANONYMOUS_KEYS:
            self._schedule_anonymous(0)
        elif self._anonymous_task is None:
            self._schedule_anonymous(ANONYMOUS_DELAY_S)

    def _schedule_anonymous(self, delay: float) -> None:
        async def later() -> None:
            await asyncio.sleep(delay)
            await self._write_anonymous()

        if self._anonymous_task is None or delay == 0:
            self._anonymous_task = asyncio.create_task(later())

    async def _write_anonymous(self) -> None:
        counts, self._anonymous = dict(self._anonymous), Counter()
        self._anonymous_task = None
        try:
            await count_anonymous(self.writer.engine, counts)
        except Exception as exc:
            log.warning("could not write the counts of unauthenticated requests: %s", type(exc).__name__)


def _unavailable(original: Response) -> Response:
    body = {"errors": [{"message": UNAVAILABLE, "extensions": {"code": "INTERNAL", "reason": "AUDIT_UNAVAILABLE"}}]}
    refused = Refused(orjson.dumps({**body, "data": None}), 503, {"Retry-After": "5"})
    # A large answer's memory is still given back after the refusal is sent.
    refused.background = original.background
    return refused
