"""`hub keys rewrap` and `hub keys rotate` killed at random moments (a real SIGKILL of the
process), then run again to completion: every key opens, and every value encrypted before
decrypts to the same plaintext checksum. The hub database is SQLite and PostgreSQL.

Half the kills land at a random time from the start (often while the process is still starting),
half at a random point of the work itself: for rewrap after a random number of keys have moved,
for rotate once its single transaction is under way (its progress bar is up)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import delete, func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub.crypto.errors import KeyringError
from hub.crypto.keyring import Keyring, load_keyring, provision, rotate_data_key
from hub.crypto.master import MasterKey, create_master_key_file
from hub.crypto.models import WrappedKey
from hub.crypto.rotation import data_versions
from hub.db.engine import hub_engine, sessions
from hub.migrate import upgrade
from tests.servers import fresh_database, server_url

pytestmark = pytest.mark.slow

HUB = Path(sys.executable).with_name("hub")
DEPARTMENTS = [f"dept{n:02d}" for n in range(40)]
DOMAINS = ("resident_id", "mobile")
# Each department: v1 and v2 data keys, so 80 data keys + 2 index keys + the mask key + the
# trail's signing key.
TOTAL_KEYS = 2 * len(DEPARTMENTS) + len(DOMAINS) + 2
SEEDS = range(6)
PG_DATABASE = "hub_it_keys_kill"


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[URL]:
    if request.param == "sqlite":
        url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "hub.db"))
        upgrade(url)
        yield url
        return
    url = fresh_database("postgresql", PG_DATABASE)
    upgrade(url)
    yield url
    asyncio.run(_drop(url))


async def _drop(url: URL) -> None:
    engine = create_async_engine(server_url("postgresql"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(f"DROP DATABASE IF EXISTS {url.database} WITH (FORCE)"))
    finally:
        await engine.dispose()


# --- the values: a department-like SQLite table of encrypted cells --------------------------


class Cells:
    """Encrypted cells in a small SQLite table, and the checksum of their plaintexts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE IF NOT EXISTS cell (department TEXT, row_key TEXT PRIMARY KEY, stored)")

    def clear(self) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute("DELETE FROM cell")

    def write(self, ring: Keyring, rng: random.Random, tag: str) -> list[tuple[str, str, str]]:
        written = []
        with sqlite3.connect(self.path) as db:
            for department in DEPARTMENTS:
                cipher = ring.cipher(department, "Person", "idNumber")
                for n in range(3):
                    row = f"{department}-{tag}-{n}"
                    plain = f"{rng.randrange(10**17):017d}{rng.choice('0123456789X')}"
                    stored = cipher.encrypt_text(plain, row) if n % 2 else cipher.encrypt(plain, row)
                    db.execute("INSERT INTO cell VALUES (?, ?, ?)", (department, row, stored))
                    written.append((department, row, plain))
        return written

    def decrypted_checksum(self, ring: Keyring) -> str:
        with sqlite3.connect(self.path) as db:
            rows = db.execute("SELECT department, row_key, stored FROM cell").fetchall()
        plain = []
        for department, row, stored in rows:
            value = ring.cipher(department, "Person", "idNumber").decrypt(stored, row)
            assert isinstance(value, str), f"{department} {row}: {value}"
            plain.append((department, row, value))
        return checksum(plain)


def checksum(rows: list[tuple[str, str, str]]) -> str:
    digest = hashlib.sha256()
    for department, row, plain in sorted(rows):
        digest.update(f"{department}\0{row}\0{plain}\n".encode())
    return digest.hexdigest()


# --- the hub database ---------------------------------------------------------------------


@dataclass
class Hub:
    url: URL
    engine: AsyncEngine

    async def keyring(self, *masters: MasterKey) -> Keyring:
        async with sessions(self.engine)() as session:
            return await load_keyring(session, list(masters))

    async def by_master(self) -> dict[str, int]:
        async with sessions(self.engine)() as session:
            rows = await session.execute(
                select(WrappedKey.master_key_id, func.count()).group_by(WrappedKey.master_key_id)
            )
            return {key_id: count for key_id, count in rows}

    async def data_versions(self) -> dict[str, int]:
        async with sessions(self.engine)() as session:
            return await data_versions(session)

    async def populate(self, master: MasterKey, cells: Cells, rng: random.Random) -> list[tuple[str, str, str]]:
        """Fresh keys (two data-key versions per department) and values under both; returns the
        plaintexts written."""
        cells.clear()
        async with sessions(self.engine)() as session, session.begin():
            await session.execute(delete(WrappedKey))
            await provision(session, master, DEPARTMENTS, DOMAINS)
        written = cells.write(await self.keyring(master), rng, "v1")
        async with sessions(self.engine)() as session, session.begin():
            for department in DEPARTMENTS:
                await rotate_data_key(session, master, department)
        written += cells.write(await self.keyring(master), rng, "v2")
        return written


def environment(url: URL, master: bytes) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATABASE_URL"] = url.render_as_string(hide_password=False)
    env["HUB_MASTER_KEY"] = base64.b64encode(master).decode()
    return env


async def start(args: list[str], env: dict[str, str], stderr: Path) -> asyncio.subprocess.Process:
    with stderr.open("wb") as err:
        return await asyncio.create_subprocess_exec(
            str(HUB), "keys", *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=err
        )


