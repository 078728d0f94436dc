"""The trail's writer process (hub/audit/flush_process.py says why): `python -m
hub.audit.flush_server`, started by the hub, never by hand.

It reads frames from standard input: first `("open", url)`, answered `("ready",)` once the hub
database's flusher is made (or `("error", why)`); then `("write", staged)` per flush, answered
`("ok", first)` once the flush committed or `("error", why)` when it failed (nothing of it
written); `("close",)` or the end of standard input stops it, after the flush under way. It
ignores SIGINT: the hub closes it once its own last flushes are written.
Answers go to standard output; log lines to standard error, as the hub's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from sqlalchemy.engine import make_url

from hub.audit.flush_process import frame, read_frame
from hub.audit.merkle import Frontier
from hub.audit.postgres_writer import PostgresFlusher
from hub.audit.sqlite_writer import SqliteFlusher
from hub.audit.store import TrailUnavailable
from hub.db.engine import hub_engine

log = logging.getLogger("hub.audit")


async def _stdin() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**31 - 1)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    return reader


def _answer(message: Any) -> None:
    # A few bytes a flush, to a pipe the hub reads at once: written as they are.
    sys.stdout.buffer.write(frame(message))
    sys.stdout.buffer.flush()


def _why(exc: BaseException) -> str:
    # The trail's own refusals say what failed; anything else by its type only, since a driver's
    # message may quote SQL or the connection's address.
    if isinstance(exc, TrailUnavailable):
        return str(exc)
    return f"the access trail could not be written ({type(exc).__name__})"


async def serve() -> None:
    reader = await _stdin()
    opening = await read_frame(reader)
    if opening is None or opening[0] != "open":
        return
    engine = hub_engine(make_url(opening[1]))
    # On SQLite each flush runs on this process's own thread (nothing else runs here).
    flusher = SqliteFlusher.of(engine, inline=True) or PostgresFlusher.of(engine)
    if flusher is None:
        _answer(("error", "the hub database is neither a SQLite file nor PostgreSQL"))
        await engine.dispose()
        return
    _answer(("ready",))
    edge: Frontier | None = None
    try:
        while True:
            message = await read_frame(reader)
            if message is None or message[0] != "write":
                break
            # Kept only once the flush committed, as the hub's writer keeps it.
            given, edge = edge, None
            try:
                first, edge = await flusher.write(message[1], given)
            except Exception as exc:
                log.error("the access trail could not be written: %s", type(exc).__name__)
                _answer(("error", _why(exc)))
                continue
            _answer(("ok", first))
            if isinstance(flusher, SqliteFlusher):
                # After the answer: the flush's requests do not wait for the person index.
                flusher.settle()
    finally:
        await flusher.close()
        await engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Ctrl-C in the terminal reaches every process of the group: the hub's shutdown still has
    # flushes to write here (its requests in flight), and closes this process when done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The hub gone (its end of the pipe closed) or the terminal's Ctrl-C: nothing to say.
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
