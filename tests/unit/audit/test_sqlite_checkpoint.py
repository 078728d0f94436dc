"""The trail's writer on a SQLite file checkpoints the WAL itself, after a flush's requests are
answered, and a checkpoint that fails costs no request its answer nor the log its order."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from hub.audit import sqlite_writer
from hub.audit.event import Event
from hub.audit.verify import verify_log
from hub.audit.writer import TrailWriter
from hub.db.engine import hub_engine, sessions
from hub.migrate import upgrade


def event(n: int, persons: int) -> Event:
    return Event(
        at_us=1_765_000_000_000_000 + n,
        principal="auditor",
        department="audit",
        purpose="audit",
        operation_hash=f"{n:064x}",
        operation_name=None,
        document_id=None,
        outcome="served",
        status=200,
        code=None,
        policy_version="7",
        released={"fields": [], "rows": {"civil_affairs.ServiceDelivery": persons}},
        persons={f"{p:064x}": "civil_affairs.ServiceDelivery" for p in range(persons)},
    )


def new_database(folder: Path) -> URL:
    url = URL.create("sqlite+aiosqlite", database=str(folder / "hub.db"))
    upgrade(url)  # alembic runs its own event loop: before ours
    return url


async def append_all(url: URL, folder: Path, events: int, persons: int) -> tuple[list[int], bool, int]:
    """Append `events` events one at a time; their positions, whether the log verifies, and the
    events in the database file before the writer closes (SQLite checkpoints at the last close)."""
    engine = hub_engine(url)
    writer = TrailWriter(engine)
    try:
        positions = [await writer.append(event(n, persons)) for n in range(events)]
        flusher = writer._flusher
        assert isinstance(flusher, sqlite_writer.SqliteFlusher)
        if flusher._checkpoint is not None:
            await asyncio.wait([flusher._checkpoint])
        report = await verify_log(sessions(engine), None)
        in_file = events_in_database_file(url, folder)
    finally:
        await writer.close()
        await engine.dispose()
    return positions, report.ok and report.events == events, in_file


def events_in_database_file(url: URL, folder: Path) -> int:
    """The events in the database file alone, as it is without its WAL: what was checkpointed."""
    assert url.database is not None
    copy = folder / "alone.db"
    shutil.copyfile(url.database, copy)
    with sqlite3.connect(copy) as connection:
        return int(connection.execute("SELECT count(*) FROM hub_audit_event").fetchone()[0])


@pytest.mark.parametrize(("threshold", "checkpointed"), [(50, True), (10**9, False)])
def test_the_writer_checkpoints_the_wal_once_enough_rows_were_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int, checkpointed: bool
) -> None:
    url = new_database(tmp_path)
    monkeypatch.setattr(sqlite_writer, "CHECKPOINT_ROWS", threshold)
    # 6 events of 20 persons: about 150 rows, past a threshold of 50 and far below 10**9.
    positions, verified, in_file = asyncio.run(append_all(url, tmp_path, 6, 20))
    assert positions == list(range(6)) and verified
    if checkpointed:
        assert in_file >= 3
    else:
        # Nothing reached the database file: the flushes' commits did not checkpoint by themselves.
        assert in_file == 0


def test_a_failed_checkpoint_leaves_every_request_its_position_and_the_log_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = new_database(tmp_path)
    monkeypatch.setattr(sqlite_writer, "CHECKPOINT_ROWS", 10)
    tried: list[int] = []

    def broken(self: sqlite_writer.SqliteFlusher) -> None:
        tried.append(1)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(sqlite_writer.SqliteFlusher, "_wal_checkpoint", broken)
    positions, verified, _ = asyncio.run(append_all(url, tmp_path, 8, 5))
    assert tried
    assert positions == list(range(8)) and verified


def test_a_flush_does_not_wait_behind_a_checkpoint_under_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A checkpoint copying tens of MB takes hundreds of ms on a busy machine: the requests whose
    # events come meanwhile must not wait for it (issue 13: lookups beside the heaviest request).
    url = new_database(tmp_path)
    monkeypatch.setattr(sqlite_writer, "CHECKPOINT_ROWS", 10)
    real = sqlite_writer.SqliteFlusher._wal_checkpoint
    started = threading.Event()

    def slow(self: sqlite_writer.SqliteFlusher) -> None:
        started.set()
        time.sleep(2.0)
        real(self)

    monkeypatch.setattr(sqlite_writer.SqliteFlusher, "_wal_checkpoint", slow)

    async def work() -> tuple[int, float, bool]:
        engine = hub_engine(url)
        writer = TrailWriter(engine)
        try:
            await writer.append(event(0, 20))  # 21 rows: a checkpoint starts after this flush
            assert await asyncio.to_thread(started.wait, 5)
            began = time.perf_counter()
            position = await writer.append(event(1, 1))
            took = time.perf_counter() - began
            report = await verify_log(sessions(engine), None)
            return position, took, report.ok
        finally:
            await writer.close()
            await engine.dispose()

    position, took, verified = asyncio.run(work())
    assert position == 1 and verified
    assert took < 1.0, f"the flush waited {took:.2f} s behind the checkpoint"
