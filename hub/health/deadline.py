"""The deadlines of one department's reads: the reads in flight and when each must end, and one
watcher task, alive while reads are, that cancels those past their time.

One watcher per department rather than a timer per read (`asyncio.timeout`): a timer is a heap
entry made and cancelled on every read, left in the loop's heap until its time comes (seconds
later, so thousands of them under load), and cost a lookup by key about 10 µs of its ~300 µs
of CPU; registering a read here costs a dict entry. The price is precision: a late read is
cancelled up to `period_s` after its deadline.

A read cancelled for its deadline has that cancellation taken back (`Task.uncancel`), as
`asyncio.timeout` does, so its request goes on with the department unavailable; a cancellation
from elsewhere (the request itself cancelled) still stands.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

# How often the watcher looks for late reads while any are in flight.
WATCH_PERIOD_S = 0.05

# A read in flight: its task, and how many cancellations that task had pending when it began.
Read = tuple["asyncio.Task[Any]", int]


class Deadlines:
    def __init__(self, seconds: float, period_s: float = WATCH_PERIOD_S) -> None:
        if not seconds > 0 or not period_s > 0:
            raise ValueError("a deadline and the watcher's period must be positive")
        self.seconds = seconds
        self._period = period_s
        self._running: dict[asyncio.Task[Any], float] = {}
        self._late: set[asyncio.Task[Any]] = set()
        self._watcher: asyncio.Task[None] | None = None

    def start(self) -> Read:
        """Registers the current task's read, due `seconds` from now."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a read runs inside an asyncio task")
        self._running[task] = time.monotonic() + self.seconds
        watcher = self._watcher
        if watcher is None or watcher.done() or watcher.get_loop() is not task.get_loop():
            # The first read since the hub went idle, or the first in this event loop.
            self._watcher = task.get_loop().create_task(self._watch(), name="department read deadlines")
        return task, task.cancelling()

    def finish(self, read: Read) -> bool:
        """Unregisters a read, however it ended; whether it was cancelled for its deadline
        (that cancellation is then taken back)."""
        task, cancelling = read
        self._running.pop(task, None)
        if task not in self._late:
            return False
        self._late.discard(task)
        return task.uncancel() <= cancelling

    def stop(self) -> None:
        """Stops the watcher (the connector is closing)."""
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while self._running:
            await asyncio.sleep(self._period)
            now = time.monotonic()
            for task, due in list(self._running.items()):
                if task.get_loop() is not loop:
                    # Left by an event loop that ended with the read in flight.
                    del self._running[task]
                elif due <= now and task not in self._late:
                    self._expire(task)

    def _expire(self, task: asyncio.Task[Any]) -> None:
        self._late.add(task)
        task.cancel()
