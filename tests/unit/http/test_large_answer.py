"""A large answer is sent a slice at a time: it arrives whole and byte for byte what one
`orjson.dumps` makes, the hub holds none of it once it is sent or its client has gone, and the
request's memory is given back once the step that sent the last slice has ended, not before,
and after a request whose large reads failed as well."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy.engine import URL

import hub.encoding
import hub.large_answer
import schema.execution.run
from connectors.base import Page, Query, UnavailableError
from connectors.memory import MemoryConnector
from hub.catalog import Catalog
from hub.encoding import SLICE_BYTES, encoded_slices
from hub.large_answer import LargeJSON
from tests.conftest import Hub, serve_small_hub

PEOPLE = "{ registryPersons { nodes { idNumber name birthDate district income registeredAt children active } } }"


def answer(lists: int, rows: int) -> dict[str, Any]:
    row = {"deliveryId": "CASD000001", "amount": "5900.00", "deliveredAt": "2025-01-04T09:11:15+08:00", "n": 1}
    data = {f"l{n}": {"nodes": [dict(row, n=i) for i in range(rows)]} for n in range(lists)}
    return {"data": data, "extensions": {"access": {"policyVersion": "1", "masked": [], "truncated": []}}}


class Server:
    """The server's side of one response, as uvicorn plays it: the messages sent, and a client
    that may go away after some slices (then `send` returns at once and `receive` says so)."""

    def __init__(self, leave_after: int | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.events: list[str] = []
        self.leave_after = leave_after
        self.gone = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        if self.gone.is_set():
            return
        self.messages.append(message)
        self.events.append("slice" if message["type"] == "http.response.body" else "start")
        await asyncio.sleep(0)  # the transport drains: other work runs between slices
        if self.leave_after is not None and len(self.bodies) >= self.leave_after:
            self.gone.set()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    @property
    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.messages if m["type"] == "http.response.body"]


@pytest.fixture
def given_back(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(hub.large_answer, "give_back", lambda: calls.append("given back"))
    return calls


async def test_a_large_answer_arrives_whole_and_byte_identical_in_slices(given_back: list[str]) -> None:
    value = answer(8, 5_000)
    slices = await encoded_slices(value)
    response = LargeJSON(slices, 200, None)
    server = Server()
    await response(
        {"type": "http", "method": "POST"},
        server.receive,
        server.send,  # type: ignore[arg-type]
    )
    expected = orjson.dumps(value)
    assert b"".join(server.bodies) == expected
    assert len(server.bodies) > 1
    assert all(len(body) < 2 * SLICE_BYTES for body in server.bodies)
    assert [m["more_body"] for m in server.messages[1:]] == [True] * (len(server.bodies) - 1) + [False]
    headers = dict(server.messages[0]["headers"])
    assert headers[b"content-length"] == str(len(expected)).encode()
    assert headers[b"content-type"] == b"application/json"


async def test_the_memory_is_given_back_once_the_last_slice_is_sent(given_back: list[str]) -> None:
    server = Server()
    response = LargeJSON(await encoded_slices(answer(2, 5_000), size=4096), 200, None)
    events = server.events
    await response({"type": "http", "method": "POST"}, server.receive, lambda m: _then(server.send(m), given_back))
    # Not in the step that sent the last slice, whose callers still hold the request, but
    # once that step of the request's task has ended.
    assert given_back == []
    await asyncio.sleep(0)
    assert given_back == ["given back"]
    # Every slice went out before the memory was given back.
    assert events[-1] == "slice" and len(events) == len(server.messages)


async def _then(sent: Any, given_back: list[str]) -> None:
    assert not given_back, "the memory was given back before a slice was sent"
    await sent


async def test_a_client_gone_mid_answer_gets_no_more_slices_and_the_hub_keeps_no_body(given_back: list[str]) -> None:
    slices = await encoded_slices(answer(4, 5_000), size=64 * 1024)
    assert len(slices) > 4
    response = LargeJSON(list(slices), 200, None)
    server = Server(leave_after=3)
    await response({"type": "http", "method": "POST"}, server.receive, server.send)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert len(server.bodies) == 3
    assert given_back == ["given back"]
    assert response.slices == [] and response.body == b""
    # Nothing in the response (nor anywhere else) holds a slice not sent: only this test's
    # list does, as it alone holds a slice the response never had.
    alone = [b"x" * 100_000]
    assert _references(slices[3:]) == _references(alone[:])


def _references(pieces: list[bytes]) -> set[int]:
    return {sys.getrefcount(piece) for piece in pieces}


async def test_a_cancelled_answer_still_gives_its_memory_back(given_back: list[str]) -> None:
    response = LargeJSON(await encoded_slices(answer(2, 5_000), size=4096), 200, None)
    sent = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal sent
        sent += 1
        if sent == 3:
            raise asyncio.CancelledError  # the server shuts down mid-answer

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    with pytest.raises(asyncio.CancelledError):
        await response({"type": "http", "method": "POST"}, receive, send)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert given_back == ["given back"]
    assert response.slices == []


@pytest.fixture
def small_hub(hub_db: URL, small_catalog: Catalog) -> Iterator[Hub]:
    yield from serve_small_hub(hub_db, small_catalog)


def test_the_app_sends_a_large_answer_byte_for_byte_as_a_small_one(
    small_hub: Hub, monkeypatch: pytest.MonkeyPatch, given_back: list[str]
) -> None:
    headers = {"Authorization": f"Bearer {small_hub.token}"}
    small = small_hub.client.post("/graphql", json={"query": PEOPLE}, headers=headers)
    assert given_back == []
    # Every answer large, and cut into slices of a few bytes.
    monkeypatch.setattr(schema.execution.run, "LARGE_REQUEST_VALUES", 0)
    monkeypatch.setattr(hub.encoding, "SLICE_BYTES", 16)
    large = small_hub.client.post("/graphql", json={"query": PEOPLE}, headers=headers)
    assert given_back == ["given back"]
    assert large.status_code == small.status_code == 200
    assert large.content == small.content
    assert large.headers["content-length"] == str(len(small.content))
    assert large.headers["content-type"] == small.headers["content-type"]
    assert large.headers["x-request-id"]
    assert large.json()["data"]["registryPersons"]["nodes"]


def test_a_request_whose_large_reads_failed_has_its_memory_given_back(
    small_hub: Hub, monkeypatch: pytest.MonkeyPatch, given_back: list[str]
) -> None:
    headers = {"Authorization": f"Bearer {small_hub.token}"}
    # Large from 500 values: the list asks for a page of 100 rows by 8 fields (800 values)
    # and the small catalog answers a few rows, under 500.
    monkeypatch.setattr(schema.execution.run, "LARGE_REQUEST_VALUES", 500)
    answered = small_hub.client.post("/graphql", json={"query": PEOPLE}, headers=headers)
    assert answered.json()["data"]["registryPersons"]["nodes"]
    assert given_back == []

    async def unavailable(self: MemoryConnector, query: Query) -> Page:
        raise UnavailableError("the department database is unavailable", "down for the test")

    # The read fails once it has asked for its rows (a deadline, an outage): what it fetched
    # may be left in reference cycles, so the request's memory is given back all the same.
    monkeypatch.setattr(MemoryConnector, "fetch", unavailable)
    failed = small_hub.client.post("/graphql", json={"query": PEOPLE}, headers=headers)
    assert failed.status_code == 200
    assert [e["extensions"]["code"] for e in failed.json()["errors"]] == ["DEPARTMENT_UNAVAILABLE"]
    assert given_back == ["given back"]
