"""Long synchronous work on the event loop, done in slices that give other requests a turn.

The hub serves every request on one event loop, so a step that runs for tens of milliseconds
without awaiting holds every other request up for that long: reading a 10,000-row page's
values, decrypting and masking its columns, shaping it into response objects, encoding a 25 MB
answer. A heavy auditor's answer stalled other callers' lookups by key for up to 7 s this way
(issue 13). Such work is written as steps: a generator that does one slice of at most
`SLICE_ROWS` rows and then yields. `run_paced` drives the steps and, once the loop has gone
`TURN_SECONDS` without a turn, awaits one (`asyncio.sleep(0)`: every callback already ready,
other requests' reads and writes among them, runs before the work goes on). `run_steps` drives
the same steps without pausing, for callers that are not async and for small work.

The clock is one per thread, not per request: work that follows other work in the same loop
step (a page read, then released, then shaped) pauses on time spent by either. Reset on every
turn any paced work takes, it can only make work pause sooner than needed, never later.

It lives in connectors, the lowest layer, because the connector, the release step (hub) and the
shaper (schema) all slice their work with it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
# One piece of work done in slices: it yields (None) between slices and returns its result.
Steps = Generator[None, None, T]

# Rows per slice: about a quarter to half a millisecond of any column-wise pass on a quiet
# machine (decrypting one encrypted column of 1,000 rows takes about 1 ms here; shaping 1,000
# rows of 12 fields about 2 ms). Work goes on past TURN_SECONDS until its slice ends, so the
# slice bounds how far a turn comes late: at 1,000 rows, 2 to 3 times that on a loaded
# machine. A check of the clock per slice costs nothing measurable.
SLICE_ROWS = 250
# How long paced work may hold the loop before it gives other requests a turn: a lookup by
# key waits for at most about this long per step of its own behind each heavy request.
TURN_SECONDS = 0.002


class _Clock(threading.local):
    # When this thread's loop last had a turn from paced work (time.perf_counter).
    last = 0.0


_clock = _Clock()


class _Lane:
    """Paced work waiting to go on, one loop at a time: its tasks resume one per turn of the
    loop, first come first served, so each turn of the loop runs at most one slice of paced
    work, however many heavy requests (or concurrent fields of one) are in the lane. Resumed
    all at once, as `asyncio.sleep(0)` would, eight fields of one request took eight slices
    between two turns of a lookup's."""

    __slots__ = ("loop", "waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiting: deque[asyncio.Future[None]] = deque()

    async def wait(self) -> None:
        waiter = self.loop.create_future()
        self.waiting.append(waiter)
        if len(self.waiting) == 1:
            self.loop.call_soon(self.next)
        try:
            await waiter
        finally:
            # The next waiter goes on one turn of the loop after this one: this slice first.
            if self.waiting:
                self.loop.call_soon(self.next)

    def next(self) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():  # a cancelled waiter (its request ended) is skipped
                waiter.set_result(None)
                return


_lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Lane] = weakref.WeakKeyDictionary()


def due() -> bool:
    """Whether the loop has gone TURN_SECONDS without a turn from paced work."""
    return time.perf_counter() - _clock.last >= TURN_SECONDS


async def turn() -> None:
    """Waits for the loop to run every callback already ready and for the paced work ahead in
    the lane to take its slice, then resets the clock."""
    loop = asyncio.get_running_loop()
    lane = _lanes.get(loop)
    if lane is None:
        lane = _lanes[loop] = _Lane(loop)
    await lane.wait()
    _clock.last = time.perf_counter()


def run_steps(steps: Steps[T]) -> T:
    """The result of `steps`, run to the end without pausing."""
    try:
        while True:
            next(steps)
    except StopIteration as done:
        result: T = done.value
        return result


async def run_paced(steps: Steps[T]) -> T:
    """The result of `steps`, with a turn for the loop whenever one is due between slices."""
    try:
        while True:
            next(steps)
            if due():
                await turn()
    except StopIteration as done:
        result: T = done.value
        return result


def sliced(work: Callable[..., list[Any]], *columns: Sequence[Any]) -> Steps[list[Any]]:
    """`work(*columns)` for a function that maps columns element by element, done on slices of
    SLICE_ROWS rows (one yield after each) and joined; one call, and no yield, when the columns
    are that short."""
    count = len(columns[0])
    if count <= SLICE_ROWS:
        return work(*columns)
    out: list[Any] = []
    for start in range(0, count, SLICE_ROWS):
        end = start + SLICE_ROWS
        out.extend(work(*(column[start:end] for column in columns)))
        yield
    return out
