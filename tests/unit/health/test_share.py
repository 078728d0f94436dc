"""A department's connections shared between requests: one request holds at most all but one of
them, a freed connection goes to the waiting request that holds the fewest, and a read that
waits is bounded by its deadline like any other."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from connectors.base import ColumnSpec, Filter, Kind, Page, Query, TableSpec, UnavailableError
from hub.health.breaker import Breaker, BreakerSettings
from hub.health.guard import DEADLINE_MARGIN_S, GuardedConnector
from hub.health.share import Share, new_owner

TABLE = TableSpec("t", "id", {"id": ColumnSpec("id", Kind.INT)})
QUERY = Query(TABLE, ("id",))


class Database:
    """Holds every read until the test lets it go; records which request each read came from."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}

    async def fetch(self, query: Query) -> Page:
        name = _name.get()
        self.running.append(name)
        gate = self.gates.setdefault(name, asyncio.Event())
        await gate.wait()
        self.running.remove(name)
        return Page([{"id": 1}])

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        return (await self.fetch(QUERY)).count

    async def fetch_by(self, *args: Any, **kwargs: Any) -> Page:
        return await self.fetch(QUERY)

    async def close(self) -> None:
        pass


_name: contextvars.ContextVar[str] = contextvars.ContextVar("test_request_name", default="")


def guarded(database: Database, pool_size: int = 5, timeout_ms: int = 5000) -> GuardedConnector:
    breaker = Breaker("welfare", BreakerSettings(failures=3, window_s=30, cooldown_s=10))
    return GuardedConnector("welfare", database, breaker, timeout_ms, pool_size)


def request(name: str, reads: int, read: Callable[[], Awaitable[Page]]) -> asyncio.Task[list[Page]]:
    """A request of `reads` reads at once, each in a task of its own (as graphql-core runs
    fields), all under one owner."""

    async def run() -> list[Page]:
        new_owner()
        _name.set(name)
        return list(await asyncio.gather(*(read() for _ in range(reads))))

    return asyncio.get_running_loop().create_task(run())


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_one_request_holds_at_most_all_connections_but_one() -> None:
    database = Database()
    connector = guarded(database, pool_size=5)
    heavy = request("heavy", 8, lambda: connector.fetch(QUERY))
    await settle()
    assert database.running.count("heavy") == 4
    lookup = request("lookup", 1, lambda: connector.fetch(QUERY))
    await settle()
    # The fifth connection serves another caller's lookup at once, ahead of the heavy
    # request's four reads still waiting.
    assert database.running.count("lookup") == 1
    database.gates["lookup"].set()
    assert len(await lookup) == 1
    database.gates["heavy"].set()
    assert len(await heavy) == 8
    assert connector.share.free == 5
    assert connector.share.held == {}


async def test_a_freed_connection_goes_to_the_waiting_request_that_holds_fewest() -> None:
    database = Database()
    connector = guarded(database, pool_size=3)
    # Three reads of the first request: two run (its cap), the third waits.
    first = request("first", 3, lambda: connector.fetch(QUERY))
    await settle()
    second = request("second", 1, lambda: connector.fetch(QUERY))
    await settle()
    assert sorted(database.running) == ["first", "first", "second"]
    third = request("third", 1, lambda: connector.fetch(QUERY))
    await settle()
    database.gates["second"].set()
    await second
    await settle()
    # The connection `second` gave back went to `third`, which held none, not to the first
    # request's read that had waited longer.
    assert sorted(database.running) == ["first", "first", "third"]
    database.gates["third"].set()
    await third
    database.gates["first"].set()
    assert len(await first) == 3
    assert connector.share.free == 3


async def test_a_pool_of_one_connection_is_shared_in_turn() -> None:
    database = Database()
    connector = guarded(database, pool_size=1)
    one = request("one", 2, lambda: connector.fetch(QUERY))
    await settle()
    assert database.running == ["one"]
    database.gates["one"].set()
    assert len(await one) == 2
    assert connector.share.free == 1


async def test_a_read_waiting_for_a_connection_is_unavailable_at_its_deadline() -> None:
    database = Database()
    connector = guarded(database, pool_size=1, timeout_ms=100)
    holder = request("holder", 1, lambda: connector.fetch(QUERY))
    await settle()
    started = time.monotonic()
    waiting = request("waiting", 1, lambda: connector.fetch(QUERY))
    with pytest.raises(UnavailableError):
        await waiting
    assert time.monotonic() - started < 0.1 + DEADLINE_MARGIN_S + 0.3
    assert connector.share.waiting == []
    # The holder's own read was late too, and gave its connection back when cancelled.
    with pytest.raises(UnavailableError):
        await holder
    assert connector.share.free == 1
    assert connector.share.held == {}


async def test_a_read_cancelled_while_waiting_leaves_the_queue_and_one_handed_over_is_passed_on() -> None:
    share = Share(1)
    share.take("a")
    waiting = asyncio.get_running_loop().create_task(share.wait("b"))
    await settle()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert share.waiting == []
    # Handed over, then cancelled before it ran: the connection goes to the next in line.
    handed = asyncio.get_running_loop().create_task(share.wait("b"))
    after = asyncio.get_running_loop().create_task(share.wait("c"))
    await settle()
    share.give("a")
    handed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handed
    await after
    assert share.held == {"c": 1}
    assert share.free == 0
