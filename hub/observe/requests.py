"""One /graphql request as an operator sees it: its id, its counts in the metrics, its line in
the access log (hub/observe/access_log.py) and its span.

The request id is the caller's `X-Request-Id` when it is short and made of safe characters (so
a proxy's id ties its log to the hub's), else one made here; the answer echoes it in the same
header.
"""

from __future__ import annotations

import os
import re
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
from hub.observe.access_log import AccessLog
from hub.observe.departments import DepartmentWatch
from hub.observe.metrics import OTHER, Metrics
from hub.observe.settings import ObserveSettings
from hub.observe.tracing import TracedReleaser, end_span, hub_tracer, tracer_provider

PLAIN, MASKED = Decision.PLAIN, Decision.MASKED

HEADER = "X-Request-Id"
# UUIDs, ULIDs, W3C trace ids and the like; no spaces, quotes or line breaks that could forge
# a log line or a header.
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
PROPAGATOR = TraceContextTextMapPropagator()


def request_id(given: str | None) -> str:
    """The caller's request id if it is sane, else a new one (32 hex digits)."""
    if given is not None and SANE_ID.fullmatch(given):
        return given
    return os.urandom(16).hex()


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

    __slots__ = ("document", "principal", "record", "request_id", "scope", "started", "text")

    def __init__(self, request_id: str, started: float, scope: Any) -> None:
        self.request_id = request_id
        self.started = started
        # The span and the context token while tracing; None otherwise.
        self.scope = scope
        self.principal: Principal | None = None
        # A registered document's id, once the request named one that exists.
        self.document: str | None = None
        self.text: str | None = None
        self.record: AccessRecord | None = None


class Observability:
    """The app's metrics, its tracer (None when tracing is off) and its access log."""

    def __init__(self, settings: ObserveSettings, exporter: SpanExporter | None = None) -> None:
        self.metrics = Metrics()
        self.provider = tracer_provider(settings.tracing, exporter)
        self.tracer = hub_tracer(self.provider)
        self.log = AccessLog(settings.access_log, settings.access_log_delay_s)

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
        """Counts the request, writes its access log line and ends its span."""
        seconds = time.perf_counter() - seen.started
        document = seen.document or OTHER
        result = outcome(status, code)
        self.metrics.request(document, result, code or "none", seconds)
        record = seen.record
        if record is not None and status < 400:
            # Compared by identity, summed in locals: an Enum's hash is a Python call, and a
            # lookup by key releases a dozen fields.
            plain = masked = withheld = 0
            for (_, _, decision), count in record.released.items():
                if decision is PLAIN:
                    plain += count
                elif decision is MASKED:
                    masked += count
                else:
                    withheld += count
            self.metrics.released(plain, masked, withheld)
        self.log.note(seen.request_id, seen.principal, seen.text, seen.document, status, result, code, seconds)
        if seen.scope is not None:
            span, token = seen.scope
            span.set_attribute("http.response.status_code", status)
            span.set_attribute("hub.document", document)
            span.set_attribute("hub.outcome", result)
            if seen.principal is not None:
                span.set_attribute("hub.caller.department", seen.principal.department)
            end_span(span, code if status >= 400 or code is not None else None)
            context.detach(token)

    def close(self) -> None:
        """Writes the access log's last lines and sends the spans still queued (blocks up to the
        exporter's timeout)."""
        self.log.flush()
        if self.provider is not None:
            self.provider.shutdown()
