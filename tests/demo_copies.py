"""The demo's manifests copied elsewhere, still pointing at the demo's SQLite databases: what a
newcomer has after copying them into a hub of their own."""

from __future__ import annotations

from collections.abc import Callable
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
