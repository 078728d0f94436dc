"""Who gets a department's next connection: shared fairly between the requests reading it.

A department's connector holds at most `pool_size` connections (5 by default), and its queue
for them is first come, first served. One heavy request reads many lists at once (eight aliases
of 10,000 rows, or a relation's chunks beside its parent's pages): it took all five connections
and queued three more reads ahead of any other caller's lookup, which then waited for two
rounds of the heavy request's statements (bench/fairness.py measured waits up to 180 ms for a
slot on the demo's SQLite).

So each request may hold at most `pool_size - 1` of a department's connections at once (all of
them where the pool has one), and a freed connection goes to the waiting read whose request
holds the fewest of them, first come first served among equals: a request's first read goes
ahead of another request's fifth. The guard takes a share inside the read's deadline, so a
read waiting here is bounded like any other.

A request is the owner of its reads in every task it starts: `new_owner()` marks the running
request (schema/execution/run.py calls it once per operation), and the tasks it starts inherit
the mark (context variables are copied into each task). Counts live in memory, per instance.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar

# The request (an owner token) whose reads the current task makes; None outside a request.
_owner: ContextVar[object | None] = ContextVar("hub_connection_owner", default=None)


def new_owner() -> None:
    """Marks the running request, and every task it starts, as one owner of connections."""
    _owner.set(object())


def current_owner() -> object | None:
    """The running request's owner token (None outside a request)."""
    return _owner.get()


class Share:
    """The connections of one department: `size` in all, at most `cap` to one request."""

    __slots__ = ("cap", "free", "held", "size", "waiting")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a department has at least one connection")
        self.size = size
        self.cap = max(1, size - 1)
        self.free = size
        # Connections held, per owner holding any.
        self.held: dict[object | None, int] = {}
        # Reads waiting, in arrival order: their owner and what wakes them.
        self.waiting: list[tuple[object | None, asyncio.Future[None]]] = []

    def take(self, owner: object | None) -> bool:
        """Takes a connection for `owner` where one is free to it now; False where the read
        must `wait` for one."""
        held = self.held.get(owner, 0)
        if self.free and held < self.cap and not self.waiting:
            self.free -= 1
            self.held[owner] = held + 1
            return True
        return False

    async def wait(self, owner: object | None) -> None:
        """Waits for a connection for `owner`."""
        waiter = asyncio.get_running_loop().create_future()
        self.waiting.append((owner, waiter))
        # A connection may be free to this read though others wait (they are at their cap).
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
            chosen = None
            fewest = self.cap
            for at, (owner, _) in enumerate(self.waiting):
                held = self.held.get(owner, 0)
                if held < fewest:
                    chosen, fewest = at, held
                    if not held:
                        break
            if chosen is None:
                return  # every waiting read's request is at its cap
            owner, waiter = self.waiting.pop(chosen)
            if waiter.done():
                continue  # cancelled, and removed by its own read shortly
            self.free -= 1
            self.held[owner] = self.held.get(owner, 0) + 1
            waiter.set_result(None)
