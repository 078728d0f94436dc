"""OpenTelemetry traces: a span per /graphql request, per department read and per release step.

Off by default (hub/observe/settings.py); when off no tracer exists and the request path only
tests for None. The tracer provider belongs to the app, not to OpenTelemetry's global one, for
the same reason the metrics registry does. Everything the SDK would otherwise look up in the
environment (sampler, limits, batching, the exporter's endpoint, headers and certificates) is
passed in from the settings, which `load_settings` read.

Spans carry no personal data: no values, no identifiers, no filter, no query text. What they do
carry: department, entity and table names, row and field counts, the registered document's id,
the request id, status and error code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter as SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Span, Tracer

from connectors.base import Page, Row
from hub.access.plan import AccessPlan
from hub.access.record import AccessRecord
from hub.access.release import Released, Releaser
from hub.catalog import EntityInfo
from hub.crypto.keyring import Keyring
from hub.observe.settings import TracingSettings

# The SDK's own defaults, written out so that it does not look them up in the environment.
LIMITS = SpanLimits(
    max_attributes=128,
    max_events=128,
    max_links=128,
    max_span_attributes=128,
    max_event_attributes=128,
    max_link_attributes=128,
    max_attribute_length=1024,
    max_span_attribute_length=1024,
)
SCOPE = "hub"


def tracer_provider(settings: TracingSettings, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """The provider the settings ask for, or None when tracing is off. A given `exporter` (tests
    pass an in-memory one) is used instead, each span exported as it ends."""
    if exporter is None and not settings.enabled:
        return None
    resource = Resource({"service.name": settings.service_name, **settings.resource_attributes})
    provider = TracerProvider(sampler=_sampler(settings), resource=resource, span_limits=LIMITS, shutdown_on_exit=False)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.exporter == "console":
        # Standard error: standard output carries the access log, one JSON line per request.
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    else:
        provider.add_span_processor(
            BatchSpanProcessor(
                _otlp(settings),
                max_queue_size=2048,
                schedule_delay_millis=5000,
                max_export_batch_size=512,
                export_timeout_millis=30000,
            )
        )
    return provider


def _otlp(settings: TracingSettings) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(
        endpoint=settings.endpoint,
        # The system's certificate authorities unless a file is named.
        certificate_file=settings.certificate_file or True,  # type: ignore[arg-type]
        client_key_file=settings.client_key_file,
        client_certificate_file=settings.client_certificate_file,
        headers=dict(settings.headers),
        timeout=settings.timeout_s,
        compression=Compression(settings.compression),
    )


def _sampler(settings: TracingSettings) -> Sampler:
    name, ratio = settings.sampler, settings.sampler_ratio
    root: Sampler = ALWAYS_ON
    if name.endswith("always_off"):
        root = ALWAYS_OFF
    elif name.endswith("traceidratio"):
        root = TraceIdRatioBased(ratio)
    return ParentBased(root) if name.startswith("parentbased_") else root


def hub_tracer(provider: TracerProvider | None) -> Tracer | None:
    return None if provider is None else provider.get_tracer(SCOPE)


def end_span(span: Span, error: str | None = None) -> None:
    """Ends `span`, marked as failed with `error` (a code or reason, never a message) if given."""
    if error is not None:
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute("hub.error", error)
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()


class TracedReleaser(Releaser):
    """The release step with a span around each call: which entity, how many rows and fields,
    how many fields masked and withheld."""

    def __init__(self, keyring: Callable[[], Keyring], tracer: Tracer) -> None:
        super().__init__(keyring)
        self._tracer = tracer

    def release(
        self,
        plan: AccessPlan,
        record: AccessRecord,
        entity: EntityInfo,
        rows: Page | Sequence[Row],
        names: Sequence[str],
    ) -> Released:
        attributes: dict[str, Any] = {"hub.entity": entity.id, "hub.fields": len(names)}
        with self._tracer.start_as_current_span("hub.release", attributes=attributes) as span:
            released = super().release(plan, record, entity, rows, names)
            _describe(span, released)
            return released

    async def release_paced(
        self, plan: AccessPlan, record: AccessRecord, entity: EntityInfo, rows: Page, names: Sequence[str]
    ) -> Released:
        attributes: dict[str, Any] = {"hub.entity": entity.id, "hub.fields": len(names)}
        with self._tracer.start_as_current_span("hub.release", attributes=attributes) as span:
            released = await super().release_paced(plan, record, entity, rows, names)
            _describe(span, released)
            return released


def _describe(span: Span, released: Released) -> None:
    span.set_attribute("hub.rows", len(released.rows))
    span.set_attribute("hub.masked_fields", len(released.masked))
    span.set_attribute("hub.withheld_fields", len(released.withheld))
