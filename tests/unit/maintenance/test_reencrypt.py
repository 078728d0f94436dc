"""`hub keys reencrypt` on SQLite: after a rotation every value moves to the current data-key
version in its stored form and still decrypts to the same plaintext; a value written meanwhile
is never overwritten; a value that does not decrypt is reported and left; the dry run counts.
Real process kills and a concurrent app, on PostgreSQL and MariaDB too, are in
tests/integration/test_maintenance_kill.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from connectors.sql.writer import Change, TableWriter
from hub.catalog import EntityInfo
from hub.cli import main
from hub.crypto.cells import FieldCells
from hub.crypto.fields import Failure, key_version
from hub.crypto.keyring import Keyring
from hub.maintenance.reencrypt import RETRIES, FieldReport, encrypted_fields, reencrypt_field
from tests.maintenance_department import (
    ENCRYPTED,
    Department,
    create_people,
    decrypted,
    department,
    keyring,
    person,
    read_column,
    rotate,
    sqlite_url,
)

ROWS = 210
REENCRYPT = ["keys", "reencrypt", "--department", "registry", "--write-url-env", "REGISTRY_WRITE_URL"]


@pytest.fixture
def world(tmp_path: Path) -> tuple[Department, Keyring]:
    """Person rows with name and mobile encrypted under data-key v1, then a rotation to v2; and
    the keyring of before the rotation (a hub that has not reloaded its keys yet)."""
    found = department(sqlite_url(tmp_path), tmp_path)
    entity = found.write_manifest(ENCRYPTED)

    async def setup() -> Keyring:
        ring = await keyring(found)
        await create_people(found, ROWS, ring, entity)
        assert await rotate(found) == 2
        return ring

    return found, asyncio.run(setup())


@pytest.fixture
def dept(world: tuple[Department, Keyring]) -> Department:
    return world[0]


@pytest.fixture
def stale(world: tuple[Department, Keyring]) -> FieldCells:
    """Encrypting names under v1, as a hub that has not reloaded its keys would."""
    entity = world[0].entity()
    return FieldCells(world[1], entity, entity.fields["name"])


NAMES = sum(1 for i in range(1, ROWS + 1) if person(i)["name"] is not None)
MOBILES = sum(1 for i in range(1, ROWS + 1) if person(i)["mobile"] is not None)


def cli(dept: Department, *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env=dept.env(), catch_exceptions=False)


async def snapshot(dept: Department, ring: Keyring, entity: EntityInfo) -> dict[str, Any]:
    return {name: await decrypted(dept, ring, entity, name) for name in ("name", "mobile")}


class RacingWriter(TableWriter):
    """A writer whose batches meet a concurrent write, made just before each is applied."""

    def __init__(self, url: Any, table: str, key: str, race: Callable[[Sequence[Change]], Awaitable[None]]) -> None:
        super().__init__(url, table, key)
        self.race = race

    async def update(self, changes: Sequence[Change]) -> set[Any]:
        await self.race(changes)
        return await super().update(changes)


async def run_all(
    dept: Department, ring: Keyring, entity: EntityInfo, batch_size: int = 32, writer: Any = None
) -> list[FieldReport]:
    reports = []
    for ent, item in encrypted_fields([entity]):
        w = writer or TableWriter(dept.url, dept.table, ent.table.key)
        try:
            reports.append(await reencrypt_field(w, ring, ent, item, batch_size=batch_size))
        finally:
            if writer is None:
                await w.close()
    return reports


async def test_every_value_moves_to_the_current_version_in_its_form_with_its_plaintext(dept: Department) -> None:
    entity = dept.entity()
    ring = await keyring(dept)
    before = await snapshot(dept, ring, entity)
    assert before["name"].versions == {1: NAMES}
    reports = await run_all(dept, ring, entity)
    after = await snapshot(dept, ring, entity)
    for name in ("name", "mobile"):
        assert after[name].checksum == before[name].checksum
        assert after[name].failures == 0
        assert set(after[name].versions) == {2}
    assert [(r.field, r.reencrypted, r.up_to_date, r.ok) for r in reports] == [
        ("name", after["name"].versions[2], 0, True),
        ("mobile", after["mobile"].versions[2], 0, True),
    ]
    # Binary stays binary, text stays text; NULLs stay NULL; the index is untouched.
    rows = await read_column(dept, "person_id", "name_enc", "mobile_enc")
    assert all(n is None or isinstance(n, bytes) for _, n, _ in rows)
    assert all(m is None or m.startswith("hub1:") for _, _, m in rows)
    again = await run_all(dept, ring, entity)
    assert [(r.reencrypted, r.up_to_date) for r in again] == [
        (0, after["name"].versions[2]),
        (0, after["mobile"].versions[2]),
    ]


def test_the_command_reencrypts_and_a_dry_run_counts_versions_and_writes_nothing(dept: Department) -> None:
    values = NAMES + MOBILES
    rows_before = asyncio.run(read_column(dept, "person_id", "name_enc", "mobile_enc"))
    dry = cli(dept, *REENCRYPT, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"registry.Person.name: v1: {NAMES}\n" in dry.output
    assert f"registry.Person.mobile: v1: {MOBILES}\n" in dry.output
    assert f"{values} values would be" in dry.output
    assert "nothing was written" in dry.output
    assert asyncio.run(read_column(dept, "person_id", "name_enc", "mobile_enc")) == rows_before
    done = cli(dept, *REENCRYPT, "--batch-size", "25")
    assert done.exit_code == 0, done.output
    assert "every encrypted value read in registry is now under data-key version v2" in done.output
    recount = cli(dept, *REENCRYPT, "--dry-run", "--field", "Person.mobile")
    assert f"registry.Person.mobile: v2: {MOBILES}\n" in recount.output
    assert "registry.Person.name" not in recount.output
    assert "0 values would be" in recount.output


def test_the_command_names_what_is_wrong(dept: Department) -> None:
    unknown = cli(dept, *REENCRYPT, "--field", "Person.district")
    assert unknown.exit_code == 1
    assert "not encrypted fields: Person.district" in unknown.output
    other = cli(dept, "keys", "reencrypt", "--department", "health", "--write-url-env", "REGISTRY_WRITE_URL")
    assert other.exit_code == 1
    assert "no department health in the manifests" in other.output
    env = dept.env()
    env["REGISTRY_WRITE_URL"] = "not a url"
    bad = CliRunner().invoke(main, REENCRYPT, env=env)
    assert (bad.exit_code, bad.output.strip()) == (1, "error: REGISTRY_WRITE_URL does not hold a database URL")


async def set_name(dept: Department, key: str, value: Any) -> None:
    engine = dept.engine()
    try:
        t = sa.table(dept.table, sa.column("person_id"), sa.column("name_enc"))
        async with engine.begin() as conn:
            await conn.execute(sa.update(t).where(t.c.person_id == key).values(name_enc=value))
    finally:
        await engine.dispose()


async def test_a_value_written_while_its_batch_is_reencrypted_is_never_overwritten(dept: Department) -> None:
    entity = dept.entity()
    ring = await keyring(dept)
    cells = FieldCells(ring, entity, entity.fields["name"])
    written: dict[str, str] = {}

    async def app_writes(changes: Sequence[Change]) -> None:
        # An app writes, under the current key, a row of the batch read but not yet written.
        if "name_enc" in changes[0].values and len(written) < 4:
            key = changes[len(changes) // 2].key
            if key not in written:
                written[key] = f"renamed {len(written)}"
                await set_name(dept, key, cells.encrypt(written[key], key))

    writer = RacingWriter(dept.url, dept.table, "person_id", app_writes)
    try:
        (report,) = [await reencrypt_field(writer, ring, entity, entity.fields["name"], batch_size=40)]
    finally:
        await writer.close()
    assert len(written) == 4
    assert report.changed_meanwhile == 4
    assert report.ok
    after = dict((await decrypted(dept, ring, entity, "name")).values)
    assert {k: after[k] for k in written} == written
    assert set((await decrypted(dept, ring, entity, "name")).versions) == {2}


async def test_an_old_value_written_again_meanwhile_is_reencrypted_on_the_retry(
    dept: Department, stale: FieldCells
) -> None:
    entity = dept.entity()
    ring = await keyring(dept)
    before = await decrypted(dept, ring, entity, "name")
    old_cells = stale
    attempts = 0

    async def stale_app(changes: Sequence[Change]) -> None:
        # A hub instance that has not reloaded its keys yet rewrites the first row under v1.
        nonlocal attempts
        if changes[0].key == "P000001" and attempts < 2:
            attempts += 1
            await set_name(dept, "P000001", old_cells.encrypt(person(1)["name"], "P000001"))

    writer = RacingWriter(dept.url, dept.table, "person_id", stale_app)
    try:
        report = await reencrypt_field(writer, ring, entity, entity.fields["name"], batch_size=40)
    finally:
        await writer.close()
    assert (report.changed_meanwhile, report.ok) == (2, True)
    after = await decrypted(dept, ring, entity, "name")
    assert after.checksum == before.checksum
    assert set(after.versions) == {2}


async def test_a_value_that_keeps_changing_is_left_for_the_next_run(dept: Department, stale: FieldCells) -> None:
    entity = dept.entity()
    ring = await keyring(dept)
    old_cells = stale

    async def busy_app(changes: Sequence[Change]) -> None:
        if any(c.key == "P000002" for c in changes):
            await set_name(dept, "P000002", old_cells.encrypt("busy", "P000002"))

    writer = RacingWriter(dept.url, dept.table, "person_id", busy_app)
    try:
        report = await reencrypt_field(writer, ring, entity, entity.fields["name"], batch_size=40)
    finally:
        await writer.close()
    assert (report.left, report.changed_meanwhile, report.ok) == (1, RETRIES + 1, False)
    assert (await run_all(dept, ring, entity))[0].reencrypted == 1  # the next run finishes it


def test_a_value_that_does_not_decrypt_is_reported_and_left_as_it_is(dept: Department) -> None:
    rows = dict((k, n) for k, n, _ in asyncio.run(read_column(dept, "person_id", "name_enc", "mobile_enc")))
    # P000003's value copied onto P000004: it names v1 but is bound to another row.
    moved = rows["P000003"]
    asyncio.run(set_name(dept, "P000004", moved))
    asyncio.run(set_name(dept, "P000005", b"plain text left behind"))
    result = cli(dept, *REENCRYPT)
    assert result.exit_code == 1
    assert f"1 not re-encrypted, left as they are: {Failure.INTEGRITY.value}" in result.output
    assert f"1 not re-encrypted, left as they are: {Failure.MALFORMED.value}" in result.output
    assert "2 values of registry.Person.name do not decrypt" in result.output
    # The key is not personal data here (an L2 ID), so the rows are named.
    assert "for example the rows keyed P000004, P000005" in result.output
    after = dict((k, n) for k, n, _ in asyncio.run(read_column(dept, "person_id", "name_enc", "mobile_enc")))
    assert (after["P000004"], after["P000005"]) == (moved, b"plain text left behind")
    assert key_version(after["P000006"]) == 2
