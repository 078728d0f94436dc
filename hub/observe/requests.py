"""One /graphql request as an operator sees it: its id, its counts in the metrics, its line in
the access log (hub/observe/access_log.py) and its span.

The request id is the caller's `X-Request-Id` when it is short and made of safe characters (so
a proxy's id ties its log to the hub's), else one made here; the answer echoes it in the same
header.

A request only notes what it was (`finish`); its counts and its log line are made with those of
the other requests of the last `delay_s` (HUB_ACCESS_LOG_DELAY_MS, 50 ms; 0 does it at once), and
before every scrape of /metrics, so the metrics are exact whenever they are read. Done one by one
between requests, the counting and the line cost W6's lookup by key about 20 µs of CPU, 7% of it
(bench/w6_cpu.py): their code ran cold in caches the request path had filled; in a batch it runs
warm, and the log is flushed once.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hub.access.plan import Decision
from hub.access.record import AccessRecord
from hub.access.release import Releaser
from hub.auth.principal import Principal
from hub.crypto.keyring import Keyring
from hub.observe import access_log
from hub.observe.departments import DepartmentWatch
from hub.observe.metrics import OTHER, Metrics
from hub.observe.settings import ObserveSettings
from hub.observe.tracing import TracedReleaser, end_span, hub_tracer, tracer_provider

PLAIN, MASKED = Decision.PLAIN, Decision.MASKED
# Requests noted at most before they are counted whatever the delay.
BATCH_LIMIT = 1000

HEADER = "X-Request-Id"
# UUIDs, ULIDs, W3C trace ids and the like; no spaces, quotes or line breaks that could forge
# a log line or a header.
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
PROPAGATOR = TraceContextTextMapPropagator()


def request_id(given: str | None) -> str:
    """The caller's request id if it is sane, else a new one (32 hex digits)."""
    if given is not None and SANE_ID.fullmatch(given):
        return given
    # Unique, not secret: the Mersenne Twister, not a system call for random bytes.
    return f"{random.getrandbits(128):032x}"


def outcome(status: int, code: str | None) -> str:
    """ok (answered, no error), partial (answered with errors: fields null or withheld),
    refused (4xx: the request did not run), error (5xx) or cancelled (499: the server gave up
    on it, its client having gone)."""
    if status >= 500:
        return "error"
    if status == 499:
        return "cancelled"
    if status >= 400:
        return "refused"
    return "ok" if code is None else "partial"


class Seen:
    """What is known of one request as it goes: filled in by the app where it learns it."""

    __slots__ = (
        "document",
        "limit",
        "operation",
        "principal",
        "record",
        "released",
        "request_id",
        "scope",
        "started",
        "text",
    )

    def __init__(self, request_id: str, started: float, scope: Any) -> None:
        self.request_id = request_id
        self.started = started
        # The span and the context token while tracing; None otherwise.
        self.scope = scope
        self.principal: Principal | None = None
        # A registered document's id, once the request named one that exists.
        self.document: str | None = None
        self.text: str | None = None
        # The operation name the request gave, if any.
        self.operation: str | None = None
        # The limit that refused the request (lookup_quota, rate_caller, rate_department,
        # concurrency): its event in the access trail names it.
        self.limit: str | None = None
        # The answer's whole access record, until the access trail has stored it (hub/audit).
        self.record: AccessRecord | None = None
        # The answer's access record's counts of values by field and level (the record itself
        # also holds the persons it touched, which need not outlive the request).
        self.released: Mapping[tuple[str, str, Decision], int] | None = None

    def answered(self, record: AccessRecord | None) -> None:
        self.released = None if record is None else record.released
        self.record = record


