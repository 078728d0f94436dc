"""The access log: one JSON line per /graphql request on the `hub.access_log` logger.

A line holds the request id, the caller (its app name and department), the operation (the first
16 hex digits of the SHA-256 of its text: the same text shows the same hash whether sent as text
or as a registered document, and the text itself is never logged), the registered document's
id, status, outcome, the first error's code and the duration. Lines are made and written in
batches (hub/observe/requests.py says when): one log record per batch, its message the batch's
lines, so a batch costs one record and one flush of the stream, not one per request.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from hub.auth.principal import Principal

access_log = logging.getLogger("hub.access_log")


class _Lines(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record's message as it is, ending its last line: a formatter would only copy
    it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(f"{record.msg}\n")
            self.flush()
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


def write(lines: Sequence[str]) -> None:
    """Logs `lines` as one record (its message the lines, joined by line breaks)."""
    # The record made directly: Logger.info would also walk the stack for the caller's file and
    # line, which the line does not show.
    access_log.handle(access_log.makeRecord(access_log.name, logging.INFO, "", 0, "\n".join(lines), (), None))


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
        "operation": None if text is None else _hash(text),
        "document": document,
        "status": status,
        "outcome": outcome,
        "code": code,
        "duration_ms": round(seconds * 1000, 3),
    }
    return orjson.dumps(line).decode()


_hashes: dict[str, str] = {}


def _hash(text: str) -> str:
    """The first 16 hex digits of the SHA-256 of `text`, remembered for the texts seen lately
    (most requests repeat a few)."""
    found = _hashes.get(text)
    if found is None:
        if len(_hashes) >= 1024:
            _hashes.clear()
        found = _hashes[text] = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return found


_second: list[Any] = [0, ""]


def _iso(moment: float) -> str:
    """`moment` in UTC to the millisecond, ISO 8601; the part up to the second is formatted once
    a second, not once a line."""
    second = int(moment)
    if _second[0] != second:
        _second[:] = [second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")]
    return f"{_second[1]}.{int((moment - second) * 1000):03d}Z"
