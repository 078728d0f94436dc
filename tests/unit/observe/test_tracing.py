"""Traces exported to an in-memory exporter: a span per request, per department read and per
release step, in one trace, and no personal data in any of them."""

from __future__ import annotations

import re
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from hub.config import load_settings
from tests.conftest import CASES, PEOPLE
from tests.unit.observe.conftest import ObservedHub

QUERY = (
    'query Residents { registryPersons(filter: {idNumber: {eq: "110105199001011234"}}) '
    "{ nodes { idNumber name birthDate cases { caseId amount } } } }"
)
# 18-character resident ID numbers (the last may be X), standing alone in a text (not inside a
# longer run of hex digits, such as a generated request id).
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")


def finished(hub: ObservedHub) -> list[ReadableSpan]:
    assert hub.spans is not None
    return list(hub.spans.get_finished_spans())


def texts(span: ReadableSpan) -> list[str]:
    """Every text a span carries: its name, attribute keys and values, status, events."""
    found = [span.name, str(span.status.description or "")]
    for key, value in (span.attributes or {}).items():
        found += [key, str(value)]
    for event in span.events:
        found.append(event.name)
        found += [str(v) for v in (event.attributes or {}).values()]
    return found


def test_a_request_has_a_span_with_its_department_reads_and_release_steps_below_it(traced: ObservedHub) -> None:
    response = traced.query("app", QUERY)
    assert response.status_code == 200
    spans = finished(traced)
    names = sorted(span.name for span in spans)
    assert names == ["POST /graphql", "hub.department_read", "hub.department_read", "hub.release", "hub.release"]
    (root,) = [s for s in spans if s.name == "POST /graphql"]
    assert root.parent is None
    for span in spans:
        assert span.context.trace_id == root.context.trace_id
        if span is not root:
            assert span.parent is not None and span.parent.span_id == root.context.span_id
    reads = {span.attributes["hub.department"]: span.attributes for span in spans if span.name == "hub.department_read"}
    assert reads["registry"]["hub.read"] == "fetch"
    assert reads["registry"]["hub.rows"] == 1
    assert reads["welfare"]["hub.read"] == "fetch_by"
    assert reads["welfare"]["hub.values"] == 1
    assert reads["welfare"]["hub.rows"] == 2
    releases = {span.attributes["hub.entity"]: span.attributes for span in spans if span.name == "hub.release"}
    assert releases["registry.Person"]["hub.masked_fields"] == 1
    assert releases["welfare.Case"]["hub.rows"] == 2
    assert root.attributes is not None
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["hub.outcome"] == "ok"
    assert root.attributes["hub.caller.department"] == "welfare"
    assert root.attributes["hub.request_id"] == response.headers["X-Request-Id"]


def test_spans_carry_no_personal_data_and_no_query_text(traced: ObservedHub) -> None:
    traced.query("app", QUERY)
    traced.query("app", QUERY.replace("110105199001011234", "11010519850202567X"))
    personal: list[Any] = [p["id_number"] for p in PEOPLE] + [p["name"] for p in PEOPLE]
    personal += [str(p["birth_date"]) for p in PEOPLE] + [str(c["amount"]) for c in CASES]
    spans = finished(traced)
    assert spans
    for span in spans:
        for text in texts(span):
            assert not ID_NUMBER.search(text), (span.name, text)
            assert "Residents" not in text and "registryPersons" not in text and "{" not in text, (span.name, text)
            for value in personal:
                assert value not in text, (span.name, text)


def test_a_failed_department_read_is_a_failed_span_with_its_reason(traced: ObservedHub) -> None:
    traced.welfare.down = True
    traced.query("app", "{ welfareCases { nodes { caseId } } }")
    (read,) = [s for s in finished(traced) if s.name == "hub.department_read"]
    assert read.status.status_code.name == "ERROR"
    assert read.attributes is not None and read.attributes["hub.error"] == "unavailable"
    (root,) = [s for s in finished(traced) if s.name == "POST /graphql"]
    assert root.attributes is not None and root.attributes["hub.outcome"] == "partial"


def test_a_request_continues_the_caller_s_trace(traced: ObservedHub) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    traced.query("app", QUERY, {"traceparent": f"00-{trace_id}-{parent_id}-01"})
    (root,) = [s for s in finished(traced) if s.name == "POST /graphql"]
    assert f"{root.context.trace_id:032x}" == trace_id
    assert root.parent is not None and f"{root.parent.span_id:016x}" == parent_id


def test_tracing_is_off_by_default() -> None:
    settings = load_settings({})
    assert not settings.observe.tracing.enabled