class Observability:
    """The app's metrics, its tracer (None when tracing is off) and its access log."""

    def __init__(self, settings: ObserveSettings, exporter: SpanExporter | None = None) -> None:
        self.metrics = Metrics()
        self.provider = tracer_provider(settings.tracing, exporter)
        self.tracer = hub_tracer(self.provider)
        self.access_log = settings.access_log
        self.delay_s = settings.access_log_delay_s
        # (time.time() when it ended, seconds it took, status, code, what was seen) per request
        # not counted yet; swapped out whole by `flush`, which another thread may call.
        self._pending: list[tuple[float, float, int, str | None, Seen]] = []
        self._flushing = threading.Lock()

    def department(self, name: str) -> DepartmentWatch:
        return DepartmentWatch(name, self.metrics, self.tracer)

    def releaser(self, keyring: Callable[[], Keyring]) -> Releaser:
        return Releaser(keyring) if self.tracer is None else TracedReleaser(keyring, self.tracer)

    def begin(self, given_id: str | None, method: str, headers: Mapping[str, str]) -> Seen:
        rid = request_id(given_id)
        scope = None
        if self.tracer is not None:
            parent = PROPAGATOR.extract(headers)
            attributes = {"http.request.method": method, "http.route": "/graphql", "hub.request_id": rid}
            span = self.tracer.start_span(
                f"{method} /graphql", context=parent, kind=SpanKind.SERVER, attributes=attributes
            )
            scope = (span, context.attach(trace.set_span_in_context(span, parent)))
        return Seen(rid, time.perf_counter(), scope)

    def finish(self, seen: Seen, status: int, code: str | None) -> None:
        """Notes the request for counting and logging, and ends its span."""
        seconds = time.perf_counter() - seen.started
        pending = self._pending
        pending.append((time.time(), seconds, status, code, seen))
        if self.delay_s <= 0 or len(pending) >= BATCH_LIMIT:
            self.flush()
        elif len(pending) == 1:
            try:
                asyncio.get_running_loop().call_later(self.delay_s, self.flush)
            except RuntimeError:  # no event loop: nothing would flush later
                self.flush()
        if seen.scope is not None:
            span, token = seen.scope
            span.set_attribute("http.response.status_code", status)
            span.set_attribute("hub.document", seen.document or OTHER)
            span.set_attribute("hub.outcome", outcome(status, code))
            if seen.principal is not None:
                span.set_attribute("hub.caller.department", seen.principal.department)
            end_span(span, code if status >= 400 or code is not None else None)
            context.detach(token)

    def flush(self) -> None:
        """Counts the requests noted so far and writes their access log lines."""
        with self._flushing:
            pending, self._pending = self._pending, []
            if not pending:
                return
            metrics = self.metrics
            logging_on = self.access_log and access_log.logging_on()
            lines = []
            for ended, seconds, status, code, seen in pending:
                result = outcome(status, code)
                metrics.request(seen.document or OTHER, result, code or "none", seconds)
                if seen.released is not None and status < 400:
                    metrics.released(*_levels(seen.released))
                if logging_on:
                    lines.append(
                        access_log.line(
                            ended,
                            seen.request_id,
                            seen.principal,
                            seen.text,
                            seen.document,
                            status,
                            result,
                            code,
                            seconds,
                        )
                    )
            if lines:
                access_log.write(lines)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """/metrics: every request so far counted."""
        self.flush()
        return self.metrics.render(accept)

    def close(self) -> None:
        """Writes the access log's last lines and sends the spans still queued (blocks up to the
        exporter's timeout)."""
        self.flush()
        if self.provider is not None:
            self.provider.shutdown()


def _levels(released: Mapping[tuple[str, str, Decision], int]) -> tuple[int, int, int]:
    """Values released plain, masked and withheld. Compared by identity, summed in locals: an
    Enum's hash is a Python call, and a lookup by key releases a dozen fields."""
    plain = masked = withheld = 0
    for (_, _, decision), count in released.items():
        if decision is PLAIN:
            plain += count
        elif decision is MASKED:
            masked += count
        else:
            withheld += count
    return plain, masked, withheld
