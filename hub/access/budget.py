"""The value budget of one request: how many values it may read and place in its answer.

A value is one selected field of one row. A request spends its budget on every row it reads
from a department, and again on every row a relation places under a parent: one district's
residents listed under each of 1,000 residents are 1,000 lists, and the answer holds them all.
Nesting multiplies lists (100 rows per parent, per level), which no page size bounds, so the
budget is what keeps one request from taking the hub's memory.

Reads reserve what they may return before they run, so requests of many aliases reading at
once cannot together hold more than the budget: a read that might not fit waits until the
reads in flight have settled, then runs with the exact remainder as its limit. Whether a
request is refused does not depend on that order: it is refused when its total passes the
limit, whichever read or list is counted last.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from hub.errors import LimitExceeded


def values_per_row(names: Sequence[str], joins: Sequence[str]) -> int:
    """The values a row of a selection counts for: its selected fields and the join values
    its relations need, and at least one (a row selected for `__typename` is still a row)."""
    return max(1, len(names) + len(joins))


class ValueBudget:
    """One request's budget of `limit` values; `exceeded` is the refusal once it is spent."""

    __slots__ = ("_inflight", "_settled", "abandoned", "exceeded", "limit", "spent")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0
        self.exceeded: LimitExceeded | None = None
        # Values reserved by reads that failed (a deadline, an outage): never spent, yet their
        # rows may have been fetched and left in reference cycles (a failed read's traceback
        # holds its frames, and their rows), which only a collection frees. A request that
        # reserved many such values has its memory given back like a large answer
        # (schema/execution/run.py): the eight lists of the heaviest request, all cut by their
        # deadline, left 86 MB of such cycles alive 30 s after on an idle hub.
        self.abandoned = 0
        # Values reserved by reads still running, and the condition a waiting read waits on.
        self._inflight = 0
        self._settled: asyncio.Condition | None = None

    def check(self) -> None:
        """Refuses at once a request already past its budget: nothing more is read for it."""
        if self.exceeded is not None:
            raise self.exceeded

    def charge(self, rows: int, width: int) -> None:
        """Counts `rows` rows of `width` values; past the limit, the request is refused."""
        self.check()
        value = self.spent + rows * width
        if value > self.limit:
            self.exceeded = LimitExceeded(
                f"the answer would hold more than {self.limit} values (rows times selected fields); "
                "select fewer fields, fewer rows or fewer nested lists",
                {"limit": self.limit, "value": value},
            )
            raise self.exceeded
        self.spent = value

    @contextlib.asynccontextmanager
    async def reading(self, most: int, width: int) -> AsyncIterator[int]:
        """Reserves a read of at most `most` rows of `width` values; yields the rows it may
        return (fewer than `most` where the budget has less left: a read that returns more
        than that passes the limit)."""
        self.check()
        want = most * width
        if self._inflight and self.spent + self._inflight + want > self.limit:
            settled = self._settled = self._settled or asyncio.Condition()
            async with settled:
                await settled.wait_for(lambda: not self._inflight or self.spent + self._inflight + want <= self.limit)
            self.check()
        rows = max(0, min(most, (self.limit - self.spent - self._inflight) // width))
        self._inflight += rows * width
        try:
            yield rows
        except BaseException:
            self.abandoned += rows * width
            raise
        finally:
            self._inflight -= rows * width
            if self._settled is not None:
                async with self._settled:
                    self._settled.notify_all()
