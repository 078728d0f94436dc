"""The demo's data folder: seven SQLite department databases, their manifests, the hub
database and the callers' tokens. Created on first start, reused afterwards.

Creation writes a marker last, so an interrupted first start is redone from nothing instead of
serving half-filled databases."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy.engine import URL

from hub.demo.load import load_demo

MARKER = ".demo-complete"
DEPARTMENTS = ("population", "civil_affairs", "human_resources", "health", "education", "finance", "hotline")

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def manifests(self) -> Path:
        return self.root

    @property
    def hub_database(self) -> URL:
        return URL.create("sqlite+aiosqlite", database=str(self.root / "hub.db"))

    @property
    def token_file(self) -> Path:
        return self.root / "demo-tokens.json"

    @property
    def ready(self) -> bool:
        return (self.root / MARKER).exists()


def manifest_templates() -> list[Path]:
    folder = resources.files("hub.demo") / "manifests"
    return sorted(Path(str(folder)).glob("*.yaml"))


async def create_workspace(root: Path, progress: Progress | None = None) -> Workspace:
    """Create the demo databases and manifests in `root` unless they are already complete."""
    workspace = Workspace(root)
    if workspace.ready:
        return workspace
    root.mkdir(parents=True, exist_ok=True)
    for department in DEPARTMENTS:
        (root / f"{department}.db").unlink(missing_ok=True)
    urls = {d: URL.create("sqlite+aiosqlite", database=str(root / f"{d}.db")).render_as_string() for d in DEPARTMENTS}
    await load_demo(urls, progress=progress)
    for template in manifest_templates():
        shutil.copyfile(template, root / template.name)
    (root / MARKER).write_text("complete\n", encoding="utf-8")
    return workspace
