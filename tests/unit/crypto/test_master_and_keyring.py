"""The master key (settings, key files, permissions) and the wrapped keys of the hub database:
provisioning, rotation, and no plain key ever stored."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hub.config import SettingsError, load_settings
from hub.crypto.errors import KeyringError, MasterKeyError
from hub.crypto.fields import Failure, key_version
from hub.crypto.keyring import (
    current_data_version,
    ensure_data_key,
    load_keyring,
    provision,
    rotate_data_key,
    unwrap_row,
)
from hub.crypto.master import MasterKey, create_master_key_file, master_key_from_settings, read_master_key_file
from hub.crypto.models import WrappedKey
from hub.db.engine import hub_engine, sessions

DEPARTMENTS = ("population", "health", "civil_affairs")
DOMAINS = ("resident_id", "mobile")
POSIX_ONLY = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


@pytest.fixture
async def db(hub_db: URL) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = hub_engine(hub_db)
    yield sessions(engine)
    await engine.dispose()


# Settings: the master key comes from the environment or a key file, never both.


def test_master_key_from_the_environment_in_either_base64() -> None:
    key = os.urandom(32)
    for text in (base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode().rstrip("=")):
        settings = load_settings({"HUB_MASTER_KEY": text})
        assert settings.master_key == key
        assert master_key_from_settings(settings).id == MasterKey(key).id


def test_the_master_key_is_kept_out_of_reprs_and_manifest_secrets() -> None:
    text = base64.b64encode(os.urandom(32)).decode()
    settings = load_settings({"HUB_MASTER_KEY": text, "DB_URL": "sqlite://"})
    assert text not in repr(settings)
    assert settings.secret("HUB_MASTER_KEY") is None
    assert settings.secret("DB_URL") == "sqlite://"
    assert "MasterKey(id=" in repr(master_key_from_settings(settings))


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(os.urandom(16)).decode(), "AAAA"])
def test_a_malformed_master_key_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="HUB_MASTER_KEY must be 32 bytes"):
        load_settings({"HUB_MASTER_KEY": value})


def test_both_sources_at_once_are_refused() -> None:
    with pytest.raises(SettingsError, match="not both"):
        load_settings({"HUB_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(), "HUB_MASTER_KEY_FILE": "k"})


def test_no_master_key_configured_says_how_to_give_one() -> None:
    with pytest.raises(MasterKeyError, match="HUB_MASTER_KEY"):
        master_key_from_settings(load_settings({}))


# Key files.


@POSIX_ONLY
def test_a_created_key_file_is_owner_only_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "demo" / "master.key"
    old_umask = os.umask(0)  # a permissive umask must not widen the file
    try:
        made = create_master_key_file(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = load_settings({"HUB_MASTER_KEY_FILE": str(path)})
    assert settings.master_key_file == path
    assert master_key_from_settings(settings).id == made.id


def test_an_existing_key_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    made = create_master_key_file(path)
    before = path.read_bytes()
    with pytest.raises(MasterKeyError, match="already exists"):
        create_master_key_file(path)
    assert path.read_bytes() == before
    assert read_master_key_file(path).id == made.id


@POSIX_ONLY
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o606, 0o644, 0o620])
def test_a_key_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    path.chmod(mode)
    with pytest.raises(MasterKeyError, match=f"open to other users \\(mode 0{mode:o}\\).*chmod 600"):
        master_key_from_settings(load_settings({"HUB_MASTER_KEY_FILE": str(path)}))
    # Only a caller that says so explicitly may read it anyway.
    assert read_master_key_file(path, allow_shared=True).id


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not a key\n", "does not hold a base64"), (base64.b64encode(os.urandom(31)) + b"\n", "32-byte")],
)
def test_a_key_file_without_a_key_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(MasterKeyError, match=message):
        read_master_key_file(path)


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="does not exist"):
        read_master_key_file(tmp_path / "nowhere.key")


def test_master_key_ids_name_keys_without_revealing_them() -> None:
    raw = os.urandom(32)
    key = MasterKey(raw)
    assert len(key.id) == 16
    assert int(key.id, 16) >= 0
    assert key.id == MasterKey(raw).id != MasterKey(os.urandom(32)).id
    assert key.id not in (raw.hex(), raw[:8].hex())


# Wrapped keys in the hub database.


async def test_provisioning_makes_each_key_once(db: async_sessionmaker[AsyncSession]) -> None:
    master = MasterKey.generate()
    async with db() as session, session.begin():
        made = await provision(session, master, DEPARTMENTS, DOMAINS)
    assert made == [
        "data key civil_affairs v1",
        "data key health v1",
        "data key population v1",
        "blind-index key mobile",
        "blind-index key resident_id",
        "mask key",
        "audit signing key",
    ]
    async with db() as session, session.begin():
        assert await provision(session, master, DEPARTMENTS, DOMAINS) == []
        ring = await load_keyring(session, master)
    assert ring.departments == sorted(DEPARTMENTS)
    assert ring.domains == sorted(DOMAINS)
    assert all(ring.current_version(d) == 1 for d in DEPARTMENTS)


async def test_the_hub_database_holds_no_plaintext_key(hub_db: URL) -> None:
    master = MasterKey.generate()
    engine = hub_engine(hub_db)
    db = sessions(engine)
    try:
        async with db() as session, session.begin():
            await provision(session, master, DEPARTMENTS, DOMAINS)
            await rotate_data_key(session, master, "health")
        async with db() as session:
            rows = (await session.scalars(select(WrappedKey))).all()
            plain = [unwrap_row(row, {master.id: master}) for row in rows]
    finally:
        await engine.dispose()
    assert len(rows) == 8
    assert len(set(plain)) == 8  # every key its own: an index key is never a data key
    for row, key in zip(rows, plain, strict=True):
        assert key not in row.wrapped
    files = list(Path(str(hub_db.database)).parent.glob("hub.db*"))
    stored = b"".join(f.read_bytes() for f in files)
    assert stored.count(rows[0].wrapped) == 1  # the file is readable as it is: the check can fail
    for key in plain:
        for spelling in (key, key.hex().encode(), base64.b64encode(key), base64.urlsafe_b64encode(key)):
            assert spelling not in stored


async def test_a_wrong_master_key_is_named_not_guessed(db: async_sessionmaker[AsyncSession]) -> None:
    master, other = MasterKey.generate(), MasterKey.generate()
    async with db() as session, session.begin():
        await provision(session, master, ["health"], [])
    async with db() as session:
        with pytest.raises(KeyringError, match=f"wrapped by master key {master.id}, which was not given"):
            await load_keyring(session, other)


async def test_a_wrapped_key_moved_to_another_row_fails_to_unwrap(db: async_sessionmaker[AsyncSession]) -> None:
    master = MasterKey.generate()
    async with db() as session, session.begin():
        await provision(session, master, ["health", "population"], [])
        health = await session.scalar(select(WrappedKey.wrapped).where(WrappedKey.scope == "health"))
        await session.execute(update(WrappedKey).where(WrappedKey.scope == "population").values(wrapped=health))
    async with db() as session:
        with pytest.raises(KeyringError, match="data key population v1 failed its integrity check"):
            await load_keyring(session, master)


async def test_new_keys_are_refused_under_a_second_master_key(db: async_sessionmaker[AsyncSession]) -> None:
    master = MasterKey.generate()
    async with db() as session, session.begin():
        await provision(session, master, ["health"], [])
    async with db() as session, session.begin():
        with pytest.raises(KeyringError, match="finish the rewrap"):
            await ensure_data_key(session, MasterKey.generate(), "population")


async def test_rotation_uses_the_new_version_for_new_values_and_old_values_still_decrypt(
    db: async_sessionmaker[AsyncSession],
) -> None:
    master = MasterKey.generate()
    async with db() as session, session.begin():
        await provision(session, master, DEPARTMENTS, DOMAINS)
        before = await load_keyring(session, master)
    old_cipher = before.cipher("health", "Visit", "diagnosis")
    old_values = [old_cipher.encrypt_text(f"diagnosis {i}", f"V{i}") for i in range(5)]

    async with db() as session, session.begin():
        assert await rotate_data_key(session, master, "health") == 2
        assert await current_data_version(session, "health") == 2
        assert await current_data_version(session, "population") == 1
        after = await load_keyring(session, master)
    cipher = after.cipher("health", "Visit", "diagnosis")
    new_value = cipher.encrypt(f"diagnosis {5}", "V5")
    assert {key_version(v) for v in old_values} == {1}
    assert key_version(new_value) == 2
    assert cipher.decrypt_column([*old_values, new_value], [f"V{i}" for i in range(6)]) == [
        f"diagnosis {i}" for i in range(6)
    ]
    # Other departments are untouched, and the keyring loaded before the rotation says it lacks v2.
    assert after.current_version("population") == 1
    assert old_cipher.decrypt_column([new_value], ["V5"]) == [Failure.UNKNOWN_KEY]


async def test_a_keyring_refuses_departments_and_domains_it_has_no_key_for(
    db: async_sessionmaker[AsyncSession],
) -> None:
    master = MasterKey.generate()
    async with db() as session, session.begin():
        await provision(session, master, ["health"], ["resident_id"])
        ring = await load_keyring(session, master)
    with pytest.raises(KeyringError, match="no data key for the department finance"):
        ring.cipher("finance", "Budget", "amount")
    with pytest.raises(KeyringError, match="no blind-index key for the domain mobile"):
        ring.blind_index("mobile")
    assert "health" in repr(ring) and "resident_id" in repr(ring)
