"""The event of an answer is queued before the answer is encoded and written while it is
(hub/audit/trail.py, `start`): the answer still leaves only once its event is durable, no data
leaves when the event cannot be written, and a fault while encoding is still one event per
request: the failed one while no flush has taken the event queued, else that event alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL

import hub.app as app_module
import schema.execution.run as run_module
from hub.audit.models import AuditEvent
from hub.audit.writer import TrailWriter
from hub.catalog import Catalog
from tests.conftest import Hub, serve_small_hub
from tests.unit.audit.test_trail import PEOPLE, execute, rows

# Long enough for a flush on a loaded machine; a test waits this long only when it is to fail.
PATIENCE_S = 5.0


@pytest.fixture
def trail_hub(hub_db: URL, small_catalog: Catalog) -> Iterator[Hub]:
    yield from serve_small_hub(hub_db, small_catalog, {"HUB_ACCESS_LOG": "off"})


@pytest.fixture
def large(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer takes the large answers' path: encoded in slices, with turns between."""
    monkeypatch.setattr(run_module, "LARGE_REQUEST_VALUES", 0)


class Flushes:
    """What happened, in order ("written" as each flush of the trail commits)."""

    def __init__(self) -> None:
        self.happened: list[str] = []
        self.written = asyncio.Event()

    async def first(self) -> None:
        """Until a flush has committed (a while at most)."""
        async with asyncio.timeout(PATIENCE_S):
            await self.written.wait()


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> Flushes:
    seen = Flushes()
    write = TrailWriter._write

    async def noted(self: TrailWriter, staged: Any) -> int:
        first = await write(self, staged)
        seen.happened.append("written")
        seen.written.set()
        return first

    monkeypatch.setattr(TrailWriter, "_write", noted)
    return seen


def _post(hub: Hub, query: str = PEOPLE) -> httpx.Response:
    """As a server answers: a fault of the hub's is its 500, not an exception in the test."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=hub.client.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
            return await client.post(
                "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {hub.token}"}
            )

    assert hub.client.portal is not None
    return hub.client.portal.call(send)


def test_a_large_answers_event_is_written_while_its_body_is_encoded(
    trail_hub: Hub, large: None, flushes: Flushes, monkeypatch: pytest.MonkeyPatch
) -> None:
    encode = app_module.encoded_slices

    async def encoding(value: Any) -> list[bytes]:
        # The encoding waits (a while at most) for the event's flush: under way already.
        with contextlib.suppress(TimeoutError):
            await flushes.first()
        flushes.happened.append("encoded")
        return await encode(value)

    monkeypatch.setattr(app_module, "encoded_slices", encoding)
    served = trail_hub.query(PEOPLE)
    assert served["data"]["registryPersons"]["nodes"]
    assert flushes.happened == ["written", "encoded"]
    assert [(e.outcome, e.status) for e in rows(trail_hub.url, AuditEvent)] == [("served", 200)]


@pytest.mark.parametrize("size", ["small", "large"])
def test_a_fault_while_encoding_is_one_event_with_the_failed_outcome(
    trail_hub: Hub, size: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if size == "large":
        monkeypatch.setattr(run_module, "LARGE_REQUEST_VALUES", 0)

        async def failing(_: Any) -> list[bytes]:
            raise RuntimeError("the encoder broke")

        monkeypatch.setattr(app_module, "encoded_slices", failing)
    else:
        render = app_module.JSON.render

        def failing_render(self: Any, content: Any) -> bytes:
            if isinstance(content, dict) and content.get("data"):
                raise RuntimeError("the encoder broke")
            return render(self, content)

        monkeypatch.setattr(app_module.JSON, "render", failing_render)
    response = _post(trail_hub)
    assert response.status_code == 500
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
    assert "110105" not in response.text
    events = rows(trail_hub.url, AuditEvent)
    assert [(e.outcome, e.status, e.code) for e in events] == [("failed", 500, "INTERNAL")]
    # What the request had read is still on record, as for any failed request.
    assert events[0].persons > 0
    # The next request is one event of its own.
    monkeypatch.undo()
    assert trail_hub.query(PEOPLE)["data"]["registryPersons"]["nodes"]
    assert [e.outcome for e in rows(trail_hub.url, AuditEvent)] == ["failed", "served"]


def test_a_fault_while_encoding_after_the_event_was_written_adds_no_second_event(
    trail_hub: Hub, large: None, flushes: Flushes, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing(_: Any) -> list[bytes]:
        await flushes.first()
        raise RuntimeError("the encoder broke")

    monkeypatch.setattr(app_module, "encoded_slices", failing)
    response = _post(trail_hub)
    assert response.status_code == 500 and "110105" not in response.text
    # The event was written as the answer was decided; the fault is not a second one.
    assert [e.outcome for e in rows(trail_hub.url, AuditEvent)] == ["served"]


def test_no_large_answer_leaves_when_the_trail_cannot_be_written(trail_hub: Hub, large: None) -> None:
    execute(trail_hub.url, "DROP TABLE hub_audit_person")
    response = _post(trail_hub)
    assert response.status_code == 503
    body = response.json()
    assert body["data"] is None and body["errors"][0]["extensions"]["reason"] == "AUDIT_UNAVAILABLE"
    assert "110105" not in response.text


def test_an_event_the_log_cannot_hold_withholds_the_large_answer_it_was_queued_for(
    trail_hub: Hub, large: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A request's own event refused at once (here: a blind index that is no blind index).
    monkeypatch.setattr(
        "hub.access.record.AccessRecord.persons_entities", lambda _: {"110105199001011234": "registry.Person"}
    )
    response = _post(trail_hub)
    assert response.status_code == 503 and "110105" not in response.text
    assert rows(trail_hub.url, AuditEvent) == []
