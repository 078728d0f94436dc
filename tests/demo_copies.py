"""Copies of the session's live demo for tests: its manifests (still pointing at the demo's
SQLite databases, as a newcomer copying them into a hub of their own would have them), its hub
database, or its whole folder.

A live SQLite file is never copied with plain file I/O here. Closing any file descriptor of a
file drops every POSIX lock this process holds on it (sqlite.org/howtocorrupt.html, 2.2), so a
`shutil.copy` of a database the session's demo hub has open silently unlocks it: a `hub serve`
subprocess then believes it closed the last connection, checkpoints and deletes a write-ahead
log still in use, and later reads find "file is not a database". SQLite's backup API reads
through SQLite itself, which keeps such descriptors open while locks are held."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import yaml

from hub.demo.workspace import Workspace

# A database's companions: SQLite's own, never copied by themselves (a backup carries their content).
COMPANIONS = ("-wal", "-shm", "-journal")


def copy_demo_manifests(
    workspace: Workspace, destination: Path, edit: Callable[[dict[str, Any]], None] | None = None
) -> Path:
    """Copy the workspace's manifests to `destination` with absolute SQLite paths, each passed
    through `edit` (given the parsed document) first."""
    destination.mkdir(parents=True, exist_ok=True)
    for source in sorted(workspace.manifests.glob("*.yaml")):
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
        path = document["connection"]["sqlite_path"]
        document["connection"]["sqlite_path"] = str((workspace.manifests / path).resolve())
        if edit is not None:
            edit(document)
        (destination / source.name).write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return destination


def copy_hub_database(workspace: Workspace, target: Path, forget: tuple[str, ...] = ("hub_catalog",)) -> Path:
    """A copy of the demo's hub database (its keys, apps and tokens) at `target`, without the
    rows of `forget`: by SQLite's backup, so what a serving hub holds in its write-ahead log is
    copied too. The shared database records the catalog hash (and the policy) of whichever hub
    served the demo first; a test serving other manifests starts from a copy without them."""
    copy_sqlite(workspace.root / "hub.db", target)
    with closing(sqlite3.connect(target)) as copy, copy:
        tables = {row[0] for row in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in forget:
            if table in tables:
                copy.execute(f"DELETE FROM {table}")  # noqa: S608 (the caller's table names)
    return target


def copy_sqlite(source: Path, target: Path) -> Path:
    """A consistent copy of the SQLite database `source` (with what its write-ahead log holds) at
    `target`, made by SQLite's backup API, never by reading the file."""
    with closing(sqlite3.connect(source)) as reading, closing(sqlite3.connect(target)) as copy:
        reading.backup(copy)
    return target


def copy_workspace(source: Path, target: Path) -> Path:
    """A copy of a demo folder that a hub may be serving: each `*.db` by SQLite's backup, their
    write-ahead logs and shared-memory files left out, every other file as it is (modes kept,
    so the master key stays readable by its owner only)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.name.endswith(COMPANIONS):
            continue
        destination = target / path.name
        if path.is_dir():
            copy_workspace(path, destination)
        elif path.suffix == ".db":
            copy_sqlite(path, destination)
        else:
            shutil.copy2(path, destination)
    return target
