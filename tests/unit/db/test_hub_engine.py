"""The hub database's SQLite connections: settings every instance and command relies on."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from hub.db.engine import hub_engine


def _pragmas(path: Path) -> tuple[str, int, int]:
    async def read() -> tuple[str, int, int]:
        engine = hub_engine(URL.create("sqlite+aiosqlite", database=str(path)))
        try:
            async with engine.connect() as connection:
                mode = await connection.scalar(sa.text("PRAGMA journal_mode"))
                keys = await connection.scalar(sa.text("PRAGMA foreign_keys"))
                timeout = await connection.scalar(sa.text("PRAGMA busy_timeout"))
                return str(mode), int(keys or 0), int(timeout or 0)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_a_sqlite_hub_database_lets_readers_and_a_writer_work_at_once(tmp_path: Path) -> None:
    mode, foreign_keys, busy_timeout = _pragmas(tmp_path / "hub.db")

    assert mode == "wal"
    assert foreign_keys == 1
    assert busy_timeout == 5000


def test_a_writer_commits_while_another_connection_is_reading(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"

    async def run() -> tuple[list[int], list[int]]:
        engine = hub_engine(URL.create("sqlite+aiosqlite", database=str(path)))
        try:
            async with engine.begin() as setup:
                await setup.execute(sa.text("CREATE TABLE t (x INTEGER)"))
                await setup.execute(sa.text("INSERT INTO t VALUES (1)"))
            async with engine.connect() as reader, engine.connect() as writer:
                await reader.execute(sa.text("BEGIN"))
                during = list(await reader.scalars(sa.text("SELECT x FROM t ORDER BY x")))
                # Under the rollback journal this commit would wait for the reader's lock and
                # fail once busy_timeout passed ("database is locked"); under WAL it goes through.
                await writer.execute(sa.text("BEGIN IMMEDIATE"))
                await writer.execute(sa.text("INSERT INTO t VALUES (2)"))
                await writer.execute(sa.text("COMMIT"))
                await reader.execute(sa.text("COMMIT"))
                after = list(await reader.scalars(sa.text("SELECT x FROM t ORDER BY x")))
                return during, after
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == ([1], [1, 2])


def test_a_large_commit_through_the_engine_leaves_the_checkpoint_to_the_trails_writer(tmp_path: Path) -> None:
    # About 1,600 pages in one commit: past SQLite's default automatic checkpoint (1,000 pages),
    # which would copy them into the database file inside this commit, on a request's path.
    path = tmp_path / "hub.db"

    async def run() -> None:
        engine = hub_engine(URL.create("sqlite+aiosqlite", database=str(path)))
        try:
            async with engine.begin() as connection:
                await connection.execute(sa.text("CREATE TABLE t (x BLOB)"))
                await connection.execute(
                    sa.text(
                        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1600) "
                        "INSERT INTO t SELECT randomblob(4000) FROM n"
                    )
                )
            alone = tmp_path / "alone.db"
            alone.write_bytes(path.read_bytes())  # the database file without its WAL
            with sqlite3.connect(alone) as copy:
                tables = copy.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone()[0]
            assert tables == 0
        finally:
            await engine.dispose()

    asyncio.run(run())
