"""The guarded connector: a read that outlives the department's deadline is unavailable at the
deadline, unavailable reads open the breaker, an open breaker answers without asking the
database, and after the cool-down exactly one read probes it however many arrive together."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from connectors.base import ColumnSpec, Filter, Kind, Page, Query, QueryError, TableSpec, UnavailableError
from hub.health.breaker import Breaker, BreakerSettings, Circuit
from hub.health.guard import DEADLINE_MARGIN_S, CircuitOpenError, GuardedConnector

TABLE = TableSpec("t", "id", {"id": ColumnSpec("id", Kind.INT)})
QUERY = Query(TABLE, ("id",))


class Database:
    """A department database the test steers: answers, fails, refuses, or hangs."""

    def __init__(self) -> None:
        self.mode = "answer"
        self.calls = 0
        self.release = asyncio.Event()

    async def _serve(self) -> Page:
        self.calls += 1
        if self.mode == "down":
            raise UnavailableError("the department database is unavailable", "ConnectionRefusedError: unreachable")
        if self.mode == "refuse":
            raise QueryError("the department database refused the query")
        if self.mode == "hang":
            await asyncio.sleep(3600)
        if self.mode == "wait":
            await self.release.wait()
        return Page([{"id": 1}])

    async def fetch(self, query: Query) -> Page:
        return await self._serve()

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        return (await self._serve()).count

    async def fetch_by(self, *args: Any, **kwargs: Any) -> Any:
        return await self._serve()

    async def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def guarded(database: Database, clock: Clock | None = None, timeout_ms: int = 100) -> GuardedConnector:
    breaker = Breaker("welfare", BreakerSettings(failures=3, window_s=30, cooldown_s=10), clock or Clock())
    return GuardedConnector("welfare", database, breaker, timeout_ms)


async def test_a_read_that_hangs_is_unavailable_at_the_deadline() -> None:
    database = Database()
    database.mode = "hang"
    connector = guarded(database, timeout_ms=100)
    started = time.monotonic()
    with pytest.raises(UnavailableError) as caught:
        await connector.fetch(QUERY)
    elapsed = time.monotonic() - started
    assert 0.1 + DEADLINE_MARGIN_S <= elapsed < 0.1 + DEADLINE_MARGIN_S + 0.3
    assert str(caught.value) == "the department database did not answer within 100 ms"
    assert "deadline" in caught.value.reason
    assert connector.breaker.failures == 1


@pytest.mark.parametrize("call", ["fetch", "count", "fetch_by"])
async def test_unavailable_reads_of_any_kind_open_the_breaker(call: str) -> None:
    database = Database()
    database.mode = "down"
    connector = guarded(database)
    reads = {
        "fetch": lambda: connector.fetch(QUERY),
        "count": lambda: connector.count(TABLE, None),
        "fetch_by": lambda: connector.fetch_by(TABLE, "id", [1], ["id"]),
    }
    for _ in range(3):
        with pytest.raises(UnavailableError):
            await reads[call]()
    assert connector.breaker.circuit is Circuit.OPEN
    with pytest.raises(CircuitOpenError) as refused:
        await reads[call]()
    assert database.calls == 3  # the refused read never reached the database
    assert "circuit open" in refused.value.reason


async def test_a_refused_query_shows_the_database_is_there() -> None:
    database = Database()
    database.mode = "refuse"
    connector = guarded(database)
    for _ in range(5):
        with pytest.raises(QueryError):
            await connector.fetch(QUERY)
    assert (connector.breaker.circuit, connector.breaker.failures) == (Circuit.CLOSED, 0)


async def test_a_cancelled_read_counts_neither_way() -> None:
    database = Database()
    database.mode = "hang"
    connector = guarded(database, timeout_ms=10_000)
    read = asyncio.create_task(connector.fetch(QUERY))
    await asyncio.sleep(0.01)
    read.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    assert (connector.breaker.circuit, connector.breaker.failures) == (Circuit.CLOSED, 0)


async def test_after_the_cool_down_only_one_of_many_concurrent_reads_probes() -> None:
    clock = Clock()
    database = Database()
    database.mode = "down"
    connector = guarded(database, clock, timeout_ms=5_000)
    for _ in range(3):
        with pytest.raises(UnavailableError):
            await connector.fetch(QUERY)
    clock.now += 10
    database.mode, database.calls = "wait", 0
    reads = [asyncio.create_task(connector.fetch(QUERY)) for _ in range(10)]
    await asyncio.sleep(0.05)
    # Nine were refused at once while the probe waits on the database.
    assert database.calls == 1
    assert sum(read.done() for read in reads) == 9
    assert all(isinstance(read.exception(), CircuitOpenError) for read in reads if read.done())
    database.release.set()
    probe = next(read for read in reads if not read.done())
    assert (await probe).count == 1
    assert connector.breaker.circuit is Circuit.CLOSED
    assert (await connector.fetch(QUERY)).count == 1
    assert database.calls == 2
