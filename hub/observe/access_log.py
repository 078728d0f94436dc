"""The access log: one JSON line per /graphql request on the `hub.access_log` logger.

A line holds the request id, the caller (its app name and department), the operation (the first
16 hex digits of the SHA-256 of its text: the same text shows the same hash whether sent as text
or as a registered document, and the text itself is never logged), the registered document's
id, status, outcome, the first error's code and the duration.

Lines are written in batches, at most `delay_s` after their request (HUB_ACCESS_LOG_DELAY_MS, 50
ms by default; 0 writes each at once). A request only notes its fields; the lines are made and
written together, one write for the batch. Made one by one between requests, each line cost
W6's lookup by key about 20 µs of CPU (7% of it, bench/w6_cpu.py): the logging and JSON code ran
cold in caches the request path had filled; in a batch it runs warm.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from hub.auth.principal import Principal

access_log = logging.getLogger("hub.access_log")

# Lines kept at most before a batch is written whatever the delay.
BATCH_LIMIT = 1000

# What a request notes: when it ended, its id, caller, text, document, status, outcome, code
# and duration in seconds.
Noted = tuple[float, str, Principal | None, str | None, str | None, int, str, str | None, float]


class _Lines(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record's message as one line, flushing once per batch (AccessLog.flush): a
    formatter would only copy the message, and a flush per line is a system call per request."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(f"{record.msg}\n")
        except Exception:
            self.handleError(record)


def write_access_log(stream: TextIO) -> None:
    """Sends the access log's lines, as they are, to `stream` (the command line's choice; the
    app only logs, so tests read the lines with caplog)."""
    access_log.addHandler(_Lines(stream))
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


class AccessLog:
    def __init__(self, enabled: bool, delay_s: float) -> None:
        self.enabled = enabled
        self.delay_s = delay_s
        self._pending: list[Noted] = []
        # A flush may come from another thread than the requests' (a test, the shutdown).
        self._flushing = threading.Lock()

    def note(
        self,
        request_id: str,
        principal: Principal | None,
        text: str | None,
        document: str | None,
        status: int,
        outcome: str,
        code: str | None,
        seconds: float,
    ) -> None:
        if not self.enabled or not access_log.isEnabledFor(logging.INFO):
            return
        pending = self._pending
        pending.append((time.time(), request_id, principal, text, document, status, outcome, code, seconds))
        if self.delay_s <= 0 or len(pending) >= BATCH_LIMIT:
            self.flush()
        elif len(pending) == 1:
            try:
                asyncio.get_running_loop().call_later(self.delay_s, self.flush)
            except RuntimeError:  # no event loop: nothing would flush later
                self.flush()

    def flush(self) -> None:
        """Writes the lines noted so far."""
        with self._flushing:
            pending, self._pending = self._pending, []
            if not pending:
                return
            make, handle, name = access_log.makeRecord, access_log.handle, access_log.name
            for noted in pending:
                # The record made directly: Logger.info would also walk the stack for the
                # caller's file and line, which the line does not show.
                handle(make(name, logging.INFO, "", 0, _line(noted), (), None))
            for handler in access_log.handlers:
                handler.flush()


def _line(noted: Noted) -> str:
    ended, request_id, principal, text, document, status, outcome, code, seconds = noted
    line: dict[str, Any] = {
        "time": _iso(ended),
        "request_id": request_id,
        "principal": None if principal is None else principal.subject,
        "department": None if principal is None else principal.department,
        "operation": None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
        "document": document,
        "status": status,
        "outcome": outcome,
        "code": code,
        "duration_ms": round(seconds * 1000, 3),
    }
    return orjson.dumps(line).decode()


_second: list[Any] = [0, ""]


def _iso(moment: float) -> str:
    """`moment` in UTC to the millisecond, ISO 8601; the part up to the second is formatted once
    a second, not once a line."""
    second = int(moment)
    if _second[0] != second:
        _second[:] = [second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")]
    return f"{_second[1]}.{int((moment - second) * 1000):03d}Z"
