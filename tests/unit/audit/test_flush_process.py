"""The trail's writer process (hub/audit/flush_process.py): a process killed during a flush
refuses that flush and the next flush starts another, the log going on without a gap; one that
died between flushes is replaced without refusing any; it stops once
the hub's end of its pipe closes (the hub died); it is never given the hub database's URL on its
command line; a database it cannot write refuses the flush without naming the file; the persons
of events touching many reach the person index from it; a flush goes at once, whatever requests
are in flight, unless a gathering window is set, and then waits for them as in the hub's own
process; a flush cancelled before
its answer ends the process, so that answer cannot be read as another flush's; Ctrl-C leaves it
to the hub to close."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from hub.audit.flush_process import ProcessFlusher
from hub.audit.rows import stage
from hub.audit.store import TrailUnavailable
from hub.audit.writer import TrailWriter
from hub.db.engine import hub_engine
from hub.migrate import upgrade
from tests.unit.audit.test_backlog import counts, crowd
from tests.unit.audit.test_writer import FOREVER_MS, event, stored

BOUND_S = 60.0


@pytest.fixture
def url(tmp_path: Path) -> URL:
    url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "hub.db"))
    upgrade(url)
    return url


def run(work: Callable[[], Any]) -> Any:
    return asyncio.run(asyncio.wait_for(work(), BOUND_S))


def _process_of(writer: TrailWriter) -> Any:
    flusher = writer._flusher
    assert isinstance(flusher, ProcessFlusher)
    process = flusher._process
    assert process is not None and process.returncode is None
    return process


def test_a_writer_process_killed_during_a_flush_refuses_it_and_the_next_flush_starts_another(url: URL) -> None:
    async def work() -> tuple[int, BaseException | int, int]:
        engine = hub_engine(url)
        writer = TrailWriter(engine, gather_ms=0.0, process=True)
        try:
            await writer.open()
            first = await writer.append(event(0))
            killed = _process_of(writer)
            # Stopped, it cannot answer: the flush is under way when it is killed.
            os.kill(killed.pid, signal.SIGSTOP)
            flushing = asyncio.create_task(writer.append(event(1)))
            await asyncio.sleep(0.3)
            assert not flushing.done()
            os.kill(killed.pid, signal.SIGKILL)
            try:
                refused: BaseException | int = await flushing
            except TrailUnavailable as exc:
                refused = exc
            later = await writer.append(event(2))
            assert _process_of(writer).pid != killed.pid
            return first, refused, later
        finally:
            await writer.close()
            await engine.dispose()

    first, refused, later = run(work)
    assert first == 0 and isinstance(refused, TrailUnavailable) and later == 1
    # The refused event was not written; the log goes on without a gap and verifies.
    assert [(p, h) for p, h, _ in asyncio.run(stored(url))] == [(0, f"{0:064x}"), (1, f"{2:064x}")]


def _signalled_between_two_flushes(url: URL, signum: int) -> tuple[list[int], bool]:
    """Two appends with `signum` sent to the writer process between them: their positions, and
    whether the same process wrote the second."""

    async def work() -> tuple[list[int], bool]:
        engine = hub_engine(url)
        writer = TrailWriter(engine, gather_ms=0.0, process=True)
        try:
            positions = [await writer.append(event(0))]
            process = _process_of(writer)
            os.kill(process.pid, signum)
            # It ends (awaited), or it ignores the signal (given half a second to act on it).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 0.5)
            positions.append(await writer.append(event(1)))
            return positions, _process_of(writer).pid == process.pid
        finally:
            await writer.close()
            await engine.dispose()

    return run(work)  # type: ignore[no-any-return]


def test_a_writer_process_that_died_between_flushes_is_replaced_and_no_flush_is_refused(url: URL) -> None:
    assert _signalled_between_two_flushes(url, signal.SIGKILL) == ([0, 1], False)
    assert [p for p, _, _ in asyncio.run(stored(url))] == [0, 1]


def test_the_writer_process_stops_once_the_hubs_end_of_its_pipe_closes(url: URL) -> None:
    async def work() -> int | None:
        engine = hub_engine(url)
        writer = TrailWriter(engine, gather_ms=0.0, process=True)
        try:
            await writer.append(event(0))
            process = _process_of(writer)
            # As when the hub dies, even by SIGKILL: its end of the pipe closes, nothing is said.
            process.stdin.close()
            code: int | None = await asyncio.wait_for(process.wait(), 20)
            return code
        finally:
            await writer.close()
            await engine.dispose()

    assert run(work) == 0
    assert [p for p, _, _ in asyncio.run(stored(url))] == [0]


def test_the_writer_process_is_not_given_the_hub_database_on_its_command_line(url: URL) -> None:
    async def work() -> bytes:
        engine = hub_engine(url)
        writer = TrailWriter(engine, gather_ms=0.0, process=True)
        try:
            await writer.open()
            return await asyncio.to_thread(Path(f"/proc/{_process_of(writer).pid}/cmdline").read_bytes)
        finally:
            await writer.close()
            await engine.dispose()

    command = run(work)
    assert b"hub.audit.flush_server" in command
    assert str(url.database).encode() not in command and b"sqlite" not in command


def test_a_database_the_writer_process_cannot_write_refuses_the_flush_without_naming_the_file(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no such folder" / "hub.db"

    async def work() -> TrailUnavailable:
        engine = hub_engine(URL.create("sqlite+aiosqlite", database=str(missing)))
        writer = TrailWriter(engine, gather_ms=0.0, process=True)
        try:
            with pytest.raises(TrailUnavailable) as refused:
                await writer.append(event(0))
            return refused.value
        finally:
            await writer.close()
            await engine.dispose()

    refusal = run(work)
    assert "no such folder" not in str(refusal) and "hub.db" not in str(refusal)
    assert not missing.exists()


def test_the_persons_of_events_touching_many_reach_the_person_index_from_the_writer_process(url: URL) -> None:
    async def work() -> list[int]:
        engine = hub_engine(url)
        writer = TrailWriter(engine, gather_ms=0.0, process=True)
        try:
            positions = [await writer.write([crowd(n, 100 + n) for n in range(5)])]
            positions.append(await writer.append(event(5)))
            return positions
        finally:
            # Closing waits for the process, which moves the backlog after each flush's answer.
            await writer.close()
            await engine.dispose()

    assert run(work) == [0, 5]
    assert asyncio.run(counts(url)) == (sum(100 + n for n in range(5)) + 1, 0)


def test_with_the_writer_process_a_flush_goes_at_once_without_waiting_for_requests_in_flight(url: URL) -> None:
    async def work() -> tuple[float, float, list[int], int]:
        engine = hub_engine(url)
        writer = TrailWriter(engine, process=True)
        try:
            await writer.open()
            flights = [writer.begin(), writer.begin()]  # two requests running, events not yet made
            # Written without waiting for them: the loop runs them while this flush is written.
            first = asyncio.create_task(writer.append(event(0)))
            for _ in range(50):
                await asyncio.sleep(0)
            gathering = writer._gathering is not None
            positions = [await first]
            positions += [await writer.append(event(n + 1), flight) for n, flight in enumerate(flights)]
            for flight in flights:
                writer.end(flight)
            return writer.gather_ms, float(gathering), positions, writer.flushes
        finally:
            await writer.close()
            await engine.dispose()

    # In the hub's process the same writer gathers for 12 ms by default.
    assert TrailWriter(hub_engine(url)).gather_ms == 12.0
    assert run(work) == (0.0, 0.0, [0, 1, 2], 3)


def test_with_the_writer_process_and_a_window_set_a_flush_waits_for_requests_in_flight(url: URL) -> None:
    async def work() -> tuple[bool, list[int], int]:
        engine = hub_engine(url)
        writer = TrailWriter(engine, gather_ms=FOREVER_MS, process=True)
        try:
            await writer.open()
            flights = [writer.begin() for _ in range(2)]
            first = asyncio.create_task(writer.append(event(0)))
            for _ in range(50):
                await asyncio.sleep(0)
            waiting = not first.done()
            # One brings its event, the other ends without one: nobody else is coming, so the
            # flush goes, with both events.
            second = asyncio.create_task(writer.append(event(1), flights[0]))
            writer.end(flights[1])
            positions = [await first, await second]
            writer.end(flights[0])
            return waiting, positions, writer.flushes
        finally:
            await writer.close()
            await engine.dispose()

    assert run(work) == (True, [0, 1], 1)


def test_a_flush_cancelled_before_its_answer_ends_the_process_so_no_later_flush_reads_that_answer(url: URL) -> None:
    async def work() -> tuple[int, int, bool]:
        engine = hub_engine(url)
        writer = TrailWriter(engine, gather_ms=0.0, process=True)
        flusher = writer._flusher
        assert isinstance(flusher, ProcessFlusher)
        try:
            first = await writer.append(event(0))
            stopped = _process_of(writer)
            os.kill(stopped.pid, signal.SIGSTOP)
            flushing = asyncio.create_task(flusher.write([stage(event(1))], None))
            await asyncio.sleep(0.3)
            flushing.cancel()
            with pytest.raises(asyncio.CancelledError):
                await flushing
            await asyncio.wait_for(stopped.wait(), 20)
            later = await writer.append(event(2))
            return first, later, _process_of(writer).pid != stopped.pid
        finally:
            await writer.close()
            await engine.dispose()

    first, later, replaced = run(work)
    # The cancelled flush was never written (its process was stopped, then killed).
    assert (first, later, replaced) == (0, 1, True)
    assert [h for _, h, _ in asyncio.run(stored(url))] == [f"{0:064x}", f"{2:064x}"]


def test_the_writer_process_outlives_ctrl_c_so_the_hubs_last_flushes_are_written(url: URL) -> None:
    # A terminal's Ctrl-C reaches the whole process group, this process included.
    assert _signalled_between_two_flushes(url, signal.SIGINT) == ([0, 1], True)
