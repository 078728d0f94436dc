"""The trail's flushes written by a process of their own (`HUB_AUDIT_WRITER=process`, what
`hub serve` and `hub demo` run): the hub hands each flush over a pipe and is answered with the
flush's first position once it committed.

Why a process: in the hub's process every flush's own Python (its leaves and subtree hashes, its
rows, the SQLite driver's parameters, the person backlog's move; on PostgreSQL the statement's
parameters) holds the interpreter's lock that the event loop needs too, so on W6 the trail's
flushes cost every request about 110-130 µs of the one core the hub can use (bench/README.md,
"The access trail"). In a process of its own that work runs on the machine's other core; the
hub keeps the gathering, staging each event (its request's own task), and one write and one read
of a pipe per flush.

What stays as it was: one flush at a time per hub, every event of a flush in one transaction, an
answer only after the commit, and `TrailUnavailable` for the flush's requests when the process
cannot write (its database refused, the process died or could not start). The process is the
same code as the thread (`SqliteFlusher`, `PostgresFlusher`) over an engine of its own on the
hub database, so its rows, leaves and hashes are those of the in-process writer.

The pipe carries pickles both ways: both ends are this hub's own code, over a pipe no other
process holds, so nothing read from it is untrusted. The hub database's URL (which may hold a
password) is sent over the pipe too, never on the command line, where `ps` shows it.

The process stops when the hub closes it, or when its standard input ends (the hub died, even by
SIGKILL): a flush it was writing is committed first, so no answered request's event is lost, and
an event whose request was never answered may be in the log, as with any commit whose answer was
lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import struct
import sys
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.audit.merkle import Frontier
from hub.audit.rows import Staged
from hub.audit.store import TrailUnavailable

log = logging.getLogger("hub.audit")

MODULE = "hub.audit.flush_server"
# A frame: its length (4 bytes, big-endian), then a pickle.
HEADER = struct.Struct(">I")
# How long the process may take to start, or to finish its last flush when closed.
START_S = 60.0
STOP_S = 30.0
# After a failed start, the next flush tries again only this much later: a hub whose writer
# cannot start refuses its L3/L4 answers at once rather than spawning a process per flush.
RETRY_S = 1.0


def frame(message: Any) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> Any:
    """The next message, or None where the stream ended."""
    try:
        header = await reader.readexactly(HEADER.size)
        (size,) = HEADER.unpack(header)
        # Written by this hub's own code at the pipe's other end (the module's docstring).
        return pickle.loads(await reader.readexactly(size))  # noqa: S301
    except asyncio.IncompleteReadError:
        return None


def backs(engine: AsyncEngine) -> bool:
    """Whether a writer process can write `engine`'s database: a SQLite file or PostgreSQL."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        return url.get_driver_name() == "asyncpg"
    database = url.database
    return url.get_backend_name() == "sqlite" and bool(database) and database != ":memory:" and not url.query


class ProcessFlusher:
    """The hub's end of the writer process: one flush at a time over its pipe."""

    def __init__(self, url: URL) -> None:
        self._url = url
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._failed_at = 0.0

    @classmethod
    def of(cls, engine: AsyncEngine) -> ProcessFlusher | None:
        return cls(engine.url) if backs(engine) else None

    async def open(self) -> None:
        """Start the process now (at the hub's start) rather than at the first flush."""
        async with self._lock:
            with contextlib.suppress(TrailUnavailable):
                await self._started()

    async def write(self, staged: Sequence[Staged], edge: Frontier | None) -> tuple[int, Frontier | None]:
        """Append `staged` in one transaction, in the process: the first one's position. The tree's
        right edge is the process's to keep (`edge` is not used)."""
        async with self._lock:
            if self._closed:
                raise TrailUnavailable("the trail's writer is closed")
            process = await self._started()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(frame(("write", list(staged))))
                await process.stdin.drain()
                reply = await read_frame(process.stdout)
            except (OSError, pickle.PickleError, EOFError):
                reply = None
            except BaseException:
                # Cancelled between the flush and its answer: that answer, read by the next
                # flush, would give it this one's positions. This process is done with.
                self._forget(process)
                raise
            if reply is None:
                log.error("the trail's writer process stopped; it is started again at the next flush")
                await self._stop(process, kill=True)
                raise TrailUnavailable("the trail's writer process stopped")
            if reply[0] == "ok":
                return int(reply[1]), None
            raise TrailUnavailable(str(reply[1]))

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            if self._process is not None:
                await self._stop(self._process, kill=False)

    async def _started(self) -> asyncio.subprocess.Process:
        process = self._process
        if process is not None and process.returncode is None:
            return process
        self._process = None
        if time.monotonic() - self._failed_at < RETRY_S:
            raise TrailUnavailable("the trail's writer process could not be started")
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", MODULE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )
        except OSError as exc:
            self._failed_at = time.monotonic()
            log.error("the trail's writer process could not be started: %s", type(exc).__name__)
            raise TrailUnavailable("the trail's writer process could not be started") from None
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(frame(("open", self._url.render_as_string(hide_password=False))))
            await process.stdin.drain()
            reply = await asyncio.wait_for(read_frame(process.stdout), START_S)
        except (OSError, TimeoutError, pickle.PickleError, EOFError):
            reply = None
        if reply is None or reply[0] != "ready":
            self._failed_at = time.monotonic()
            why = "it stopped" if reply is None else str(reply[1])
            log.error("the trail's writer process could not be started: %s", why)
            await self._stop(process, kill=True)
            raise TrailUnavailable("the trail's writer process could not be started")
        self._process = process
        return process

    def _forget(self, process: asyncio.subprocess.Process) -> None:
        if self._process is process:
            self._process = None
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    async def _stop(self, process: asyncio.subprocess.Process, kill: bool) -> None:
        if self._process is process:
            self._process = None
        if process.returncode is not None:
            return
        if not kill and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.write(frame(("close",)))
                await process.stdin.drain()
                process.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), STOP_S)
                return
            log.error("the trail's writer process did not stop in %.0f s; it is killed", STOP_S)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
