"""What the guard (hub/health/guard.py) reports of each department read: how long an answered
read took, why a read got no answer, and a span per read where tracing is on.

One watch per department, holding its counts: a lookup by key pays two clock readings and one
histogram observation (a bisection and two additions) here.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry.trace import Span, Tracer

from hub.observe.metrics import Metrics
from hub.observe.tracing import end_span

clock = time.perf_counter
# A read's span, for the guard's signatures (only hub.observe imports OpenTelemetry).
ReadSpan = Span


class DepartmentWatch:
    __slots__ = ("_counts", "department", "tracer")

    def __init__(self, department: str, metrics: Metrics, tracer: Tracer | None) -> None:
        self.department = department
        self.tracer = tracer
        self._counts = metrics.department(department)

    def span(self, read: str, table: str, values: int | None = None) -> Span | None:
        """A span for one read (`read`: fetch, count or fetch_by; `values`: how many values a
        fetch_by reads by, never the values), or None when tracing is off."""
        tracer = self.tracer
        if tracer is None:
            return None
        attributes: dict[str, Any] = {"hub.department": self.department, "hub.read": read, "db.collection.name": table}
        if values is not None:
            attributes["hub.values"] = values
        return tracer.start_span("hub.department_read", attributes=attributes)

    def answered(self, started: float, span: Span | None, rows: int | None) -> None:
        self._counts.seconds.observe(clock() - started)
        if span is not None:
            if rows is not None:
                span.set_attribute("hub.rows", rows)
            span.end()

    def failed(self, reason: str, span: Span | None) -> None:
        self._counts.failures[reason] += 1
        if span is not None:
            end_span(span, reason)
