"""The access log, one JSON line per /graphql request, and request ids: the caller's when sane,
else a new one, echoed in `X-Request-Id`."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from hub.catalog import Catalog
from tests.unit.observe.conftest import ObservedHub, serve_observed_hub

QUERY = "{ registryPersons { nodes { district } } }"
NEW_ID = re.compile(r"[0-9a-f]{32}")


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The access log's lines (a record holds a batch of them)."""
    return [
        json.loads(line) for r in caplog.records if r.name == "hub.access_log" for line in r.getMessage().split("\n")
    ]


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="hub.access_log")
    return caplog


def test_a_request_writes_one_json_line_with_its_id_caller_operation_and_outcome(
    observed: ObservedHub, logged: pytest.LogCaptureFixture
) -> None:
    response = observed.query("app", QUERY, {"X-Request-Id": "req-7f3a.b:2"})
    assert response.status_code == 200
    (line,) = lines(logged)
    assert set(line) == {
        "time",
        "request_id",
        "principal",
        "department",
        "operation",
        "document",
        "status",
        "outcome",
        "code",
        "duration_ms",
    }
    assert line["request_id"] == "req-7f3a.b:2"
    assert (line["principal"], line["department"]) == ("app", "welfare")
    assert line["operation"] == hashlib.sha256(QUERY.encode()).hexdigest()[:16]
    assert line["document"] is None
    assert (line["status"], line["outcome"], line["code"]) == (200, "ok", None)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    # The operation is named by its hash only: the text is not in the line.
    assert "registryPersons" not in json.dumps(line)


def test_a_refused_request_is_logged_with_its_status_and_code(
    observed: ObservedHub, logged: pytest.LogCaptureFixture
) -> None:
    observed.query(None, QUERY)
    observed.post("app", {"query": QUERY, "variables": []})
    unauthenticated, malformed = lines(logged)
    assert (unauthenticated["status"], unauthenticated["code"], unauthenticated["principal"]) == (
        401,
        "UNAUTHENTICATED",
        None,
    )
    assert (malformed["status"], malformed["outcome"], malformed["code"]) == (400, "refused", "BAD_USER_INPUT")
    assert malformed["principal"] == "app"


def test_the_request_id_is_echoed_on_answers_and_refusals(observed: ObservedHub) -> None:
    assert observed.query("app", QUERY, {"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    assert observed.query(None, QUERY, {"X-Request-Id": "abc-124"}).headers["X-Request-Id"] == "abc-124"


def test_a_request_without_an_id_gets_a_new_one_each_time(observed: ObservedHub) -> None:
    first = observed.query("app", QUERY).headers["X-Request-Id"]
    second = observed.query("app", QUERY).headers["X-Request-Id"]
    assert NEW_ID.fullmatch(first) and NEW_ID.fullmatch(second) and first != second


@pytest.mark.parametrize(
    "hostile",
    ["a" * 129, "abc\nforged: yes", 'abc" , "outcome": "ok', "abc def", "-leading-dash", "ünïcode"],
    ids=["too_long", "newline", "quote", "space", "leading_dash", "non_ascii"],
)
def test_a_hostile_request_id_is_replaced(
    observed: ObservedHub, logged: pytest.LogCaptureFixture, hostile: str
) -> None:
    response = observed.client.post(
        "/graphql",
        json={"query": QUERY},
        headers=[
            (b"authorization", f"Bearer {observed.tokens['app']}".encode()),
            (b"x-request-id", hostile.encode()),
        ],
    )
    echoed = response.headers["X-Request-Id"]
    assert NEW_ID.fullmatch(echoed)
    (line,) = lines(logged)
    assert line["request_id"] == echoed


def test_the_longest_sane_request_id_is_kept(observed: ObservedHub) -> None:
    kept = "a" * 128
    assert observed.query("app", QUERY, {"X-Request-Id": kept}).headers["X-Request-Id"] == kept


@pytest.fixture
def batched(hub_db: URL, small_catalog: Catalog) -> Iterator[ObservedHub]:
    yield from serve_observed_hub(hub_db, small_catalog, {"HUB_ACCESS_LOG_DELAY_MS": "100"})


def test_lines_are_written_in_a_batch_after_the_delay_in_request_order(
    batched: ObservedHub, logged: pytest.LogCaptureFixture
) -> None:
    ids = [f"batch-{n}" for n in range(3)]
    for rid in ids:
        batched.query("app", QUERY, {"X-Request-Id": rid})
    deadline = time.monotonic() + 5
    while len(lines(logged)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [line["request_id"] for line in lines(logged)] == ids


def test_the_last_lines_are_written_when_the_hub_stops(
    hub_db: URL, small_catalog: Catalog, logged: pytest.LogCaptureFixture
) -> None:
    for hub in serve_observed_hub(hub_db, small_catalog, {"HUB_ACCESS_LOG_DELAY_MS": "10000"}):
        hub.query("app", QUERY, {"X-Request-Id": "last-words"})
        assert lines(logged) == []
    assert [line["request_id"] for line in lines(logged)] == ["last-words"]


@pytest.fixture
def quiet(hub_db: URL, small_catalog: Catalog) -> Iterator[ObservedHub]:
    yield from serve_observed_hub(hub_db, small_catalog, {"HUB_ACCESS_LOG": "off"})


def test_the_access_log_can_be_turned_off(quiet: ObservedHub, logged: pytest.LogCaptureFixture) -> None:
    response = quiet.query("app", QUERY)
    assert response.status_code == 200
    assert lines(logged) == []
    assert NEW_ID.fullmatch(response.headers["X-Request-Id"])


def test_a_fault_of_the_hub_s_own_is_logged_counted_and_keeps_its_request_id(
    observed: ObservedHub, logged: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr("hub.app.read_request", broken)
    client = TestClient(observed.client.app, raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {observed.tokens['app']}", "X-Request-Id": "fault-1"}
    response = client.post("/graphql", json={"query": QUERY}, headers=headers)
    assert response.status_code == 500
    assert response.headers["X-Request-Id"] == "fault-1"
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
    (line,) = lines(logged)
    assert (line["request_id"], line["status"], line["outcome"], line["code"]) == ("fault-1", 500, "error", "INTERNAL")
    page = observed.metrics().text
    assert 'hub_requests_total{code="INTERNAL",document="other",outcome="error"} 1.0' in page
