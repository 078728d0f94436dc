"""The per-request check of lookup quotas: skip the values a request supplies that this
instance has already counted in the window, and count the rest in the hub database, where every
instance's counts meet.

Values are counted per caller and hourly window. The hub database holds them as keyed hashes
(BLAKE2b under a key derived from the keyring's mask key, the same on every instance), never as
values. The instance's own memory of what it counted in the window holds the values as the
request gave them to it (normalised), which costs no hashing on the request path: they are in
this process's memory anyway, are never written anywhere, and are forgotten when the window
ends (at most a caller's quota of them). A value is counted once per window however often it is
supplied, and a refused request counts nothing.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.auth.principal import Principal
from hub.config import Settings
from hub.quota.models import DIGEST_BYTES
from hub.quota.store import count, purge

WINDOW_SECONDS = 3600
# The quota's name where a refusal says which limit refused it: the 429's `scope`, and the
# refused request's event in the access trail (`limit`), the trail's record of the alert.
LOOKUP_QUOTA = "lookup_quota"

# Alerts go to the operator log as well as into the trail (the refused request's event).
alerts = logging.getLogger("hub.alert")

# A supplied value: (scope, value). The scope is the blind-index domain where the field has one
# (a guess at an ID number is one guess whichever entity it is tried on), else entity.field.
Supplied = tuple[str, str]
NONE: frozenset[Supplied] = frozenset()


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: the caller's hourly quota, what it had used, how many new
    values the request brought, and the window."""

    limit: int
    used: int
    requested: int
    window_start: datetime
    window_end: datetime
    # Whole seconds until the next window (at least 1): the Retry-After header.
    retry_after: int


class LookupCounter:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        key: Callable[[], bytes],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self._key = key
        # Settings do not change while the hub runs: read once, not per request.
        self.enabled = settings.lookup_quota_enabled
        # A keyed hash made once and copied per value (copying is cheaper than keying anew);
        # made again if the key source hands out another key.
        self._keyed: tuple[bytes, Any] | None = None
        self._hour = -1
        # The current window's bounds in the clock's seconds, so that a request compares
        # rather than divides.
        self._begins = self._ends = 0.0
        # Subject -> values already counted in the current window: repeats touch no database.
        self._counted: dict[str, set[Supplied]] = {}

    def digest(self, supplied: Supplied) -> bytes:
        scope, value = supplied
        key = self._key()
        keyed = self._keyed
        if keyed is None or keyed[0] is not key:
            keyed = self._keyed = (key, hashlib.blake2b(key=key, digest_size=DIGEST_BYTES))
        hashed = keyed[1].copy()
        hashed.update(scope.encode() + b"\x00" + value.encode())
        return bytes(hashed.digest())

    def known(self, principal: Principal) -> Collection[Supplied]:
        """The values this instance has counted for `principal` in the current window (empty
        once it ended): a request that supplies only these is admitted without `admit`,
        touching no database. Asked on every request, so synchronous and cheap."""
        if self._begins <= self.clock() < self._ends:
            return self._counted.get(principal.subject, NONE)
        return NONE

    async def admit(self, principal: Principal, supplied: Sequence[Supplied]) -> Refusal | None:
        """Count what `principal` supplies; a Refusal (and nothing counted) where the new values
        would pass its quota."""
        if not supplied or not self.enabled:
            return None
        now = self.clock()
        hour = int(now // WINDOW_SECONDS)
        if hour != self._hour:
            await self._start(hour)
        counted = self._counted.get(principal.subject, NONE)
        fresh = list(dict.fromkeys(s for s in supplied if s not in counted))
        if not fresh:
            return None
        limit = self.settings.lookup_quota(principal.roles)
        async with self.sessions() as session, session.begin():
            outcome = await count(session, principal.subject, hour, [self.digest(s) for s in fresh], limit)
        if outcome.admitted:
            # Unless a new window began meanwhile: these were counted in the one that ended.
            if hour == self._hour:
                self._counted.setdefault(principal.subject, set()).update(fresh)
            return None
        start = datetime.fromtimestamp(hour * WINDOW_SECONDS, UTC)
        end = datetime.fromtimestamp((hour + 1) * WINDOW_SECONDS, UTC)
        refusal = Refusal(
            limit, outcome.used, outcome.new, start, end, max(1, math.ceil((hour + 1) * WINDOW_SECONDS - now))
        )
        alerts.warning(
            "lookup quota: refused %s (department %s, roles %s): %d new identifier values with %d of %d "
            "used in the window from %s",
            principal.subject,
            principal.department,
            ",".join(principal.roles) or "-",
            refusal.requested,
            refusal.used,
            refusal.limit,
            start.isoformat(),
        )
        return refusal

    async def _start(self, hour: int) -> None:
        """A new window: forget this instance's cache and the database's ended windows."""
        self._hour = hour
        self._begins, self._ends = float(hour * WINDOW_SECONDS), float((hour + 1) * WINDOW_SECONDS)
        self._counted.clear()
        async with self.sessions() as session, session.begin():
            await purge(session, hour)
