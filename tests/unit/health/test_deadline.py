"""Deadlines of reads: a read past its time is cancelled within one watcher period and told
late, with the cancellation taken back; a read in time is not; a cancellation from elsewhere
stands; the watcher runs only while reads are in flight."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub.health.deadline import Deadlines

PERIOD = 0.02


async def read(deadlines: Deadlines, seconds: float) -> tuple[bool, float]:
    """A read of `seconds`: whether it was cut for its deadline, and when it ended."""
    started = time.monotonic()
    handle = deadlines.start()
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        late = deadlines.finish(handle)
        if not late:
            raise
        return True, time.monotonic() - started
    deadlines.finish(handle)
    return False, time.monotonic() - started


async def test_a_read_past_its_deadline_is_cut_within_one_period_and_its_task_goes_on() -> None:
    deadlines = Deadlines(0.1, PERIOD)
    late, took = await read(deadlines, 10)
    assert late
    assert 0.1 <= took < 0.1 + PERIOD + 0.1
    # The cancellation was taken back: this task is not being cancelled and may await again.
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)


async def test_a_read_in_time_is_not_late_and_the_watcher_stops_when_idle() -> None:
    deadlines = Deadlines(0.5, PERIOD)
    assert await read(deadlines, 0.01) == (False, pytest.approx(0.01, abs=0.05))
    watcher = deadlines._watcher
    assert watcher is not None
    await asyncio.sleep(3 * PERIOD)
    assert watcher.done()


async def test_each_read_is_cut_at_its_own_deadline() -> None:
    deadlines = Deadlines(0.2, PERIOD)

    async def later(delay: float) -> tuple[bool, float]:
        await asyncio.sleep(delay)
        return await read(deadlines, 10)

    first, second, quick = await asyncio.gather(later(0), later(0.1), read(deadlines, 0.05))
    assert first[0] and second[0] and not quick[0]
    for _, took in (first, second):
        assert 0.2 <= took < 0.2 + PERIOD + 0.1


async def test_a_request_cancelled_while_its_read_is_late_stays_cancelled() -> None:
    deadlines = Deadlines(10, PERIOD)
    seen: list[bool] = []

    async def request() -> None:
        handle = deadlines.start()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append(deadlines.finish(handle))
            raise

    task = asyncio.create_task(request())
    await asyncio.sleep(0)
    # In one turn of the loop, before the read resumes: its deadline passes (what the watcher
    # does then) and its request is cancelled too (its client went away).
    deadlines._expire(task)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [False]


def test_a_deadline_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Deadlines(0)
