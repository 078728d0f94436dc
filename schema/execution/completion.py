"""When a shaped list and the relations under it are complete, in event-loop turns, as the
normal path's coroutines would be."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from contextlib import suppress
from typing import Any


class Completion:
    """When a shaped list (or object) and every relation under it are complete: when the
    normal path's coroutines for them would have finished.

    On the normal path a row's relation field is a task of its own; a row of more than one
    relation gathers its fields and a list of more than one row gathers its rows, and each
    gathering finishes two event-loop turns after the last of its tasks (a done callback, then
    the waiting task's wake-up). What finishes in how many turns shows in an answer: work the
    normal path leaves running in the background (relations of a row it discarded) reports
    into the answer only if it ends before the execution does. So each completed field holds
    the completion for the turns its gatherings would take."""

    def __init__(self, result: Any) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[Any] = self.loop.create_future()
        self.result = result
        # Holds still to be released: callbacks to come, turns to wait.
        self.waiting = 0
        # The loader's future the normal path's task would be waiting on itself, when nothing
        # on the way up is gathered (one row, one relation, all the way): the task waiting for
        # this completion waits on it too, to wake in the same turn as that task would.
        self.direct: asyncio.Future[Any] | None = None

    def step(self, work: Callable[..., None], *args: Any, held: bool = False) -> None:
        """Runs `work` (releasing one hold if `held`); settles if nothing is left to wait for.
        Work runs in loop callbacks: a failure settles the completion, not the loop's log."""
        if self.future.done():
            return
        self.waiting += 1 - held
        try:
            work(*args)
        except asyncio.CancelledError:
            # A loader's future cancelled under us: so is the list, as its resolvers would be.
            self.future.cancel()
            return
        except Exception as error:
            self.future.set_exception(error)
            return
        self.waiting -= 1
        if not self.waiting:
            self.future.set_result(self.result)

    def later(self, turns: int, work: Callable[..., None], *args: Any) -> None:
        """Runs `work` `turns` event-loop turns from now; now if none."""
        if not turns:
            work(*args)
            return
        self.waiting += 1
        self.loop.call_soon(self._turn, turns - 1, work, args)

    def _turn(self, turns: int, work: Callable[..., None], args: tuple[Any, ...]) -> None:
        if turns:
            self.loop.call_soon(self._turn, turns - 1, work, args)
        else:
            self.step(work, *args, held=True)

    def wait(self) -> Generator[Any, None, Any]:
        """Waits for the completion as the normal path's task would: on the loader's future
        while nothing is gathered, on the completion once something is."""
        future = self.future
        while not future.done():
            direct = self.direct
            if direct is None or direct.done():
                break
            # The job reports a failed load, row by row; here it only wakes the task.
            with suppress(Exception):
                yield from direct.__await__()
        return (yield from future.__await__())

    def hold(self, turns: int) -> None:
        """Keeps the completion open `turns` more turns: a field completed now, whose
        gatherings on the normal path would finish then. The waiting task wakes one turn after
        the completion settles, which the last turn stands for."""
        self.later(turns - 1, _nothing)


def _nothing() -> None:
    pass
