"""The demo's manifests copied elsewhere, still pointing at the demo's SQLite databases: what a
newcomer has after copying them into a hub of their own."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import yaml

from hub.demo.workspace import Workspace


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
    with closing(sqlite3.connect(workspace.root / "hub.db")) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
        with copy:
            tables = {row[0] for row in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for table in forget:
                if table in tables:
                    copy.execute(f"DELETE FROM {table}")  # noqa: S608 (the caller's table names)
    return target
