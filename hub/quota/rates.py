"""Request rate limits: how many requests each caller, and each department's apps together,
may send per period, in sliding windows (the `limits` library's sliding window counter).

One instance keeps its counts in memory (windows.py: the same arithmetic without `limits`'
storage layers, which cost W6 a tenth of its CPU); several instances behind a load balancer
share them in Redis through `limits` (`HUB_LIMITS_STORAGE=redis://...`), so a caller cannot
multiply its rate by the number of instances. A caller with several roles gets the most generous of its roles' limits.

When the shared store cannot be reached the request is let through and the failure logged: a
rate limit guards capacity, and refusing every caller because Redis is down would be the outage
it exists to prevent. (The lookup quota, which guards masked data, fails closed instead.)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from hub.auth.principal import Principal
from hub.quota.windows import SlidingWindows

log = logging.getLogger("hub.alert")


@dataclass(frozen=True)
class RateRefusal:
    """Why a request was refused: whose limit (`caller` or `department`), the limit per
    `period` seconds, how many requests the window holds, and when to try again."""

    scope: str
    limit: int
    period: int
    used: int
    window_start: datetime
    window_end: datetime
    retry_after: int


def rate(text: str, name: str) -> RateLimitItem:
    """`600/minute`, `10/second`, `5000 per hour` as a limit; ValueError naming `name`."""
    try:
        item = parse(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a rate such as 600/minute") from None
    if item.amount < 1:
        raise ValueError(f"{name}: a rate allows at least one request")
    return item


class RateLimits:
    """Admits requests within their caller's and department's rates."""

    def __init__(
        self,
        per_role: Mapping[str, RateLimitItem],
        default: RateLimitItem,
        per_department: RateLimitItem | None,
        storage: str = "memory://",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_role = dict(per_role)
        self.default = default
        self.per_department = per_department
        self.clock = clock
        self._storage: Storage = _storage(storage)
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        # One instance's counts: the same sliding windows, without `limits`' storage layers
        # (windows.py says why); None where the counts are shared in Redis.
        self._windows = SlidingWindows(clock) if isinstance(self._storage, MemoryStorage) else None
        # The limit of each set of roles (fixed settings): worked out once, not per request.
        self._limits: dict[tuple[str, ...], RateLimitItem] = {}

    def limit_of(self, principal: Principal) -> RateLimitItem:
        """The caller's limit: the most generous of its roles' (per second, to compare)."""
        items = [self.per_role.get(role, self.default) for role in principal.roles] or [self.default]
        return max(items, key=lambda item: item.amount / item.get_expiry())

    async def admit(self, principal: Principal) -> RateRefusal | None:
        """Count one request of `principal`; a RateRefusal (nothing counted) where it would pass
        the caller's or its department's rate.

        The caller's rate is asked first, so a caller past its own rate cannot use up its
        department's. A `hit` counts only what it admits, so the department's is one call, not a
        `test` and then a `hit` reading the same window twice; the caller's `test` stays, so that
        a request the department refuses is not counted against its caller."""
        limit = self._limits.get(principal.roles)
        if limit is None:
            limit = self._limits[principal.roles] = self.limit_of(principal)
        subject = principal.subject
        windows = self._windows
        if windows is not None:
            # In memory: the same checks in the same order, with nothing to await between them.
            period, department = limit.get_expiry(), self.per_department
            if department is None or windows.test(limit.amount, period, "caller", subject):
                if department is not None and not windows.hit(
                    department.amount, department.get_expiry(), "department", principal.department
                ):
                    return self._refused("department", department, principal.department)
                if windows.hit(limit.amount, period, "caller", subject):
                    return None
            return self._refused("caller", limit, subject)
        try:
            department = self.per_department
            if department is None:
                if not await self._limiter.hit(limit, "caller", subject):
                    return await self._refusal("caller", limit, subject)
                return None
            if not await self._limiter.test(limit, "caller", subject):
                return await self._refusal("caller", limit, subject)
            if not await self._limiter.hit(department, "department", principal.department):
                return await self._refusal("department", department, principal.department)
            if not await self._limiter.hit(limit, "caller", subject):
                # Another instance's request of this caller took the last place since the test
                # (Redis): refused, though its department counted it.
                return await self._refusal("caller", limit, subject)
        except Exception as error:  # the store, not the request, failed: see the module's note
            log.error("rate limits: the store cannot be reached (%s); request let through", type(error).__name__)
        return None

    async def _refusal(self, scope: str, item: RateLimitItem, who: str) -> RateRefusal:
        stats = await self._limiter.get_window_stats(item, scope, who)
        return self._refusal_of(scope, item, who, stats.reset_time, stats.remaining)

    def _refused(self, scope: str, item: RateLimitItem, who: str) -> RateRefusal:
        assert self._windows is not None
        stats = self._windows.stats(item.amount, item.get_expiry(), scope, who)
        return self._refusal_of(scope, item, who, stats.reset_time, stats.remaining)

    def _refusal_of(self, scope: str, item: RateLimitItem, who: str, reset_time: float, remaining: int) -> RateRefusal:
        now = self.clock()
        reset = max(reset_time, now + 1)
        period = item.get_expiry()
        log.warning("rate limit: refused a request of %s %s (%s per %ss)", scope, who, item.amount, period)
        return RateRefusal(
            scope=scope,
            limit=item.amount,
            period=period,
            used=item.amount - remaining,
            window_start=datetime.fromtimestamp(reset - period, UTC),
            window_end=datetime.fromtimestamp(reset, UTC),
            retry_after=max(1, math.ceil(reset - now)),
        )

    async def reset(self) -> None:
        """Forget every count (tests, and an operator lifting a block)."""
        if self._windows is not None:
            self._windows.reset()
        await self._storage.reset()


def _storage(uri: str) -> Storage:
    if uri.startswith(("redis://", "rediss://")):
        # redis-py's asyncio client: the well-kept one, already the hub's Redis client.
        # Short timeouts: a store that does not answer must not hold requests up (see above).
        return RedisStorage(f"async+{uri}", implementation="redispy", socket_timeout=0.25, socket_connect_timeout=0.25)
    if uri in ("memory", "memory://"):
        return MemoryStorage()
    raise ValueError(f"HUB_LIMITS_STORAGE: {uri!r} is neither memory:// nor a redis:// URL")
