"""The per-request check of lookup quotas: hash the values a request supplies, skip those this
instance has already counted in the window, and count the rest in the hub database, where every
instance's counts meet.

Values are counted per caller and hourly window, as keyed hashes (BLAKE2b under a key derived
from the keyring's mask key, the same on every instance). A value is counted once per window
however often it is supplied, and a refused request counts nothing.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.auth.principal import Principal
from hub.config import Settings
from hub.quota.models import DIGEST_BYTES
from hub.quota.store import count, purge

WINDOW_SECONDS = 3600

# Alerts go to the operator log until the audit trail carries them.
alerts = logging.getLogger("hub.alert")

# A supplied value: (scope, value). The scope is the blind-index domain where the field has one
# (a guess at an ID number is one guess whichever entity it is tried on), else entity.field.
Supplied = tuple[str, str]


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
        # A keyed hash made once and copied per value (copying is cheaper than keying anew);
        # made again if the key source hands out another key.
        self._keyed: tuple[bytes, Any] | None = None
        self._hour = -1
        # Subject -> digests already counted in the current window: repeats touch no database.
        self._counted: dict[str, set[bytes]] = {}

    @property
    def enabled(self) -> bool:
        return self.settings.lookup_quota_enabled

    def digest(self, supplied: Supplied) -> bytes:
        scope, value = supplied
        key = self._key()
        keyed = self._keyed
        if keyed is None or keyed[0] is not key:
            keyed = self._keyed = (key, hashlib.blake2b(key=key, digest_size=DIGEST_BYTES))
        hashed = keyed[1].copy()
        hashed.update(scope.encode() + b"\x00" + value.encode())
        return bytes(hashed.digest())

    def counted(self, principal: Principal, supplied: Sequence[Supplied]) -> bool:
        """Whether every value was already counted for `principal` in the current window (or
        there is nothing to count): such a request is admitted without `admit`, touching no
        database. Checked on every request, so kept synchronous."""
        if not supplied or not self.enabled:
            return True
        if int(self.clock() // WINDOW_SECONDS) != self._hour:
            return False
        counted = self._counted.get(principal.subject)
        if counted is None:
            return False
        digest = self.digest
        return all(digest(s) in counted for s in supplied)

    async def admit(self, principal: Principal, supplied: Sequence[Supplied]) -> Refusal | None:
        """Count what `principal` supplies; a Refusal (and nothing counted) where the new values
        would pass its quota."""
        if not supplied or not self.enabled:
            return None
        now = self.clock()
        hour = int(now // WINDOW_SECONDS)
        if hour != self._hour:
            await self._start(hour)
        counted = self._counted.get(principal.subject)
        digests = [self.digest(s) for s in supplied]
        fresh = digests if counted is None else [d for d in digests if d not in counted]
        if not fresh:
            return None
        limit = self.settings.lookup_quota(principal.roles)
        async with self.sessions() as session, session.begin():
            outcome = await count(session, principal.subject, hour, fresh, limit)
        if outcome.admitted:
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
        self._counted.clear()
        async with self.sessions() as session, session.begin():
            await purge(session, hour)
