"""The trail's group commit (hub/audit/writer.py): concurrent requests share flushes, every
event lands once at the position its request was told, in the order the events were queued, and
the log verifies; a flush waits for requests still in flight, never for nobody; a failed write
refuses every request of its group and loses none of the next; an event the log cannot hold
fails its own request only."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL

from hub.audit.event import Event
from hub.audit.models import AuditEvent
from hub.audit.rows import Unfit, stage
from hub.audit.store import TrailUnavailable
from hub.audit.verify import verify_log
from hub.audit.writer import Pending, TrailWriter
from hub.db.engine import hub_engine, sessions
from hub.migrate import upgrade

# Long enough that a flush which waited for its window could not finish inside the test's own bound.
FOREVER_MS = 600_000.0
BOUND_S = 30.0


def event(n: int, principal: str = "auditor", operation_name: str | None = None) -> Event:
    return Event(
        at_us=1_765_000_000_000_000 + n,
        principal=principal,
        department="audit",
        purpose="audit",
        operation_hash=f"{n:064x}",
        operation_name=operation_name,
        document_id=None,
        outcome="served",
        status=200,
        code=None,
        policy_version="7",
        released={"fields": [["registry.Person", "name", "PLAIN", 1]], "rows": {"registry.Person": 1}},
        persons={f"{n:064x}": "registry.Person"},
    )


@pytest.fixture
def url(tmp_path: Path) -> URL:
    url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "hub.db"))
    upgrade(url)  # alembic runs its own event loop: before ours
    return url


@pytest.fixture(params=["sqlite thread", "sqlite process", "sqlalchemy"])
def through(request: pytest.FixtureRequest) -> str:
    """The flush on SQLite's own thread, in the writer's process (hub/audit/flush_process.py),
    and through SQLAlchemy as on PostgreSQL."""
    return str(request.param)


async def opened(url: URL, through: str, gather_ms: float) -> tuple[Any, TrailWriter]:
    engine = hub_engine(url)
    writer = TrailWriter(engine, gather_ms=gather_ms, process=through == "sqlite process")
    if through == "sqlalchemy":
        writer._flusher = None
    return engine, writer


async def stored(url: URL) -> list[tuple[int, str, str | None]]:
    """(position, operation hash, operation name) of every stored event, and the log verifies."""
    engine = hub_engine(url)
    try:
        report = await verify_log(sessions(engine), None)
        assert report.ok, report.findings[:3]
        async with engine.connect() as connection:
            found = await connection.execute(
                select(AuditEvent.position, AuditEvent.operation_hash, AuditEvent.operation_name).order_by(
                    AuditEvent.position
                )
            )
            return [(p, h, n) for p, h, n in found]
    finally:
        await engine.dispose()


async def request(writer: TrailWriter, made: Event, work_turns: int) -> int:
    """A request as the app makes one: begun, some work, its event, ended."""
    flight = writer.begin()
    try:
        for _ in range(work_turns):
            await asyncio.sleep(0)
        return await writer.append(made, flight)
    finally:
        writer.end(flight)


def run(work: Callable[[], Any]) -> Any:
    return asyncio.run(asyncio.wait_for(work(), BOUND_S))


def test_concurrent_requests_share_flushes_and_each_gets_its_own_position(url: URL, through: str) -> None:
    async def work() -> tuple[list[int], int, int]:
        engine, writer = await opened(url, through, 5.0)
        try:
            positions = await asyncio.gather(*(request(writer, event(n), n % 7) for n in range(60)))
            return positions, writer.flushes, writer.events
        finally:
            await writer.close()
            await engine.dispose()

    positions, flushes, events = run(work)
    assert sorted(positions) == list(range(60))
    assert events == 60 and flushes < 20
    # Each request was told the position its own event holds.
    rows = asyncio.run(stored(url))
    assert [h for _, h, _ in rows] == [f"{n:064x}" for n in sorted(range(60), key=lambda n: positions[n])]


def test_events_are_written_in_the_order_they_were_queued(url: URL, through: str) -> None:
    async def work() -> list[int]:
        engine, writer = await opened(url, through, 5.0)
        try:
            tasks = []
            for n in range(30):
                tasks.append(asyncio.create_task(writer.append(event(n))))
                await asyncio.sleep(0)  # queued one after the other, across several flushes
            return list(await asyncio.gather(*tasks))
        finally:
            await writer.close()
            await engine.dispose()

    assert run(work) == list(range(30))
    assert [h for _, h, _ in asyncio.run(stored(url))] == [f"{n:064x}" for n in range(30)]


def test_a_lone_request_is_written_without_waiting_for_the_window(url: URL) -> None:
    async def work() -> int:
        engine, writer = await opened(url, "sqlite thread", FOREVER_MS)
        try:
            return await request(writer, event(0), 3)
        finally:
            await writer.close()
            await engine.dispose()

    assert run(work) == 0


def test_a_flush_waits_for_a_request_in_flight_and_writes_both_at_once(url: URL) -> None:
    async def work() -> tuple[bool, list[int], int]:
        engine, writer = await opened(url, "sqlite thread", FOREVER_MS)
        try:
            flight = writer.begin()  # the second request has begun, its event not yet made
            first = asyncio.create_task(request(writer, event(0), 0))
            for _ in range(50):
                await asyncio.sleep(0)
            waited = not first.done()
            second = await writer.append(event(1), flight)
            writer.end(flight)
            return waited, [await first, second], writer.flushes
        finally:
            await writer.close()
            await engine.dispose()

    waited, positions, flushes = run(work)
    assert waited and positions == [0, 1] and flushes == 1


def test_a_request_that_ends_without_an_event_stops_the_wait(url: URL) -> None:
    async def work() -> int:
        engine, writer = await opened(url, "sqlite thread", FOREVER_MS)
        try:
            flight = writer.begin()  # a request that will end with nothing to record (no principal)
            first = asyncio.create_task(request(writer, event(0), 0))
            for _ in range(5):
                await asyncio.sleep(0)
            writer.end(flight)
            return await first
        finally:
            await writer.close()
            await engine.dispose()

    assert run(work) == 0


def test_a_failed_write_refuses_every_request_of_its_group_and_the_next_ones_are_written(
    url: URL, through: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def work() -> tuple[list[Any], list[int]]:
        engine, writer = await opened(url, through, 5.0)
        real = writer._write
        failures = [1]

        async def failing_once(staged: Any) -> int:
            if failures:
                failures.pop()
                await asyncio.sleep(0.01)  # the others join this flush's group meanwhile
                raise OSError("disk I/O error")
            return await real(staged)

        monkeypatch.setattr(writer, "_write", failing_once)
        try:
            # Queued together: one group, whose write fails.
            refused = await asyncio.gather(*(writer.append(event(n)) for n in range(8)), return_exceptions=True)
            after = [await writer.append(event(n)) for n in range(8, 11)]
            return refused, after
        finally:
            await writer.close()
            await engine.dispose()

    refused, after = run(work)
    assert all(isinstance(outcome, TrailUnavailable) for outcome in refused)
    # Nothing of the failed group was written, and the log goes on without a gap.
    assert after == [0, 1, 2]
    assert [h for _, h, _ in asyncio.run(stored(url))] == [f"{n:064x}" for n in range(8, 11)]


@pytest.mark.parametrize(
    "unfit",
    [
        event(99, operation_name="x" * 201),
        event(99, principal="p\x00"),
        event(99, principal="x" * 101),
        # A lone surrogate has no UTF-8: no database (nor JSON) can take it.
        event(99, operation_name="People\ud800"),
        # A person's blind index is stored as the 32 bytes its lower-case hex spells: any other
        # text could not be shown back as the very hex the persons digest was made of.
        replace(event(99), persons={"ab" * 31: "registry.Person"}),
        replace(event(99), persons={"ab" * 33: "registry.Person"}),
        replace(event(99), persons={"AB" * 32: "registry.Person"}),
        replace(event(99), persons={"zz" * 32: "registry.Person"}),
        replace(event(99), persons={"ab " * 21 + "a": "registry.Person"}),
        replace(event(99), persons={f"{1:064x}": "registry.Person", "resident 110101199001011234": "x"}),
    ],
    ids=[
        "operation name too long",
        "U+0000",
        "principal too long",
        "lone surrogate",
        "blind index too short",
        "blind index too long",
        "blind index upper case",
        "blind index not hex",
        "blind index spaced",
        "a plain number beside a blind index",
    ],
)
# Staging is the hub's own (before any flush, wherever flushes run): the writer's process adds nothing here.
@pytest.mark.parametrize("through", ["sqlite thread", "sqlalchemy"])
def test_an_event_the_log_cannot_hold_fails_its_own_request_only(url: URL, through: str, unfit: Event) -> None:
    async def work() -> list[Any]:
        engine, writer = await opened(url, through, 5.0)
        try:
            requests = [request(writer, event(n), 1) for n in range(4)]
            requests.insert(2, request(writer, unfit, 1))
            return list(await asyncio.gather(*requests, return_exceptions=True))
        finally:
            await writer.close()
            await engine.dispose()

    outcomes = run(work)
    assert isinstance(outcomes[2], TrailUnavailable)
    others = [o for i, o in enumerate(outcomes) if i != 2]
    assert sorted(others) == [0, 1, 2, 3]
    rows = asyncio.run(stored(url))
    assert sorted(h for _, h, _ in rows) == [f"{n:064x}" for n in range(4)]
    assert all(name is None for _, _, name in rows)


def test_a_writer_closed_twice_closes_once_and_refuses_later_events_as_unavailable(url: URL) -> None:
    # A refused reload closes its services through the app's lifespan and again in its clean-up.
    async def work() -> None:
        engine, writer = await opened(url, "sqlite thread", gather_ms=0.0)
        try:
            assert writer._flusher is not None
            await writer.append(event(1))
            await writer.close()
            await writer.close()
            with pytest.raises(TrailUnavailable):
                await writer.append(event(2))
        finally:
            await engine.dispose()

    run(work)
    assert [p for p, _, _ in asyncio.run(stored(url))] == [0]


def test_an_event_queued_early_can_be_replaced_until_a_flush_takes_it(url: URL) -> None:
    async def work() -> tuple[bool, bool, list[int]]:
        engine, writer = await opened(url, "sqlite thread", gather_ms=0.0)
        try:
            early = writer.enqueue(event(1))
            # Nothing ran since it was queued: the flush has not taken it.
            amended = early.amend(event(2, operation_name="failed"))
            first = await early.wait()
            later = writer.enqueue(event(3))
            await asyncio.sleep(0)  # one turn: the flush takes it
            assert later.taken
            too_late = later.amend(event(4))
            second = await later.wait()
            return amended, too_late, [first, second]
        finally:
            await writer.close()
            await engine.dispose()

    amended, too_late, positions = run(work)
    assert (amended, too_late, positions) == (True, False, [0, 1])
    assert asyncio.run(stored(url)) == [(0, f"{2:064x}", "failed"), (1, f"{3:064x}", None)]


def test_an_event_its_request_no_longer_waits_for_is_written_and_the_flush_waits_for_nobody(url: URL) -> None:
    async def work() -> tuple[int, bool]:
        engine, writer = await opened(url, "sqlite thread", gather_ms=FOREVER_MS)
        try:
            flight = writer.begin()
            gone = writer.enqueue(event(1), flight)
            # Its request was cancelled before it waited: it ends, and closes its wait.
            gone.close()
            writer.end(flight)
            position = await gone.future
            return position, writer._coming()
        finally:
            await writer.close()
            await engine.dispose()

    assert run(work) == (0, False)
    assert [p for p, _, _ in asyncio.run(stored(url))] == [0]


def test_a_flush_does_not_wait_for_a_request_running_longer_than_the_young_window(url: URL) -> None:
    # A heavy request (an auditor's long lists) has been running for a while: a small request's
    # flush must not wait the gathering window for its event (issue 13's fairness).
    async def work() -> tuple[int, float]:
        engine = hub_engine(url)
        writer = TrailWriter(engine, gather_ms=5_000, young_ms=20)
        try:
            heavy = writer.begin()
            await asyncio.sleep(0.05)  # older than the young window
            started = time.perf_counter()
            position = await request(writer, event(0), 0)
            writer.end(heavy)
            return position, time.perf_counter() - started
        finally:
            await writer.close()
            await engine.dispose()

    position, seconds = run(work)
    assert position == 0 and seconds < 2.5


def test_a_flush_still_waits_for_a_request_begun_within_the_young_window(url: URL) -> None:
    async def work() -> tuple[bool, list[int], int]:
        engine = hub_engine(url)
        writer = TrailWriter(engine, gather_ms=FOREVER_MS, young_ms=60_000)
        try:
            other = writer.begin()
            first = asyncio.create_task(request(writer, event(0), 0))
            await asyncio.sleep(0.05)
            waited = not first.done()
            second = await writer.append(event(1), other)
            writer.end(other)
            return waited, [await first, second], writer.flushes
        finally:
            await writer.close()
            await engine.dispose()

    waited, positions, flushes = run(work)
    assert waited and positions == [0, 1] and flushes == 1


def test_a_waiter_is_answered_on_the_loops_next_turn_after_its_flush() -> None:
    # Beside a heavy request a turn of the loop can take 10-20 ms (issue 13's fairness): the
    # flush's answer reaches its request in one turn, not two (asyncio.shield took two).
    async def work() -> tuple[bool, int]:
        loop = asyncio.get_running_loop()
        pending = Pending(stage(event(0)), loop.create_future())
        waiting = asyncio.create_task(pending.wait())
        await asyncio.sleep(0)  # the request is waiting
        pending.future.set_result(7)  # as the flush does once its transaction committed
        await asyncio.sleep(0)  # one turn
        return waiting.done(), await waiting

    assert asyncio.run(work()) == (True, 7)


def test_an_event_whose_request_is_cancelled_while_waiting_is_written_and_the_next_request_too(url: URL) -> None:
    async def work() -> tuple[bool, int]:
        engine, writer = await opened(url, "sqlite thread", gather_ms=0.0)
        try:
            gone = writer.enqueue(event(1))
            waiting = asyncio.create_task(gone.wait())
            await asyncio.sleep(0)
            waiting.cancel()  # the client went away while the event was being written
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await writer.drain()
            return gone.taken, await writer.append(event(2))
        finally:
            await writer.close()
            await engine.dispose()

    taken, position = run(work)
    assert taken
    # Both events are in the log, in order, the cancelled request's first.
    assert [(p, h) for p, h, _ in asyncio.run(stored(url))] == [(0, f"{1:064x}"), (1, f"{2:064x}")]
    assert position == 1


@pytest.mark.parametrize(
    ("change", "fault"),
    [
        ({"operation_name": "查询个人记录"}, None),
        ({"operation_name": "x" * 200}, None),
        ({"operation_name": "x" * 201}, "the event's operation_name is longer than 200"),
        ({"purpose": "audit\x00"}, "the event's purpose holds U+0000"),
        ({"principal": "app\ud800"}, "the event's principal is not valid Unicode"),
        ({"document_id": "文" * 81}, "the event's document_id is longer than 80"),
    ],
)
def test_staging_takes_every_text_the_tables_hold_and_names_the_column_of_one_they_do_not(
    change: dict[str, str], fault: str | None
) -> None:
    unfit = replace(event(1), **change)
    if fault is None:
        assert stage(unfit).columns["operation_name"] == unfit.operation_name
    else:
        with pytest.raises(Unfit, match=re.escape(fault)):
            stage(unfit)
