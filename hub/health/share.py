"""Who gets a department's next connection: shared fairly between the requests reading it.

A department's connector holds at most `pool_size` connections (5 by default), and its queue
for them is first come, first served. One heavy request reads many lists at once (eight aliases
of 10,000 rows, or a relation's chunks beside its parent's pages): it took all five connections
and queued three more reads ahead of any other caller's lookup, which then waited for two
rounds of the heavy request's statements (bench/fairness.py measured waits up to 180 ms for a
slot on the demo's SQLite). Capped at all connections but one, the heavy request still held
four, and every other caller's lookup queued for the fifth (bench/README.md, issue 13).

So one request may hold at most half of a department's connections at once (`cap`: two of
five; one where the pool has fewer than four), and its further reads wait in a queue of its
own, the request's own slots: a request waits behind itself, never ahead of another caller. A
read that has its request's slot then takes a connection of the pool; when the pool is taken
(many requests at once), a freed connection goes to the waiting read whose request holds the
fewest, first come first served among equals.

The guard (guard.py) starts a read's deadline once it has its request's slot: the wait for the
request's own earlier reads is not the department's slowness (each of those reads has its own
deadline), while the wait for a connection other requests hold is, and counts.

A request is the owner of its reads in every task it starts: `new_owner()` marks the running
request (schema/execution/run.py calls it once per operation), and the tasks it starts inherit
the mark (context variables are copied into each task). Counts live in memory, per instance.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from contextvars import ContextVar

# The request (an owner token) whose reads the current task makes; None outside a request.
_owner: ContextVar[object | None] = ContextVar("hub_connection_owner", default=None)


def new_owner() -> None:
    """Marks the running request, and every task it starts, as one owner of connections."""
    _owner.set(object())


def current_owner() -> object | None:
    """The running request's owner token (None outside a request)."""
    return _owner.get()


def share_cap(size: int) -> int:
    """The connections of a pool of `size` one request may hold at once: half, at least one."""
    return max(1, size // 2)


class Share:
    """The connections of one department: `size` in all, at most `cap` to one request."""

    __slots__ = ("cap", "claimed", "free", "held", "queued", "size", "waiting")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a department has at least one connection")
        self.size = size
        self.cap = share_cap(size)
        self.free = size
        # Slots taken, per owner: its reads holding a connection or waiting for one.
        self.claimed: dict[object | None, int] = {}
        # Reads waiting for a slot of their own request, per owner, in arrival order.
        self.queued: dict[object | None, deque[asyncio.Future[None]]] = {}
        # Connections held, per owner holding any.
        self.held: dict[object | None, int] = {}
        # Reads with a slot waiting for a connection, in arrival order: their owner and what
        # wakes them.
        self.waiting: list[tuple[object | None, asyncio.Future[None]]] = []

    # The request's own slots: a read takes one before it takes a connection.

    def claim(self, owner: object | None) -> bool:
        """Takes one of `owner`'s slots where one is free now; False where the read must
        `wait_claim` behind the request's own reads."""
        claimed = self.claimed.get(owner, 0)
        if claimed < self.cap and owner not in self.queued:
            self.claimed[owner] = claimed + 1
            return True
        return False

    async def wait_claim(self, owner: object | None) -> None:
        """Waits for one of `owner`'s slots."""
        waiter = asyncio.get_running_loop().create_future()
        self.queued.setdefault(owner, deque()).append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.unclaim(owner)  # handed over as the read was cancelled: passed on
            else:
                self._drop_queued(owner, waiter)
            raise

    def unclaim(self, owner: object | None) -> None:
        """Gives back one of `owner`'s slots, to its next read waiting for one."""
        queue = self.queued.get(owner)
        while queue:
            waiter = queue.popleft()
            if not waiter.done():  # a cancelled waiter (its request ended) is skipped
                if not queue:
                    del self.queued[owner]
                waiter.set_result(None)
                return  # the slot passes on as it is: the count stays
        self.queued.pop(owner, None)
        claimed = self.claimed[owner] - 1
        if claimed:
            self.claimed[owner] = claimed
        else:
            del self.claimed[owner]

    def _drop_queued(self, owner: object | None, waiter: asyncio.Future[None]) -> None:
        queue = self.queued.get(owner)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(waiter)
        if not queue:
            del self.queued[owner]

    # The pool's connections, taken by reads that have their slot.

    def take(self, owner: object | None) -> bool:
        """Takes a connection for `owner` where one is free now; False where the read must
        `wait` for one."""
        if self.free and not self.waiting:
            self.free -= 1
            self.held[owner] = self.held.get(owner, 0) + 1
            return True
        return False

    async def wait(self, owner: object | None) -> None:
        """Waits for a connection for `owner`."""
        waiter = asyncio.get_running_loop().create_future()
        self.waiting.append((owner, waiter))
        self._hand_over()
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give(owner)  # handed over as the read was cancelled: passed on
            else:
                with contextlib.suppress(ValueError):  # already dropped by a hand-over
                    self.waiting.remove((owner, waiter))
            raise

    def give(self, owner: object | None) -> None:
        """Gives back a connection `owner` held, to the read that should have it next."""
        held = self.held[owner] - 1
        if held:
            self.held[owner] = held
        else:
            del self.held[owner]
        self.free += 1
        self._hand_over()

    def _hand_over(self) -> None:
        while self.free and self.waiting:
            chosen = 0
            fewest = self.held.get(self.waiting[0][0], 0)
            for at, (owner, _) in enumerate(self.waiting):
                held = self.held.get(owner, 0)
                if held < fewest:
                    chosen, fewest = at, held
                if not held:
                    break
            owner, waiter = self.waiting.pop(chosen)
            if waiter.done():
                continue  # cancelled, and removed by its own read shortly
            self.free -= 1
            self.held[owner] = self.held.get(owner, 0) + 1
            waiter.set_result(None)
