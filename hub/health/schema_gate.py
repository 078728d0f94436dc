"""Whether a department's database still matches its manifest, and the refusal of its reads
while it does not.

A manifest with a typo in a table or column (or a database changed under it) would otherwise
serve INTERNAL errors field by field. The gate checks the database against the manifest at
start-up, and again when it was unreachable then (on the first read), after a read the
database refused as a query (the schema may have drifted), and, while mismatched, at most once
per `recheck_s` (the schema may have been fixed). A mismatched department is unavailable; the
others are served as before. Reads pay one attribute test while the department matches.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from connectors.base import UnavailableError

log = logging.getLogger("hub.health")

RECHECK_S = 30.0


class SchemaState(enum.Enum):
    UNCHECKED = "unchecked"
    MATCHES = "matches"
    MISMATCH = "mismatch"


class SchemaMismatchError(UnavailableError):
    """A read refused because the department's database does not match its manifest."""


Check = Callable[[], Awaitable[Sequence[str]]]


class SchemaGate:
    """One department's schema check. `check` returns the mismatch lines (none when the
    database matches) and raises when the database cannot be reached."""

    def __init__(self, department: str, check: Check, timeout_s: float, recheck_s: float = RECHECK_S) -> None:
        self.department = department
        self._check = check
        self._timeout_s = timeout_s
        self._recheck_s = recheck_s
        self.state = SchemaState.UNCHECKED
        self.mismatches: tuple[str, ...] = ()
        self._checked_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def matches(self) -> bool:
        return self.state is SchemaState.MATCHES

    async def admit(self) -> None:
        """Return when a read may go ahead; raise SchemaMismatchError when it may not."""
        if self.state is not SchemaState.MATCHES:
            due = self.state is SchemaState.UNCHECKED or time.monotonic() - self._checked_at >= self._recheck_s
            if due:
                await self.verify()
            if self.state is SchemaState.MISMATCH:
                raise SchemaMismatchError(
                    "the department database is unavailable", f"schema mismatch: {self.mismatches[0]}"
                )

    def suspect(self) -> None:
        """A read was refused as a query: check again before the next read."""
        if self.state is SchemaState.MATCHES:
            self.state = SchemaState.UNCHECKED

    async def verify(self) -> None:
        """Check now (once, however many reads wait for it). An unreachable database leaves the
        state as it was: its reads then meet the outage, and the check runs again on the next."""
        async with self._lock:
            started = time.monotonic()
            if self.state is SchemaState.MATCHES or (
                self.state is SchemaState.MISMATCH and started - self._checked_at < self._recheck_s
            ):
                return  # settled while this one waited for the lock
            try:
                async with asyncio.timeout(self._timeout_s):
                    found = tuple(await self._check())
            except Exception as error:
                log.warning(
                    "department %s: schema not checked, its database did not answer (%s); checked on its next read",
                    self.department,
                    type(error).__name__,
                )
                return
            self._checked_at = time.monotonic()
            if found:
                if found != self.mismatches:
                    for line in found:
                        log.error(
                            "department %s served as unavailable (`hub manifest check` for details): %s",
                            self.department,
                            line,
                        )
                self.state, self.mismatches = SchemaState.MISMATCH, found
            else:
                if self.state is SchemaState.MISMATCH:
                    log.info("department %s: its database matches its manifest again", self.department)
                self.state, self.mismatches = SchemaState.MATCHES, ()
