"""Copies of a live demo (tests/demo_copies.py) must leave the original's SQLite locks alone:
a plain file copy in this process drops them, and another process then deletes a write-ahead
log still in use (the cause of CI's "file is not a database")."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.demo_copies import copy_sqlite, copy_workspace

# Another process opens the database and closes it: the last connection to close checkpoints
# the write-ahead log and deletes it, unless another connection still holds its lock.
OPEN_AND_CLOSE = "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM t').fetchall()"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Path]:
    """A folder whose `hub.db` this process keeps open in WAL mode, with rows only in its log."""
    folder = tmp_path / "live"
    folder.mkdir()
    database = folder / "hub.db"
    with closing(sqlite3.connect(database)) as keeper:
        keeper.execute("PRAGMA journal_mode=WAL")
        keeper.execute("PRAGMA wal_autocheckpoint=0")
        keeper.execute("CREATE TABLE t (n INTEGER)")
        with keeper:
            keeper.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(100)])
        (folder / "master.key").write_bytes(b"k" * 32)
        (folder / "master.key").chmod(0o600)
        yield folder


def _another_process_opens_and_closes(database: Path) -> None:
    subprocess.run([sys.executable, "-c", OPEN_AND_CLOSE, str(database)], check=True, timeout=30)


def test_copying_a_live_demo_leaves_its_write_ahead_log_to_the_process_that_uses_it(live: Path, tmp_path: Path) -> None:
    assert (live / "hub.db-wal").exists()
    copy_workspace(live, tmp_path / "copy")
    _another_process_opens_and_closes(live / "hub.db")
    assert (live / "hub.db-wal").exists()


def test_a_plain_file_copy_of_a_live_database_lets_another_process_delete_its_log(live: Path, tmp_path: Path) -> None:
    # Why the copies above exist: this is what a plain copy did. If SQLite or the platform ever
    # stops behaving so, this test says the guard is no longer needed.
    shutil.copytree(live, tmp_path / "copy")
    _another_process_opens_and_closes(live / "hub.db")
    assert not (live / "hub.db-wal").exists()


def test_a_workspace_copy_has_every_row_and_no_log_of_its_own(live: Path, tmp_path: Path) -> None:
    copied = copy_workspace(live, tmp_path / "copy")
    assert sorted(p.name for p in copied.iterdir()) == ["hub.db", "master.key"]
    with closing(sqlite3.connect(copied / "hub.db")) as copy:
        assert copy.execute("SELECT count(*) FROM t").fetchone() == (100,)
    assert (copied / "master.key").stat().st_mode & 0o777 == 0o600


def test_a_database_copy_holds_what_only_the_log_held(live: Path, tmp_path: Path) -> None:
    copy_sqlite(live / "hub.db", tmp_path / "one.db")
    with closing(sqlite3.connect(tmp_path / "one.db")) as copy:
        assert copy.execute("SELECT sum(n) FROM t").fetchone() == (sum(range(100)),)
