"""Custody of the keys: rewrap under a new master key (interrupted, then resumed) and backup then
restore into an empty hub database; after each, every stored value still decrypts."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.crypto.backup import backup_keys, parse_backup, restore_keys
from hub.crypto.errors import KeyringError
from hub.crypto.keyring import Keyring, load_keyring, provision, rotate_data_key, unwrap_row
from hub.crypto.master import MasterKey
from hub.crypto.models import WrappedKey
from hub.crypto.rewrap import RewrapProgress, pending, rewrap, rewrap_batch
from hub.db.engine import hub_engine, sessions
from hub.migrate import upgrade

DEPARTMENTS = ("population", "health", "civil_affairs", "hotline", "education")
DOMAINS = ("resident_id", "mobile")
ID_NUMBERS = ["11010519850202567X", "110105199001011234", "330102200512120021"]

Samples = list[tuple[str, str, str | bytes]]  # (department, row key, stored value)


class Interrupted(Exception):
    """Stands for the process being killed between two keys."""


@pytest.fixture
async def db(hub_db: URL) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = hub_engine(hub_db)
    yield sessions(engine)
    await engine.dispose()


async def populated(db: async_sessionmaker[AsyncSession], master: MasterKey) -> Samples:
    """Provision keys (two versions for health) and encrypt values under every data key."""
    async with db() as session, session.begin():
        await provision(session, master, DEPARTMENTS, DOMAINS)
        ring = await load_keyring(session, master)
    samples = encrypt_samples(ring, "v1")
    async with db() as session, session.begin():
        await rotate_data_key(session, master, "health")
        ring = await load_keyring(session, master)
    return samples + encrypt_samples(ring, "v2")


def encrypt_samples(ring: Keyring, tag: str) -> Samples:
    out: Samples = []
    for department in DEPARTMENTS:
        cipher = ring.cipher(department, "Person", "idNumber")
        for n, id_number in enumerate(ID_NUMBERS):
            row = f"{tag}-{n}"
            out.append(
                (department, row, cipher.encrypt_text(id_number, row) if n % 2 else cipher.encrypt(id_number, row))
            )
    return out


def assert_all_decrypt(ring: Keyring, samples: Samples) -> None:
    for department in DEPARTMENTS:
        mine = [(row, value) for d, row, value in samples if d == department]
        cipher = ring.cipher(department, "Person", "idNumber")
        got = cipher.decrypt_column([v for _, v in mine], [r for r, _ in mine])
        assert got == [ID_NUMBERS[int(row.split("-")[1])] for row, _ in mine]


async def master_ids(db: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with db() as session:
        rows = await session.execute(select(WrappedKey.master_key_id, func.count()).group_by(WrappedKey.master_key_id))
        return {key_id: count for key_id, count in rows}


async def test_rewrap_interrupted_between_keys_completes_when_run_again(db: async_sessionmaker[AsyncSession]) -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    samples = await populated(db, old)
    total = sum((await master_ids(db)).values())
    # Data keys (one department has two versions), index keys, the mask key, the signing key.
    assert total == len(DEPARTMENTS) + 1 + len(DOMAINS) + 1 + 1

    seen: list[RewrapProgress] = []

    def killed_after_three_keys(step: RewrapProgress) -> None:
        seen.append(step)
        if len(seen) == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        await rewrap(db, [old], new, batch_size=1, progress=killed_after_three_keys)
    assert await master_ids(db) == {old.id: total - 3, new.id: 3}

    # Halfway, the hub needs both master keys; either alone names the one missing.
    async with db() as session:
        assert_all_decrypt(await load_keyring(session, [old, new]), samples)
        for alone, missing in ((old, new), (new, old)):
            with pytest.raises(KeyringError, match=f"master key {missing.id}, which was not given"):
                await load_keyring(session, alone)

    moved = await rewrap(db, [old], new, batch_size=2)
    assert moved == total - 3
    assert await master_ids(db) == {new.id: total}
    async with db() as session:
        assert_all_decrypt(await load_keyring(session, new), samples)
        with pytest.raises(KeyringError):
            await load_keyring(session, old)
    # Done is done: running it again moves nothing.
    assert await rewrap(db, [old], new) == 0


async def test_rewrap_killed_inside_a_batch_leaves_every_key_readable(db: async_sessionmaker[AsyncSession]) -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    samples = await populated(db, old)

    async def killed_before_commit() -> None:
        async with db() as session, session.begin():
            progress = await rewrap_batch(session, [old], new, limit=4)
            assert progress.rewrapped == 4
            raise Interrupted  # before the commit: the batch is rolled back as a whole

    with pytest.raises(Interrupted):
        await killed_before_commit()
    assert set(await master_ids(db)) == {old.id}
    async with db() as session:
        assert_all_decrypt(await load_keyring(session, old), samples)
        assert await pending(session, new) == sum((await master_ids(db)).values())
    await rewrap(db, [old], new)
    async with db() as session:
        assert_all_decrypt(await load_keyring(session, new), samples)


async def test_rewrap_without_the_old_master_key_names_it_and_changes_nothing(
    db: async_sessionmaker[AsyncSession],
) -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    await populated(db, old)
    with pytest.raises(KeyringError, match=f"master key {old.id}, which was not given"):
        await rewrap(db, [], new)
    assert set(await master_ids(db)) == {old.id}


async def test_backup_then_restore_into_an_empty_hub_database_decrypts_every_value(
    db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    master = MasterKey.generate()
    samples = await populated(db, master)
    async with db() as session:
        document = (await backup_keys(session, [master])).to_json()
        plain = [unwrap_row(row, {master.id: master}) for row in (await session.scalars(select(WrappedKey))).all()]
    parsed = json.loads(document)
    assert parsed["format"] == "hub-keys/1"
    assert parsed["master_key_ids"] == [master.id]
    assert len(parsed["keys"]) == len(plain)
    for key in plain:
        for spelling in (key.hex(), base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode()):
            assert spelling not in document

    fresh_url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "restored" / "hub.db"))
    await asyncio.to_thread(upgrade, fresh_url)  # alembic runs its own event loop
    engine = hub_engine(fresh_url)
    try:
        fresh = sessions(engine)
        async with fresh() as session, session.begin():
            assert await restore_keys(session, document, [master]) == len(plain)
        async with fresh() as session:
            ring = await load_keyring(session, master)
        assert_all_decrypt(ring, samples)
        assert ring.current_version("health") == 2
        # The blind-index and mask keys came back too: indexes computed before match after.
        async with db() as session:
            before = await load_keyring(session, master)
        for domain in DOMAINS:
            assert ring.blind_index(domain).hex(ID_NUMBERS[0]) == before.blind_index(domain).hex(ID_NUMBERS[0])
        assert ring.mask_key("resident_id", "health") == before.mask_key("resident_id", "health")

        # Restoring twice would mix two sets of keys: refused.
        async with fresh() as session, session.begin():
            with pytest.raises(KeyringError, match="already holds"):
                await restore_keys(session, document, [master])
    finally:
        await engine.dispose()


async def test_restore_writes_nothing_unless_every_key_unwraps(
    db: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    master = MasterKey.generate()
    await populated(db, master)
    async with db() as session:
        document = await backup_keys(session)
    swapped = json.loads(document.to_json())
    swapped["keys"][0]["wrapped"], swapped["keys"][1]["wrapped"] = (
        swapped["keys"][1]["wrapped"],
        swapped["keys"][0]["wrapped"],
    )

    fresh_url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "restored" / "hub.db"))
    await asyncio.to_thread(upgrade, fresh_url)  # alembic runs its own event loop
    engine = hub_engine(fresh_url)
    try:
        fresh = sessions(engine)
        for given, masters, message in (
            (document, [MasterKey.generate()], "which was not given"),
            (json.dumps(swapped), [master], "failed its integrity check"),
            ('{"format": "something else"}', [master], "not a key backup"),
            ("not json", [master], "not a key backup"),
        ):
            async with fresh() as session, session.begin():
                with pytest.raises(KeyringError, match=message):
                    await restore_keys(session, given, masters)
            async with fresh() as session:
                assert await session.scalar(select(func.count()).select_from(WrappedKey)) == 0
    finally:
        await engine.dispose()


async def test_a_backup_is_refused_when_a_key_would_not_restore(db: async_sessionmaker[AsyncSession]) -> None:
    master = MasterKey.generate()
    await populated(db, master)
    async with db() as session:
        with pytest.raises(KeyringError, match="which was not given"):
            await backup_keys(session, [MasterKey.generate()])
        document = await backup_keys(session)
    assert parse_backup(document.to_json()) == document
