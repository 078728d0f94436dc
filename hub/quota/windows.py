"""Request counts of one instance in sliding windows, in memory: what `limits`' sliding window
counter computes, without its storage layers.

Every request of a caller is counted (hub/quota/rates.py), so the count is on W6's path: through
`limits`' in-memory storage a test and a hit of two limits cost about 60-85 µs of CPU a request
(bench/README.md, W6), in coroutine layers, key strings and locks made for shared stores. One
instance needs none of them: its counts live in a dict, read and written between two awaits.
Several instances keep sharing their counts in Redis through `limits` (rates.py).

The arithmetic is `limits`' SlidingWindowCounterRateLimiter's (limits 4/5): a window of `period`
seconds is numbered `int(now / period)`; the count is the current window's hits plus the previous
window's weighted by the share of it still inside the sliding period; a hit is admitted when the
count's floor plus one stays within the limit, and only an admitted hit is counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

# Entries kept before the ones whose windows have both passed are dropped.
PRUNE_PAST = 10_000


@dataclass(frozen=True, slots=True)
class Stats:
    """When the count next drops (seconds since the epoch) and how many hits are left."""

    reset_time: float
    remaining: int


class _Counts:
    __slots__ = ("current", "previous", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.previous = 0
        self.current = 0


class SlidingWindows:
    """Hits per key (a scope and who: a caller's subject, a department) and period."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._counts: dict[tuple[str, str, int], _Counts] = {}

    def hit(self, limit: int, period: int, scope: str, who: str) -> bool:
        """Count one hit unless it would pass `limit` per `period`; whether it was counted."""
        now = self.clock()
        counts = self._at((scope, who, period), now, period)
        if math.floor(self._weighted(counts, now, period)) + 1 > limit:
            return False
        counts.current += 1
        return True

    def test(self, limit: int, period: int, scope: str, who: str) -> bool:
        """Whether a hit would be admitted now (nothing counted)."""
        now = self.clock()
        counts = self._at((scope, who, period), now, period)
        return self._weighted(counts, now, period) < limit

    def stats(self, limit: int, period: int, scope: str, who: str) -> Stats:
        """As `limits`' get_window_stats: the hits left, and when the count next drops."""
        now = self.clock()
        counts = self._at((scope, who, period), now, period)
        remaining = max(0, limit - math.floor(self._weighted(counts, now, period)))
        if not (counts.previous or counts.current):
            return Stats(now, remaining)
        previous_reset, current_reset = math.inf, math.inf
        if counts.previous:
            previous_reset = self._previous_ttl(now, period) % (period / counts.previous)
        if counts.current:
            current_reset = ((1 - ((now / period) % 1)) * period + period) % period
        return Stats(now + min(previous_reset, current_reset), remaining)

    def reset(self) -> None:
        self._counts.clear()

    def _at(self, key: tuple[str, str, int], now: float, period: int) -> _Counts:
        """The key's counts moved on to the window `now` is in."""
        window = int(now / period)
        counts = self._counts.get(key)
        if counts is None:
            if len(self._counts) >= PRUNE_PAST:
                self._prune(now)
            counts = self._counts[key] = _Counts(window)
        elif counts.window != window:
            # One window on: the current count becomes the previous; further on, both are gone.
            counts.previous = counts.current if window == counts.window + 1 else 0
            counts.current = 0
            counts.window = window
        return counts

    def _weighted(self, counts: _Counts, now: float, period: int) -> float:
        if not counts.previous:
            return float(counts.current)
        return counts.previous * self._previous_ttl(now, period) / period + counts.current

    @staticmethod
    def _previous_ttl(now: float, period: int) -> float:
        """The part of the previous window still inside the sliding period, in seconds."""
        return (1 - (((now - period) / period) % 1)) * period

    def _prune(self, now: float) -> None:
        """Drops the keys whose counts have all left the sliding period (memory stays bounded
        by the callers active in the last two periods)."""
        stale = [key for key, counts in self._counts.items() if int(now / key[2]) > counts.window + 1]
        for key in stale:
            del self._counts[key]
