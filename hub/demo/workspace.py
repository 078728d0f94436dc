"""The demo's data folder: seven SQLite department databases, their manifests, the hub
database, the master key and the callers' tokens. Created on first start, reused afterwards.

The master key file (`master.key`, owner-only) is made once, before any data, and never
replaced: the sensitive fields of the department databases are encrypted under data keys that
the hub database keeps wrapped by it, so without both files the data cannot be read.

Creation writes a marker last, so an interrupted first start is redone instead of serving
half-filled databases. The department data is also redone when the hub database lacked a key it
needs (it was deleted, say): data under keys that are gone could never be read again."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.engine import URL

from hub.crypto.backup import backup_keys, restore_keys
from hub.crypto.cells import open_keyring
from hub.crypto.errors import KeyringError
from hub.crypto.keyring import Keyring
from hub.crypto.master import MasterKey, create_master_key_file, read_master_key_file
from hub.crypto.models import WrappedKey
from hub.db.engine import hub_engine, sessions
from hub.demo.catalog import demo_catalog, manifest_templates
from hub.demo.load import load_demo
from hub.migrate import upgrade

__all__ = [
    "DEPARTMENTS",
    "Workspace",
    "create_workspace",
    "manifest_templates",
    "open_workspace_keyring",
    "retarget_manifests",
    "share_keys",
]

MARKER = ".demo-complete"
MASTER_KEY_FILE = "master.key"
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
    def master_key_file(self) -> Path:
        """The master key (base64, mode 0600) that wraps the keys in the hub database."""
        return self.root / MASTER_KEY_FILE

    @property
    def ready(self) -> bool:
        return (self.root / MARKER).exists() and self.master_key_file.exists()


async def create_workspace(root: Path, progress: Progress | None = None) -> Workspace:
    """Create the demo databases, manifests, master key and hub database (migrated, with its
    keys) in `root`, unless they are already complete. An existing master key is always kept."""
    workspace = Workspace(root)
    keyring, made = await open_workspace_keyring(workspace)
    if workspace.ready and not made:
        return workspace
    await asyncio.to_thread(_clear, root)
    urls = {d: URL.create("sqlite+aiosqlite", database=str(root / f"{d}.db")).render_as_string() for d in DEPARTMENTS}
    await load_demo(urls, keyring, progress=progress)
    await asyncio.to_thread(_finish, root)
    return workspace


async def open_workspace_keyring(workspace: Workspace) -> tuple[Keyring, list[str]]:
    """The keyring the demo's data is encrypted under. Makes the master key file if there is
    none, migrates the hub database and makes the keys it lacks. Returns the keyring and the
    names of the keys made (none, once the demo exists)."""
    fresh = not workspace.master_key_file.exists()
    master = await asyncio.to_thread(_master_key, workspace)
    # alembic runs an event loop of its own: not inside this one.
    await asyncio.to_thread(upgrade, workspace.hub_database)
    engine = hub_engine(workspace.hub_database)
    try:
        return await open_keyring(sessions(engine), master, list(demo_catalog()))
    except KeyringError as exc:
        if fresh:
            # The hub database's keys are under a master key that was lost: the one just made
            # wraps nothing, and leaves the place free for the lost one to be put back.
            workspace.master_key_file.unlink()
        raise KeyringError(
            f"{exc}; the keys in {workspace.hub_database.database} are not under {workspace.master_key_file}: "
            f"put back the master key they were made under, or move {workspace.root} aside to start afresh"
        ) from None
    finally:
        await engine.dispose()


async def share_keys(workspace: Workspace, url: URL) -> int:
    """Give the (migrated) hub database at `url` the demo's keys, from a backup of the
    workspace's, unless it holds keys already; a hub on it then reads the demo's data with the
    workspace's master key. Returns the number of keys restored."""
    master = await asyncio.to_thread(read_master_key_file, workspace.master_key_file)
    source, target = hub_engine(workspace.hub_database), hub_engine(url)
    try:
        async with sessions(target)() as session, session.begin():
            if await session.scalar(select(WrappedKey.id).limit(1)) is not None:
                return 0
            async with sessions(source)() as reading:
                backup = await backup_keys(reading, [master])
            return await restore_keys(session, backup, [master])
    finally:
        await source.dispose()
        await target.dispose()


def _master_key(workspace: Workspace) -> MasterKey:
    workspace.root.mkdir(parents=True, exist_ok=True)
    if workspace.master_key_file.exists():
        return read_master_key_file(workspace.master_key_file)
    return create_master_key_file(workspace.master_key_file)


def _clear(root: Path) -> None:
    (root / MARKER).unlink(missing_ok=True)
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
