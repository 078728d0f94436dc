"""`hub keys status | rotate | rewrap | new-master-key | backup | restore` as an operator runs them:
summaries, dry runs that write nothing, owner-only files, one-line errors, and values encrypted
before each command still decrypting after it. No output ever carries a key's bytes."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.engine import URL

from hub.cli import main
from hub.crypto.backup import parse_backup
from hub.crypto.errors import KeyringError
from hub.crypto.keyring import Keyring, load_keyring, provision, unwrap_row
from hub.crypto.master import MasterKey, read_master_key_file
from hub.crypto.models import DATA, WrappedKey
from hub.crypto.rewrap import rewrap_batch
from hub.db.engine import hub_engine, sessions
from hub.migrate import upgrade
from tests.conftest import TEST_MASTER_KEY

DEPARTMENTS = ("health", "population", "civil_affairs")
DOMAINS = ("resident_id", "mobile")
ID_NUMBERS = ("11010519850202567X", "110105199001011234", "330102200512120021", "")
MASTER = MasterKey(TEST_MASTER_KEY)

Samples = list[tuple[str, str, bytes | str, str]]  # department, row key, stored value, plaintext


# --- helpers ------------------------------------------------------------------------------


def keys_command(env: dict[str, str | None], *args: str) -> Result:
    result = CliRunner().invoke(main, ["keys", *args], env=env)
    # A failure is a clean exit with one line, never an exception escaping the command.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def failed(result: Result) -> str:
    """The one error line of a failed command."""
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def env_of(url: URL, master: bytes | None = TEST_MASTER_KEY, key_file: Path | None = None) -> dict[str, str | None]:
    return {
        "HUB_DATABASE_URL": url.render_as_string(hide_password=False),
        "HUB_MASTER_KEY": base64.b64encode(master).decode() if master else None,
        "HUB_MASTER_KEY_FILE": str(key_file) if key_file else None,
    }


def new_hub_database(tmp_path: Path, name: str) -> URL:
    url = URL.create("sqlite+aiosqlite", database=str(tmp_path / name / "hub.db"))
    upgrade(url)
    return url


def populate(url: URL, master: MasterKey = MASTER) -> Samples:
    """Provision keys and encrypt values of every department, binary and text, under v1."""

    async def run() -> Keyring:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session, session.begin():
                await provision(session, master, DEPARTMENTS, DOMAINS)
            async with sessions(engine)() as session:
                return await load_keyring(session, master)
        finally:
            await engine.dispose()

    ring = asyncio.run(run())
    return encrypt(ring, "a")


def encrypt(ring: Keyring, tag: str) -> Samples:
    samples: Samples = []
    for department in DEPARTMENTS:
        cipher = ring.cipher(department, "Person", "idNumber")
        for n, plain in enumerate(ID_NUMBERS):
            row = f"{tag}{n}"
            stored = cipher.encrypt_text(plain, row) if n % 2 else cipher.encrypt(plain, row)
            samples.append((department, row, stored, plain))
    return samples


def keyring(url: URL, *masters: MasterKey) -> Keyring:
    async def run() -> Keyring:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session:
                return await load_keyring(session, list(masters))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def assert_all_decrypt(ring: Keyring, samples: Samples) -> None:
    for department, row, stored, plain in samples:
        assert ring.cipher(department, "Person", "idNumber").decrypt(stored, row) == plain


def wrapped_keys(url: URL) -> list[WrappedKey]:
    async def run() -> list[WrappedKey]:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session:
                return list((await session.scalars(select(WrappedKey).order_by(WrappedKey.id))).all())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def data_versions(url: URL) -> dict[str, int]:
    versions: dict[str, int] = {}
    for row in wrapped_keys(url):
        if row.purpose == DATA:
            versions[row.scope] = max(row.version, versions.get(row.scope, 0))
    return versions


def key_spellings(url: URL, *masters: MasterKey) -> list[str]:
    """Every way a key of this hub could be printed: master keys and unwrapped keys."""
    by_id = {m.id: m for m in masters}
    plain = [unwrap_row(row, by_id) for row in wrapped_keys(url)]
    raw = [*plain, TEST_MASTER_KEY]
    return [
        s for key in raw for s in (key.hex(), base64.b64encode(key).decode(), base64.urlsafe_b64encode(key).decode())
    ]


def assert_no_key_bytes(output: str, spellings: list[str]) -> None:
    for spelling in spellings:
        assert spelling not in output
        assert spelling.rstrip("=") not in output


# --- status -------------------------------------------------------------------------------


def test_status_lists_every_key_and_says_the_master_key_opens_them(hub_db: URL) -> None:
    populate(hub_db)
    result = keys_command(env_of(hub_db), "status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["purpose", "scope", "version", "master", "key", "created", "opens"]
    rows = [line.split() for line in lines[1 : 1 + len(DEPARTMENTS) + len(DOMAINS) + 1]]
    assert sorted((r[0], r[1], r[2], r[3], r[-1]) for r in rows) == sorted(
        [(DATA, d, "1", MASTER.id, "yes") for d in DEPARTMENTS]
        + [("index", d, "1", MASTER.id, "yes") for d in DOMAINS]
        + [("mask", "*", "1", MASTER.id, "yes")]
    )
    assert "  health: v1" in lines
    assert f"master keys: {MASTER.id} wraps 7" in lines
    assert lines[-1] == f"all 7 keys open under master key(s) {MASTER.id}"
    assert_no_key_bytes(result.output, key_spellings(hub_db, MASTER))


def test_status_under_the_wrong_master_key_lists_the_keys_and_fails(hub_db: URL) -> None:
    populate(hub_db)
    other = os.urandom(32)
    result = keys_command(env_of(hub_db, other), "status")
    assert f"{MASTER.id}" in result.stdout
    assert result.stdout.count(" NO\n") == 7
    error = failed(result)
    assert f"7 of 7 keys do not open under master key(s) {MasterKey(other).id}" in error
    assert f"wrapped by master key {MASTER.id}, which was not given" in error
    assert_no_key_bytes(result.output, [*key_spellings(hub_db, MASTER), base64.b64encode(other).decode()])


def test_status_of_an_empty_hub_database_says_how_keys_are_made(hub_db: URL) -> None:
    result = keys_command(env_of(hub_db), "status")
    assert result.exit_code == 0
    assert "holds no keys yet" in result.stdout


# --- rotate -------------------------------------------------------------------------------


def test_rotate_adds_one_version_to_every_department_and_old_values_still_decrypt(hub_db: URL) -> None:
    samples = populate(hub_db)
    result = keys_command(env_of(hub_db), "rotate")
    assert result.exit_code == 0, result.output
    for department in DEPARTMENTS:
        assert f"{department}: data key v1 -> v2" in result.stdout
    assert "rotated the data keys of 3 department(s) in one transaction" in result.stdout
    assert "hub keys reencrypt" in result.stdout
    assert "restart them or wait for reload" in result.stdout
    assert data_versions(hub_db) == dict.fromkeys(DEPARTMENTS, 2)
    ring = keyring(hub_db, MASTER)
    assert_all_decrypt(ring, samples)
    assert_all_decrypt(ring, encrypt(ring, "b"))  # new values go under v2, and decrypt
    assert ring.current_version("health") == 2


def test_rotate_dry_run_reports_and_writes_nothing(hub_db: URL) -> None:
    populate(hub_db)
    before = [(k.id, k.version, k.wrapped) for k in wrapped_keys(hub_db)]
    result = keys_command(env_of(hub_db), "rotate", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "health: data key v1 -> v2" in result.stdout
    assert "dry run: would add a data-key version for 3 department(s); nothing was written" in result.stdout
    assert [(k.id, k.version, k.wrapped) for k in wrapped_keys(hub_db)] == before


def test_rotate_named_departments_only(hub_db: URL) -> None:
    populate(hub_db)
    result = keys_command(env_of(hub_db), "rotate", "--department", "health", "--department", "population")
    assert result.exit_code == 0, result.output
    assert data_versions(hub_db) == {"health": 2, "population": 2, "civil_affairs": 1}


def test_rotate_refuses_an_unknown_department_and_rotates_none(hub_db: URL) -> None:
    populate(hub_db)
    result = keys_command(env_of(hub_db), "rotate", "--department", "health", "--department", "helth")
    assert "no data key for the department(s) helth" in failed(result)
    assert data_versions(hub_db) == dict.fromkeys(DEPARTMENTS, 1)


def test_rotate_under_the_wrong_master_key_names_both_ids_and_writes_nothing(hub_db: URL) -> None:
    populate(hub_db)
    other = os.urandom(32)
    error = failed(keys_command(env_of(hub_db, other), "rotate"))
    assert f"wrapped by master key {MASTER.id}, not by the configured {MasterKey(other).id}" in error
    assert data_versions(hub_db) == dict.fromkeys(DEPARTMENTS, 1)


# --- master key files and rewrap ----------------------------------------------------------


def test_new_master_key_is_owner_only_and_never_overwritten(tmp_path: Path, hub_db: URL) -> None:
    path = tmp_path / "keys" / "new.key"
    result = keys_command(env_of(hub_db), "new-master-key", str(path))
    assert result.exit_code == 0, result.output
    made = read_master_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"made master key {made.id}" in result.stdout
    content = path.read_bytes()
    assert "already exists; refusing to replace it" in failed(keys_command(env_of(hub_db), "new-master-key", str(path)))
    assert path.read_bytes() == content
    assert content.strip().decode() not in result.output


def test_rewrap_then_the_keyring_loads_with_only_the_new_master_key(tmp_path: Path, hub_db: URL) -> None:
    samples = populate(hub_db)
    new_file = tmp_path / "new.key"
    keys_command(env_of(hub_db), "new-master-key", str(new_file))
    new = read_master_key_file(new_file)
    result = keys_command(env_of(hub_db), "rewrap", "--new-key-file", str(new_file), "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert f"moved 7 keys from master key(s) {MASTER.id} to {new.id}" in result.stdout
    assert f"HUB_MASTER_KEY_FILE={new_file}" in result.stdout
    assert "keep the old master key until every instance has switched" in result.stdout
    assert {k.master_key_id for k in wrapped_keys(hub_db)} == {new.id}
    assert_all_decrypt(keyring(hub_db, new), samples)
    with pytest.raises(KeyringError, match="which was not given"):
        keyring(hub_db, MASTER)
    assert_no_key_bytes(result.output, key_spellings(hub_db, new))

    # The operator switches to the new key file: status agrees, and a rerun has nothing to do.
    switched = env_of(hub_db, None, new_file)
    assert keys_command(switched, "status").stdout.endswith(f"all 7 keys open under master key(s) {new.id}\n")
    again = keys_command(switched, "rewrap", "--new-key-file", str(new_file))
    assert again.exit_code == 0
    assert f"nothing to rewrap: all 7 keys are already under master key {new.id}" in again.stdout


def test_rewrap_interrupted_is_finished_by_running_it_again(tmp_path: Path, hub_db: URL) -> None:
    samples = populate(hub_db)
    new_file = tmp_path / "new.key"
    keys_command(env_of(hub_db), "new-master-key", str(new_file))
    new = read_master_key_file(new_file)

    async def move_two() -> None:
        engine = hub_engine(hub_db)
        try:
            async with sessions(engine)() as session, session.begin():
                await rewrap_batch(session, [MASTER], new, limit=2)
        finally:
            await engine.dispose()

    asyncio.run(move_two())
    # Halfway, the configured key alone does not open every key, and status says which it lacks.
    assert f"wrapped by master key {new.id}, which was not given" in failed(keys_command(env_of(hub_db), "status"))
    dry = keys_command(env_of(hub_db), "rewrap", "--new-key-file", str(new_file), "--dry-run")
    assert f"would move 5 of 7 keys from master key(s) {MASTER.id} to {new.id}" in dry.stdout
    result = keys_command(env_of(hub_db), "rewrap", "--new-key-file", str(new_file), "--batch-size", "1")
    assert result.exit_code == 0, result.output
    assert "moved 5 keys" in result.stdout
    assert_all_decrypt(keyring(hub_db, new), samples)


def test_rewrap_after_switching_needs_the_old_key_file(tmp_path: Path, hub_db: URL) -> None:
    samples = populate(hub_db)
    new_file, old_file = tmp_path / "new.key", tmp_path / "old.key"
    old_file.write_text(base64.b64encode(TEST_MASTER_KEY).decode() + "\n")
    old_file.chmod(0o600)
    keys_command(env_of(hub_db), "new-master-key", str(new_file))
    switched = env_of(hub_db, None, new_file)
    error = failed(keys_command(switched, "rewrap", "--new-key-file", str(new_file)))
    assert f"wrapped by master key {MASTER.id}, which was not given" in error
    result = keys_command(switched, "rewrap", "--new-key-file", str(new_file), "--old-key-file", str(old_file))
    assert result.exit_code == 0, result.output
    assert "HUB_MASTER_KEY_FILE=" not in result.stdout  # already configured: nothing to switch
    assert_all_decrypt(keyring(hub_db, read_master_key_file(new_file)), samples)


def test_rewrap_dry_run_moves_nothing(tmp_path: Path, hub_db: URL) -> None:
    populate(hub_db)
    new_file = tmp_path / "new.key"
    keys_command(env_of(hub_db), "new-master-key", str(new_file))
    before = [(k.master_key_id, k.wrapped) for k in wrapped_keys(hub_db)]
    result = keys_command(env_of(hub_db), "rewrap", "--new-key-file", str(new_file), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: would move 7 of 7 keys" in result.stdout
    assert [(k.master_key_id, k.wrapped) for k in wrapped_keys(hub_db)] == before


def test_key_files_others_can_read_are_refused(tmp_path: Path, hub_db: URL) -> None:
    populate(hub_db)
    new_file = tmp_path / "new.key"
    keys_command(env_of(hub_db), "new-master-key", str(new_file))
    new_file.chmod(0o644)
    error = failed(keys_command(env_of(hub_db), "rewrap", "--new-key-file", str(new_file)))
    assert f"the master key file {new_file} is open to other users (mode 0644)" in error
    assert f"chmod 600 {new_file}" in error
    assert {k.master_key_id for k in wrapped_keys(hub_db)} == {MASTER.id}
    # The same for the configured master key file.
    shared = tmp_path / "shared.key"
    shared.write_text(base64.b64encode(TEST_MASTER_KEY).decode() + "\n")
    shared.chmod(0o640)
    assert "is open to other users (mode 0640)" in failed(keys_command(env_of(hub_db, None, shared), "status"))
    assert "is open to other users" in failed(keys_command(env_of(hub_db, None, shared), "rotate"))


def test_missing_key_files_and_missing_master_key_are_named(tmp_path: Path, hub_db: URL) -> None:
    populate(hub_db)
    missing = tmp_path / "nowhere.key"
    assert f"the master key file {missing} does not exist" in failed(
        keys_command(env_of(hub_db, None, missing), "status")
    )
    assert f"the master key file {missing} does not exist" in failed(
        keys_command(env_of(hub_db), "rewrap", "--new-key-file", str(missing))
    )
    assert "no master key: set HUB_MASTER_KEY" in failed(keys_command(env_of(hub_db, None), "rotate"))
    assert "no master key: set HUB_MASTER_KEY" in failed(
        keys_command(env_of(hub_db, None), "restore", str(tmp_path / "b.json"))
    )


def test_an_unmigrated_hub_database_is_one_line_without_sql(tmp_path: Path) -> None:
    url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "empty.db"))
    error = failed(keys_command(env_of(url), "status"))
    assert error.endswith("empty.db does not exist: run `hub migrate` to create it")
    assert not (tmp_path / "empty.db").exists()
    (tmp_path / "empty.db").touch()
    error = failed(keys_command(env_of(url), "status"))
    assert error.endswith("empty.db is not migrated: run `hub migrate`")
    assert "SELECT" not in error
    assert "hub_key" not in error


# --- backup and restore -------------------------------------------------------------------


def test_backup_writes_an_owner_only_file_and_refuses_to_overwrite(tmp_path: Path, hub_db: URL) -> None:
    populate(hub_db)
    output = tmp_path / "keys.json"
    result = keys_command(env_of(hub_db), "backup", "--output", str(output))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    document = parse_backup(output.read_bytes())
    assert len(document.keys) == 7
    assert document.master_key_ids == [MASTER.id]
    assert f"checked: all 7 keys open under master key(s) {MASTER.id}" in result.stdout
    assert "wrote 7 keys (3 data keys of 3 departments, 4 index/mask/signing keys)" in result.stdout
    assert f"useless without master key(s) {MASTER.id}" in result.stdout
    spellings = key_spellings(hub_db, MASTER)
    assert_no_key_bytes(output.read_text(), spellings)
    assert_no_key_bytes(result.output, spellings)

    content = output.read_bytes()
    assert "already exists; refusing to replace it" in failed(
        keys_command(env_of(hub_db), "backup", "--output", str(output))
    )
    assert output.read_bytes() == content
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_backup_dry_run_writes_no_file(tmp_path: Path, hub_db: URL) -> None:
    populate(hub_db)
    output = tmp_path / "keys.json"
    result = keys_command(env_of(hub_db), "backup", "--output", str(output), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: would write 7 keys" in result.stdout
    assert not output.exists()


def test_backup_without_a_master_key_is_written_unchecked(tmp_path: Path, hub_db: URL) -> None:
    populate(hub_db)
    output = tmp_path / "keys.json"
    result = keys_command(env_of(hub_db, None), "backup", "--output", str(output))
    assert result.exit_code == 0, result.output
    assert "not checked: no master key configured" in result.stdout
    assert len(parse_backup(output.read_bytes()).keys) == 7


def test_backup_of_an_empty_hub_database_fails(tmp_path: Path, hub_db: URL) -> None:
    output = tmp_path / "keys.json"
    assert "holds no keys: nothing to back up" in failed(
        keys_command(env_of(hub_db), "backup", "--output", str(output))
    )
    assert not output.exists()


def test_backup_then_restore_into_an_empty_hub_database_decrypts_every_value(tmp_path: Path, hub_db: URL) -> None:
    samples = populate(hub_db)
    keys_command(env_of(hub_db), "rotate", "--department", "health")
    before = keyring(hub_db, MASTER)
    samples += encrypt(before, "after-rotation")
    output = tmp_path / "keys.json"
    assert keys_command(env_of(hub_db), "backup", "--output", str(output)).exit_code == 0

    fresh = new_hub_database(tmp_path, "restored")
    dry = keys_command(env_of(fresh), "restore", str(output), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "nothing was written" in dry.stdout
    assert wrapped_keys(fresh) == []

    result = keys_command(env_of(fresh), "restore", str(output))
    assert result.exit_code == 0, result.output
    assert f"restored 8 keys (4 data keys of 3 departments, 4 index/mask/signing keys) from {output}" in result.stdout
    after = keyring(fresh, MASTER)
    assert_all_decrypt(after, samples)
    assert after.current_version("health") == 2
    for domain in DOMAINS:
        assert after.blind_index(domain).hex(ID_NUMBERS[0]) == before.blind_index(domain).hex(ID_NUMBERS[0])
    assert after.mask_key("resident_id", "health") == before.mask_key("resident_id", "health")
    assert keys_command(env_of(fresh), "status").exit_code == 0


def test_restore_into_a_hub_database_with_keys_is_refused(tmp_path: Path, hub_db: URL) -> None:
    populate(hub_db)
    output = tmp_path / "keys.json"
    keys_command(env_of(hub_db), "backup", "--output", str(output))
    before = [(k.id, k.wrapped) for k in wrapped_keys(hub_db)]
    error = failed(keys_command(env_of(hub_db), "restore", str(output)))
    assert "the hub database already holds 7 keys; restore only into an empty one" in error
    assert [(k.id, k.wrapped) for k in wrapped_keys(hub_db)] == before


def test_restore_under_the_wrong_master_key_writes_nothing(tmp_path: Path, hub_db: URL) -> None:
    populate(hub_db)
    output = tmp_path / "keys.json"
    keys_command(env_of(hub_db), "backup", "--output", str(output))
    fresh = new_hub_database(tmp_path, "restored")
    other = os.urandom(32)
    error = failed(keys_command(env_of(fresh, other), "restore", str(output)))
    assert f"wrapped by master key {MASTER.id}, which was not given" in error
    assert wrapped_keys(fresh) == []
    assert_no_key_bytes(error, [*key_spellings(hub_db, MASTER), base64.b64encode(other).decode()])


def test_restore_of_a_file_that_is_not_a_backup_is_named(tmp_path: Path, hub_db: URL) -> None:
    not_backup = tmp_path / "notes.txt"
    not_backup.write_text("hello")
    assert "not a key backup (hub-keys/1)" in failed(keys_command(env_of(hub_db), "restore", str(not_backup)))
    assert "does not exist" in failed(keys_command(env_of(hub_db), "restore", str(tmp_path / "none.json")))