async def run_to_completion(args: list[str], env: dict[str, str], stderr: Path) -> None:
    process = await start(args, env, stderr)
    code = await asyncio.wait_for(process.wait(), timeout=120)
    assert code == 0, await asyncio.to_thread(stderr.read_text, errors="replace")


async def shows(stderr: Path, text: str) -> bool:
    return text in await asyncio.to_thread(stderr.read_text, errors="replace")


async def kill(process: asyncio.subprocess.Process) -> bool:
    """SIGKILL the process; True if it was still running (the kill interrupted it)."""
    running = process.returncode is None
    if running:
        process.kill()
    await process.wait()
    return running


# --- rewrap -------------------------------------------------------------------------------


async def test_rewrap_killed_at_random_points_then_run_again_loses_nothing(hub_url: URL, tmp_path: Path) -> None:
    hub = Hub(hub_url, hub_engine(hub_url))
    cells = Cells(tmp_path / "cells.db")
    midway = 0
    try:
        for seed in SEEDS:
            rng = random.Random(seed)
            old_bytes = os.urandom(32)
            old = MasterKey(old_bytes)
            new_file = tmp_path / f"new-{seed}.key"
            new = create_master_key_file(new_file)
            before = checksum(await hub.populate(old, cells, rng))
            env = environment(hub_url, old_bytes)
            args = ["rewrap", "--new-key-file", str(new_file), "--batch-size", "1"]

            process = await start(args, env, tmp_path / f"rewrap-{seed}.err")
            if seed % 2:
                await asyncio.sleep(rng.uniform(0, 1.5))
            else:
                # Wait until some keys have moved, then a moment more: inside a batch or between.
                target = rng.randint(1, TOTAL_KEYS - 10)
                # Polling another process: nothing in this one could set an event.
                while process.returncode is None and (await hub.by_master()).get(new.id, 0) < target:  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
                await asyncio.sleep(rng.uniform(0, 0.01))
            interrupted = await kill(process)

            # Killed anywhere, every key is under one of the two master keys and opens with both.
            split = await hub.by_master()
            assert set(split) <= {old.id, new.id}
            assert sum(split.values()) == TOTAL_KEYS
            assert cells.decrypted_checksum(await hub.keyring(old, new)) == before
            if interrupted and 0 < split.get(new.id, 0) < TOTAL_KEYS:
                midway += 1

            await run_to_completion(args, env, tmp_path / f"rewrap-{seed}-again.err")
            assert await hub.by_master() == {new.id: TOTAL_KEYS}
            assert cells.decrypted_checksum(await hub.keyring(new)) == before
            with pytest.raises(KeyringError, match="which was not given"):
                await hub.keyring(old)
    finally:
        await hub.engine.dispose()
    # Some kills must have cut a rewrap in the middle, or the test proved nothing.
    assert midway >= 2


# --- rotate -------------------------------------------------------------------------------


async def test_rotate_killed_at_random_points_adds_nothing_or_everything(hub_url: URL, tmp_path: Path) -> None:
    hub = Hub(hub_url, hub_engine(hub_url))
    cells = Cells(tmp_path / "cells.db")
    inside = 0
    try:
        for seed in SEEDS:
            rng = random.Random(1000 + seed)
            master_bytes = os.urandom(32)
            master = MasterKey(master_bytes)
            written = await hub.populate(master, cells, rng)
            before = checksum(written)
            versions = await hub.data_versions()
            env = environment(hub_url, master_bytes)
            errors = tmp_path / f"rotate-{seed}.err"

            process = await start(["rotate"], env, errors)
            bar_was_up = False
            if seed % 2:
                await asyncio.sleep(rng.uniform(0, 1.2))
            else:
                # The progress bar appears inside the one transaction, before the first key.
                while process.returncode is None and not await shows(errors, f"0/{len(DEPARTMENTS)}"):  # noqa: ASYNC110
                    await asyncio.sleep(0.001)
                bar_was_up = process.returncode is None
                await asyncio.sleep(rng.uniform(0, 0.03))
            interrupted = await kill(process)

            # Nothing or everything: every department moved by the same number of versions.
            moved = {d: v - versions[d] for d, v in (await hub.data_versions()).items()}
            assert set(moved.values()) in ({0}, {1}), moved
            assert cells.decrypted_checksum(await hub.keyring(master)) == before
            if interrupted and bar_was_up and set(moved.values()) == {0}:
                inside += 1

            await run_to_completion(["rotate"], env, tmp_path / f"rotate-{seed}-again.err")
            after = await hub.data_versions()
            assert {after[d] - versions[d] for d in DEPARTMENTS} == {set(moved.values()).pop() + 1}
            ring = await hub.keyring(master)
            assert cells.decrypted_checksum(ring) == before
            # New values go under the new version, and decrypt beside the old ones.
            assert {ring.current_version(d) for d in DEPARTMENTS} == set(after.values())
            written += cells.write(ring, rng, "new")
            assert cells.decrypted_checksum(await hub.keyring(master)) == checksum(written)
    finally:
        await hub.engine.dispose()
    # Some kills must have landed inside the transaction, before its commit.
    assert inside >= 1
