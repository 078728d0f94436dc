"""The demo's data folder: seven SQLite department databases, their manifests, the hub
database and the callers' tokens. Created on first start, reused afterwards.

Creation writes a marker last, so an interrupted first start is redone from nothing instead of
serving half-filled databases."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
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
    await asyncio.to_thread(_clear, root)
    urls = {d: URL.create("sqlite+aiosqlite", database=str(root / f"{d}.db")).render_as_string() for d in DEPARTMENTS}
    await load_demo(urls, progress=progress)
    await asyncio.to_thread(_finish, root)
    return workspace


def _clear(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for department in DEPARTMENTS:
        (root / f"{department}.db").unlink(missing_ok=True)


def _finish(root: Path) -> None:
    for template in manifest_templates():
        shutil.copyfile(template, root / template.name)
    (root / MARKER).write_text("complete\n", encoding="utf-8")


def retarget_manifests(destination: Path, connection: Mapping[str, object]) -> Path:
    """Copy the demo manifests to `destination` with another connection (for example
    `{"url_env": "HUB_BENCH_URL"}`), so the same entities are served from another database."""
    destination.mkdir(parents=True, exist_ok=True)
    for template in manifest_templates():
        document = yaml.safe_load(template.read_text(encoding="utf-8"))
        kept = {k: v for k, v in document["connection"].items() if k not in ("sqlite_path", "url_env")}
        document["connection"] = {**kept, **connection}
        (destination / template.name).write_text(
            yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
    return destination
