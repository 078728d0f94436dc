"""Engines and sessions for the hub's own database."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def hub_engine(url: URL) -> AsyncEngine:
    engine = create_async_engine(url, pool_pre_ping=url.get_backend_name() != "sqlite")
    if url.get_backend_name() == "sqlite":
        # SQLite ignores foreign keys unless asked, and waits on a locked file for a while
        # rather than failing at once when the command line and the server write together.
        # Write-ahead logging: readers (tokens, policy version checks) never hold up a writer
        # (the lookup quota's counts; at the start of an hour every caller's values are new
        # again), nor a writer them, so instances on one file do not queue on each other.
        # `synchronous` keeps its default (FULL): a commit is on disk when it returns.
        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA journal_mode=WAL")
            # The trail's writer checkpoints the WAL itself, off its flushes, every few thousand
            # rows (hub/audit/sqlite_writer.py); SQLite's default (every 1,000 pages) would hand
            # that copying to whichever request commits here next (a lookup quota's count) while
            # a W1 event's pages (about 1,400) are waiting for it. This is the backstop.
            cursor.execute("PRAGMA wal_autocheckpoint=16384")
            cursor.close()

    return engine


def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
