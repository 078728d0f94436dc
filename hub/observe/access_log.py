"""The access log: one JSON line per /graphql request on the `hub.access_log` logger.

A line holds the request id, the caller (its app name and department), the operation (the first
16 hex digits of the SHA-256 of its text: the same text shows the same hash whether sent as text
or as a registered document, and the text itself is never logged), the registered document's
id, status, outcome, the first error's code and the duration. Lines are made and written in
batches (hub/observe/requests.py says when), one flush of the stream per batch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from hub.auth.principal import Principal

access_log = logging.getLogger("hub.access_log")


class _Lines(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record's message as one line, flushing once per batch (`write`): a formatter
    would only copy the message, and a flush per line is a system call per request."""

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


def logging_on() -> bool:
    return access_log.isEnabledFor(logging.INFO)


def write(lines: Iterable[str]) -> None:
    """Logs `lines`, one record each, then flushes the log's handlers once."""
    make, handle, name = access_log.makeRecord, access_log.handle, access_log.name
    for line in lines:
        # The record made directly: Logger.info would also walk the stack for the caller's
        # file and line, which the line does not show.
        handle(make(name, logging.INFO, "", 0, line, (), None))
    for handler in access_log.handlers:
        handler.flush()


def line(
    ended: float,
    request_id: str,
    principal: Principal | None,
    text: str | None,
    document: str | None,
    status: int,
    outcome: str,
    code: str | None,
    seconds: float,
) -> str:
    """The line of one request (`ended`: when, as time.time())."""
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
