"""A department's connections shared between requests: one request holds at most half of them
(its further reads wait behind its own, outside their deadline), a freed connection goes to the
waiting request that holds the fewest, and a read that waits for other requests' connections
is bounded by its deadline like any other."""

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


class Peak(Database):
    """Answers each read after a turn of the loop; records the most reads running at once."""

    def __init__(self) -> None:
        super().__init__()
        self.peak = 0

    async def fetch(self, query: Query) -> Page:
        self.running.append(_name.get())
        self.peak = max(self.peak, len(self.running))
        await asyncio.sleep(0.001)
        self.running.pop()
        return Page([{"id": 1}])


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


async def test_one_request_holds_at_most_half_the_connections() -> None:
    database = Database()
    connector = guarded(database, pool_size=5)
    heavy = request("heavy", 8, lambda: connector.fetch(QUERY))
    await settle()
    assert database.running.count("heavy") == 2
    # A second heavy request gets its two as well, and still a connection is left.
    other = request("other", 8, lambda: connector.fetch(QUERY))
    await settle()
    assert database.running.count("other") == 2
    lookup = request("lookup", 1, lambda: connector.fetch(QUERY))
    await settle()
    # The fifth connection serves another caller's lookup at once, ahead of the heavy
    # requests' twelve reads still waiting.
    assert database.running.count("lookup") == 1
    database.gates["lookup"].set()
    assert len(await lookup) == 1
    database.gates["heavy"].set()
    database.gates["other"].set()
    assert len(await heavy) == 8
    assert len(await other) == 8
    assert connector.share.free == 5
    assert connector.share.held == {}
    assert connector.share.claimed == {}
    assert connector.share.queued == {}


async def test_a_request_of_many_reads_gets_every_answer_two_at_a_time() -> None:
    database = Peak()
    connector = guarded(database, pool_size=5)
    pages = await request("many", 30, lambda: connector.fetch(QUERY))
    assert [page.rows for page in pages] == [[{"id": 1}]] * 30
    assert database.peak == 2
    assert connector.share.free == 5
    assert connector.share.claimed == {}


async def test_a_freed_connection_goes_to_the_waiting_request_that_holds_fewest() -> None:
    database = Database()
    connector = guarded(database, pool_size=4)
    # Two requests of three reads: two of each run (their cap), the third of each waits for
    # its request's slot.
    first = request("first", 3, lambda: connector.fetch(QUERY))
    await settle()
    second = request("second", 3, lambda: connector.fetch(QUERY))
    await settle()
    assert sorted(database.running) == ["first", "first", "second", "second"]
    # The pool is taken: a third request's read waits for a connection.
    third = request("third", 1, lambda: connector.fetch(QUERY))
    await settle()
    database.gates["second"].set()
    await settle()
    # A connection `second` gave back went to `third`, which held none, before the second
    # request's own third read.
    assert "third" in database.running
    database.gates["third"].set()
    await third
    database.gates["first"].set()
    assert len(await first) == 3
    assert len(await second) == 3
    assert connector.share.free == 4


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


class Slow(Database):
    """Every read takes `seconds` of the database's time."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    async def fetch(self, query: Query) -> Page:
        await asyncio.sleep(self.seconds)
        return Page([{"id": 1}])


async def test_reads_waiting_behind_their_own_request_are_not_late() -> None:
    # Each read takes 0.2 s of a 0.6 s deadline (0.1 s timeout plus the margin); the request's
    # six reads, one at a time (a pool of two, one to a request), take 1.2 s in all, and every
    # one is answered: the deadline counts a read's statement, not its turn behind its own.
    connector = guarded(Slow(0.2), pool_size=2, timeout_ms=100)
    pages = await request("many", 6, lambda: connector.fetch(QUERY))
    assert [page.rows for page in pages] == [[{"id": 1}]] * 6
    assert connector.share.claimed == {}
    assert connector.share.free == 2


async def test_a_read_cancelled_behind_its_own_request_gives_its_slot_on() -> None:
    share = Share(2)
    assert share.claim("a")
    queued = asyncio.get_running_loop().create_task(share.wait_claim("a"))
    after = asyncio.get_running_loop().create_task(share.wait_claim("a"))
    await settle()
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    share.unclaim("a")
    await after
    assert share.claimed == {"a": 1}
    share.unclaim("a")
    assert share.claimed == {}
    assert share.queued == {}
