"""The trail's flush on a SQLite hub database: the whole transaction in one trip to a thread.

Through SQLAlchemy's aiosqlite adapter a flush took about twelve hand-offs to the driver's thread
(pool checkout, begin, five statements, commit, the pool's reset), and on a loaded machine each
hand-off is a wait for a core: about a millisecond of CPU per flush, most of the trail's cost on
small requests (bench/trail_writer.py). Here a thread of the writer's own holds a `sqlite3`
connection to the same file and runs one flush per call: BEGIN IMMEDIATE (the database's write
lock, as the log row's UPDATE takes it), the log's size, the rows, COMMIT. The event loop hands
it the batch once and is woken once; the inserts and the commit's fsync run beside it.

The SQL is SQLAlchemy's compilation of the store's statements (hub/audit/store.py) for the
engine's dialect, never written by hand, so the rows are those `append_in` writes (tested).
Durability is the file's: WAL with `synchronous=FULL` (hub/db/engine.py), a commit is on disk
when it returns.

The person index (person, time) takes its rows scattered over the whole index: a W1 event's
1,330 persons dirty about as many pages. Two things made that dear (bench/README.md, "Where the
trail's CPU went"): SQLite's default page cache (2 MB) is smaller than those pages, so every
flush read them back from the file; and the automatic checkpoint (every 1,000 pages of WAL)
ran inside nearly every such COMMIT, copying the pages into the database file, with its own
fsync, while the requests of the flush waited. So the writer's connection keeps a larger page
cache, and checkpoints itself, after the flush's requests are answered, once about
CHECKPOINT_ROWS rows were written since the last (each row dirties at most a page per index). A
checkpoint never touches durability: a commit is already on disk in the WAL.

The checkpoint runs on a thread and connection of its own. Copying some 30 MB of WAL into the
database file, with its fsync, takes hundreds of ms on a busy machine; on the flushes' thread,
every request that came meanwhile waited for it (lookups of 500-700 ms beside the heaviest
request, issue 13). A PASSIVE checkpoint takes no writer's lock, so flushes go on beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from hub.audit.backlog import MOVE_ROWS, backlog_row, deferred, unpack
from hub.audit.merkle import Frontier, range_nodes
from hub.audit.models import AuditNode, AuditPersonBacklog, node_key
from hub.audit.rows import Staged, person_rows, rows_at
from hub.audit.sqlite_direct import arguments_of, compiled_for, multi_row_for, row_chunks
from hub.audit.store import EVENTS, GROW, NODES, PERSONS, TrailUnavailable

_NODE = cast(Table, AuditNode.__table__)
_BACKLOG = cast(Table, AuditPersonBacklog.__table__)
BACKLOG = insert(_BACKLOG)
_TAKE = (
    select(_BACKLOG.c.position, _BACKLOG.c.at_us, _BACKLOG.c.runs, _BACKLOG.c.persons)
    .order_by(_BACKLOG.c.position)
    .limit(MOVE_ROWS)
)
# The rows taken are the oldest, under the database's write lock: nothing older is left.
_DROP = delete(_BACKLOG).where(_BACKLOG.c.position <= bindparam("last"))
log = logging.getLogger("hub.audit")

# The writer connection's page cache, in KiB (SQLite's default is 2,000): room for a W1 event's
# person index pages and the tables' right edges, so a flush finds them in memory.
CACHE_KIB = 32_768
# Rows written (events, persons, subtrees) after which the writer checkpoints the WAL: about a
# page per row at most (a W1 event: 1,330 person rows, about 1,400 pages), so the WAL stays
# near 8,000 pages (32 MB), below the engine connections' automatic checkpoint (16,384 pages,
# hub/db/engine.py), which stays the backstop.
CHECKPOINT_ROWS = 8_000


class SqliteFlusher:
    """One connection, on one thread, that writes the writer's flushes."""

    def __init__(self, engine: AsyncEngine, path: str, inline: bool = False) -> None:
        self._engine = engine
        self._path = path
        # Inline: each flush runs on the caller's own thread, the backlog's moves when `settle`
        # is called (the writer's process, hub/audit/flush_server.py, whose thread has nothing
        # else to do: a hand-off to another thread would only add two wake-ups to every flush).
        self._inline = inline
        self._due = False
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="hub-trail")
        self._connection: sqlite3.Connection | None = None
        # The checkpoints' own thread and connection: flushes never wait behind one.
        self._checkpoints = ThreadPoolExecutor(1, thread_name_prefix="hub-trail-checkpoint")
        self._checkpointer: sqlite3.Connection | None = None
        # Services are closed by the app's lifespan and again by a refused reload's clean-up:
        # the second close must find nothing left to do, not a thread pool already shut down.
        self._closed = False
        # Rows written since the last checkpoint, and the checkpoint under way (on its thread).
        self._unchecked = 0
        self._checkpoint: asyncio.Future[None] | None = None
        # The backlog's move queued on the flushes' thread, and whether the first flush queued
        # one for what an earlier hub left (hub/audit/backlog.py).
        self._moving: asyncio.Future[tuple[int, bool]] | None = None
        self._caught_up = False
        # A flush deferred persons while a move was under way: one more move after it.
        self._again = False

    @classmethod
    def of(cls, engine: AsyncEngine, inline: bool = False) -> SqliteFlusher | None:
        """The flusher for `engine`'s database, or None where it is not a SQLite file."""
        url = engine.url
        database = url.database
        if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or url.query:
            return None
        return cls(engine, database, inline)

    async def write(self, staged: Sequence[Staged], edge: Frontier | None) -> tuple[int, Frontier]:
        """Append `staged` in one transaction: the first one's position and the new right edge."""
        if self._closed:
            raise TrailUnavailable("the trail's writer is closed")
        loop = asyncio.get_running_loop()
        if self._inline:
            first, grown, rows, deferred_rows = self._write(staged, edge)
        else:
            first, grown, rows, deferred_rows = await loop.run_in_executor(self._thread, self._write, staged, edge)
        self._unchecked += rows
        if deferred_rows or not self._caught_up:
            # Queued on the flushes' thread, not awaited: this flush's requests are answered now,
            # and the next flush runs after the move (one writer at a time on SQLite). At the
            # first flush, whatever an earlier hub left in the backlog. Inline, `settle` moves it.
            self._caught_up = True
            if self._inline:
                self._due = True
            elif self._moving is None:
                self._queue_move()
            else:  # the move under way may have read the backlog before this flush wrote it
                self._again = True
        if self._unchecked >= CHECKPOINT_ROWS and self._checkpoint is None:
            # On its own thread, not awaited: this flush's requests are answered now, and the
            # flushes that come meanwhile run beside it.
            self._unchecked = 0
            self._checkpoint = loop.run_in_executor(self._checkpoints, self._wal_checkpoint)
            self._checkpoint.add_done_callback(self._checkpointed)
        return first, grown

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)
        # After any checkpoint under way (queued before this, on the same thread).
        await loop.run_in_executor(self._checkpoints, self._close_checkpointer)
        self._checkpoints.shutdown(wait=False)

    def settle(self) -> None:
        """Inline: move what the flushes left in the backlog, now, on the caller's thread (once
        their requests were answered); a failed move leaves the persons in the backlog, where
        readers read them, and the next flush that defers tries again."""
        while self._due and not self._closed:
            try:
                written, more = self._move()
            except Exception as exc:
                self._due = self._caught_up = False
                log.warning("the trail's person backlog could not be moved: %s", type(exc).__name__)
                return
            self._unchecked += written
            self._due = more

    def _queue_move(self) -> None:
        self._moving = asyncio.get_running_loop().run_in_executor(self._thread, self._move)
        self._moving.add_done_callback(self._moved)

    def _moved(self, done: asyncio.Future[tuple[int, bool]]) -> None:
        self._moving = None
        if done.cancelled():
            return
        if done.exception() is not None:
            # The persons stay in the backlog (readers read it); the next flush that defers tries again.
            self._caught_up = False
            log.warning("the trail's person backlog could not be moved: %s", type(done.exception()).__name__)
            return
        written, more = done.result()
        self._unchecked += written
        if (more or self._again) and not self._closed:
            self._again = False
            self._queue_move()

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        self._checkpoint = None
        if not done.cancelled() and done.exception() is not None:
            # The WAL is checkpointed at the next turn (or by SQLite when the last connection
            # closes); the events are on disk either way.
            log.warning("the trail's WAL could not be checkpointed: %s", type(done.exception()).__name__)

    def _wal_checkpoint(self) -> None:
        if self._checkpointer is None:
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA busy_timeout=5000")
            self._checkpointer = connection
        try:
            # PASSIVE: copies what no reader still needs, never waits for a reader or a writer.
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            self._close_checkpointer()  # the next checkpoint opens another
            raise

    def _close_checkpointer(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The writer's connection in one write transaction (BEGIN IMMEDIATE: the database's
        write lock, as the log row's UPDATE takes it), committed when the block ends."""
        connection = self._open()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException as exc:
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                # A connection that failed may be broken (a file replaced, a disk error): the
                # next flush opens a new one.
                self._close()
            raise

    def _write(self, staged: Sequence[Staged], edge: Frontier | None) -> tuple[int, Frontier, int, int]:
        backlog: list[dict[str, Any]] = []
        with self._transaction() as connection:
            count = len(staged)
            found = self._run(connection, GROW, [{"count": count}], fetch=True)
            if not found:
                raise TrailUnavailable("the trail's log row is missing (run `hub migrate`)")
            first = found[0][0] - count
            if edge is None or edge.size != first:
                edge = self._frontier(connection, first)
            rows = rows_at(staged, first, edge, persons=False)
            # An event touching many persons keeps them in one backlog row, moved into the
            # index after this flush's requests are answered (hub/audit/backlog.py).
            for offset, item in enumerate(staged):
                if deferred(item):
                    backlog.append(backlog_row(item, first + offset))
                else:
                    rows.persons.extend(person_rows(item, first + offset))
            self._run(connection, EVENTS, rows.events)
            self._run(connection, PERSONS, rows.persons)
            self._run(connection, NODES, rows.nodes)
            self._run(connection, BACKLOG, backlog)
        return first, edge, len(rows.events) + len(rows.persons) + len(rows.nodes), len(backlog)

    def _move(self) -> tuple[int, bool]:
        """Move up to MOVE_ROWS backlog events into the person index, in one transaction: the
        rows written, and whether more are left. On the flushes' thread, one transaction a call,
        so flushes queued meanwhile go between them."""
        with self._transaction() as connection:
            taken = self._query(connection, _TAKE)
            persons = [
                {"position": position, "person": raw, "at_us": at_us, "entities": entities}
                for position, at_us, runs, packed in taken
                for raw, entities in unpack(runs, bytes(packed))
            ]
            self._run(connection, PERSONS, persons)
            if taken:
                self._query(connection, _DROP, {"last": taken[-1][0]})
        return len(persons), len(taken) == MOVE_ROWS

    def _query(
        self, connection: sqlite3.Connection, statement: ClauseElement, values: dict[str, Any] | None = None
    ) -> list[Any]:
        compiled = cast(SQLCompiler, statement.compile(dialect=self._engine.dialect))
        params = compiled.construct_params(values) or {}
        arguments = [params[name] for name in compiled.positiontup or []]
        self._observe(compiled.string, arguments)
        return connection.execute(compiled.string, arguments).fetchall()

    def _run(
        self, connection: sqlite3.Connection, statement: ClauseElement, rows: list[dict[str, Any]], fetch: bool = False
    ) -> list[Any]:
        if not rows:
            return []
        keys = tuple(rows[0])
        if fetch:
            prepared = compiled_for(self._engine.dialect, statement, keys)
            arguments = arguments_of(prepared, rows)
            self._observe(prepared[0], arguments)
            return connection.execute(prepared[0], arguments[0]).fetchall()
        # One INSERT of many rows rather than `executemany`: the sqlite3 module gives up the GIL
        # around every row's step, and each row's taking it back, while the event loop is busy,
        # waited for the loop's switch interval (a W6 flush: about 70 such waits, now about 8).
        insert = cast(Insert, statement)
        for chunk in row_chunks(rows):
            sql, picks = multi_row_for(self._engine.dialect, insert, keys, len(chunk))
            arguments = [chunk[row][key] for row, key in picks]
            self._observe(sql, arguments)
            connection.execute(sql, arguments)
        return []

    def _frontier(self, connection: sqlite3.Connection, size: int) -> Frontier:
        """The right edge at `size` from the stored subtrees (after another process wrote)."""
        if size == 0:
            return Frontier()
        wanted = range_nodes(0, size)
        keys = [node_key(level, idx) for level, idx in wanted]
        statement = select(_NODE.c.node, _NODE.c.hash).where(_NODE.c.node.in_(keys))
        compiled = statement.compile(dialect=self._engine.dialect, compile_kwargs={"render_postcompile": True})
        arguments = [compiled.params[name] for name in compiled.positiontup or []]
        found = {node: bytes(digest) for node, digest in connection.execute(compiled.string, arguments)}
        missing = [node for node, key in zip(wanted, keys, strict=True) if key not in found]
        if missing:
            raise TrailUnavailable(f"the trail's subtree {missing[0]} is missing")
        return Frontier(size, [found[key] for key in keys])

    def _observe(self, sql: str, arguments: Any) -> None:
        # Statement observers of the engine (tests counting statements) see these as well.
        engine = self._engine.sync_engine
        if engine.dispatch.before_cursor_execute:
            engine.dispatch.before_cursor_execute(None, None, sql, arguments, None, False)

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            # Autocommit mode: the transaction is the explicit BEGIN IMMEDIATE ... COMMIT.
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            # As the engine's connections (hub/db/engine.py): wait for the command line's write
            # lock rather than fail.
            connection.execute("PRAGMA busy_timeout=5000")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            # This connection's checkpoints are its own, off the flush (above); the engine's
            # connections keep SQLite's automatic ones.
            connection.execute("PRAGMA wal_autocheckpoint=0")
            self._connection = connection
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
