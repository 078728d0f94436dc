"""Requests in flight per caller: past its limit a caller's request waits briefly for one of its
own to end, then gets 429 with the rate limit's LIMIT_EXCEEDED body (`scope: "concurrency"`);
other callers are not held back, and a slot is free again once its request is answered."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from connectors.base import Filter, Page, Query, TableSpec
from connectors.memory import MemoryConnector
from hub.access.plan import ReleaseEverything
from hub.app import create_app
from hub.catalog import Catalog
from hub.config import load_settings
from hub.services import build_services
from tests.conftest import FIXTURES, TEST_MASTER_KEY, memory_connectors, refusals_in_trail, register

HELD = "{ welfareCases { nodes { caseId } } }"
FREE = "{ registryPersons { totalCount } }"


class Held:
    """Welfare's connector, whose reads wait until the test opens the gate."""

    def __init__(self, inner: MemoryConnector) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.waiting = 0

    async def _wait(self) -> None:
        self.waiting += 1
        # Opened from the test's thread, not the app's event loop.
        await asyncio.to_thread(self.gate.wait)
        self.waiting -= 1

    async def fetch(self, query: Query) -> Page:
        await self._wait()
        return await self.inner.fetch(query)

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        await self._wait()
        return await self.inner.count(table, where)

    async def fetch_by(self, *args: Any, **options: Any) -> Page:
        await self._wait()
        return await self.inner.fetch_by(*args, **options)

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class Limited:
    client: TestClient
    tokens: dict[str, str]
    welfare: Held
    pool: ThreadPoolExecutor

    def post(self, who: str, query: str = FREE) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.post("/graphql", json={"query": query}, headers=headers)

    def hold(self, who: str, count: int) -> list[Future[httpx.Response]]:
        """`count` requests of `who` left in flight (their reads wait at the gate)."""
        before = self.welfare.waiting
        held = [self.pool.submit(self.post, who, HELD) for _ in range(count)]
        deadline = time.monotonic() + 10
        while self.welfare.waiting < before + count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.welfare.waiting == before + count
        return held


def limited_hub(hub_db: URL, small_catalog: Catalog, wait: float) -> Iterator[Limited]:
    """Department apps may have 2 requests in flight; past that one waits `wait` seconds."""
    settings = load_settings(
        {},
        database_url=hub_db.render_as_string(),
        manifests_dir=FIXTURES / "manifests",
        master_key=TEST_MASTER_KEY,
        concurrency_limits={"department_app": 2},
        concurrency_wait_seconds=wait,
    )
    connectors: dict[str, Any] = dict(memory_connectors())
    welfare = Held(connectors["welfare"])
    connectors["welfare"] = welfare
    services = build_services(settings, catalog=small_catalog, connectors=connectors, policy=ReleaseEverything())
    tokens = {"a": register(hub_db, "app-a", "welfare"), "b": register(hub_db, "app-b", "welfare")}
    with TestClient(create_app(services)) as client, ThreadPoolExecutor(8) as pool:
        try:
            yield Limited(client, tokens, welfare, pool)
        finally:
            welfare.gate.set()


@pytest.fixture
def no_wait(hub_db: URL, small_catalog: Catalog) -> Iterator[Limited]:
    yield from limited_hub(hub_db, small_catalog, 0)


@pytest.fixture
def brief_wait(hub_db: URL, small_catalog: Catalog) -> Iterator[Limited]:
    yield from limited_hub(hub_db, small_catalog, 5)


def test_a_request_past_the_callers_limit_gets_429_with_scope_concurrency(no_wait: Limited) -> None:
    held = no_wait.hold("a", 2)
    refused = no_wait.post("a")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    body = refused.json()
    assert body["data"] is None
    (error,) = body["errors"]
    extensions = error["extensions"]
    assert extensions == {"code": "LIMIT_EXCEEDED", "limit": 2, "used": 2, "requested": 1, "scope": "concurrency"}
    assert "2 at once" in error["message"]
    no_wait.welfare.gate.set()
    assert [future.result().status_code for future in held] == [200, 200]
    # Answered, they hold no slot: the caller may send again.
    assert no_wait.post("a").status_code == 200


def test_a_request_refused_for_too_many_in_flight_is_an_event_of_the_trail_naming_the_limit(
    no_wait: Limited, hub_db: URL
) -> None:
    held = no_wait.hold("a", 2)
    assert no_wait.post("a").status_code == 429
    no_wait.welfare.gate.set()
    assert [future.result().status_code for future in held] == [200, 200]
    events = sorted((status, code, limit) for _, status, code, limit in refusals_in_trail(hub_db))
    assert events == [(200, None, None), (200, None, None), (429, "LIMIT_EXCEEDED", "concurrency")]


def test_another_caller_is_not_held_back_by_one_at_its_limit(no_wait: Limited) -> None:
    held = no_wait.hold("a", 2)
    assert no_wait.post("b").status_code == 200
    no_wait.welfare.gate.set()
    assert [future.result().status_code for future in held] == [200, 200]


def test_a_request_past_the_limit_waits_for_one_of_the_callers_own_to_end(brief_wait: Limited) -> None:
    held = brief_wait.hold("a", 2)
    waiting = brief_wait.pool.submit(brief_wait.post, "a")
    time.sleep(0.3)
    assert not waiting.done()
    brief_wait.welfare.gate.set()
    assert waiting.result().status_code == 200
    assert [future.result().status_code for future in held] == [200, 200]
