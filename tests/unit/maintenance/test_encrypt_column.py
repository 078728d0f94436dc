"""`hub encrypt-column` on SQLite: the encrypted column and blind index beside the plain one, filled
in resumable batches, every row verified, the plain column dropped only when asked and clean,
and the manifest lines to change; refusals that name what to fix. Real process kills, and
PostgreSQL and MariaDB, are in tests/integration/test_maintenance_kill.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from connectors.sql.writer import Change, TableWriter
from hub.catalog import EntityInfo, load_catalog
from hub.catalog.manifest import Storage
from hub.cli import main
from hub.crypto.cells import FieldCells, index_bytes
from hub.maintenance.base import MaintenanceError
from hub.maintenance.encrypt_column import EncryptionPlan, Mismatch, encrypt_column, plan_encryption
from tests.maintenance_department import (
    ENCRYPTED,
    PLAIN,
    Department,
    create_people,
    decrypted,
    department,
    keyring,
    person,
    plain_values,
    read_column,
    sqlite_url,
)

ROWS = 230


@pytest.fixture
def empty(tmp_path: Path) -> Department:
    """A department without its table yet (the hub database is migrated outside any event loop)."""
    return department(sqlite_url(tmp_path), tmp_path)


@pytest.fixture
def dept(empty: Department) -> Department:
    empty.write_manifest(PLAIN)
    asyncio.run(create_people(empty, ROWS))
    return empty


def mobile_plan(dept: Department) -> EncryptionPlan:
    return plan_encryption(dept.entity(), "mobile", domain="mobile", stored_as=Storage.TEXT)


def writer_for(dept: Department, plan: EncryptionPlan) -> TableWriter:
    return TableWriter(dept.url, dept.table, plan.key_column)


async def columns_of(dept: Department) -> set[str]:
    writer = TableWriter(dept.url, dept.table, "person_id")
    try:
        return set((await writer.shape()).columns)
    finally:
        await writer.close()


def cli(dept: Department, *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env=dept.env(), catch_exceptions=False)


async def test_every_value_is_encrypted_for_its_row_with_the_index_of_its_plain_value(dept: Department) -> None:
    before = await plain_values(dept, "mobile")
    plan = mobile_plan(dept)
    ring = await keyring(dept)
    writer = writer_for(dept, plan)
    try:
        report = await encrypt_column(writer, plan, ring, batch_size=40)
    finally:
        await writer.close()
    filled = sum(1 for _, v in before if v is not None)
    assert (report.to_fill, report.filled, report.verified, report.ok) == (filled, filled, ROWS, True)
    # The manifest lines it prints give exactly the field the hub then reads.
    after = dept.write_manifest(ENCRYPTED)
    assert after.fields["mobile"] == plan.target
    opened = await decrypted(dept, ring, after, "mobile")
    assert opened.values == before
    assert opened.failures == 0
    cells = FieldCells(ring, after, after.fields["mobile"])
    indexes = await read_column(dept, "person_id", "mobile", "mobile_bidx")
    assert all(
        (i is None) if m is None else index_bytes(i) == cells.index.digest(m)  # type: ignore[union-attr]
        for _, m, i in indexes
    )
    # The plain column stays until asked.
    assert {"mobile", "mobile_enc", "mobile_bidx"} <= await columns_of(dept)


async def test_binary_encryption_without_an_index_adds_only_the_encrypted_column(dept: Department) -> None:
    before = await plain_values(dept, "name")
    plan = plan_encryption(dept.entity(), "name")
    ring = await keyring(dept)
    writer = writer_for(dept, plan)
    try:
        report = await encrypt_column(writer, plan, ring, batch_size=64)
    finally:
        await writer.close()
    assert report.ok
    assert plan.manifest_lines() == ["column: name_enc", "encrypted: true"]
    assert (await columns_of(dept)) & {"name_bidx"} == set()
    opened = await decrypted(dept, ring, dept.write_manifest(ENCRYPTED), "name")
    assert opened.values == before
    assert all(isinstance(v, bytes) for _, v in await read_column(dept, "person_id", "name_enc") if v is not None)


def test_a_dry_run_prints_the_ddl_and_the_counts_and_writes_nothing(dept: Department) -> None:
    result = cli(
        dept,
        "encrypt-column",
        "registry",
        "Person",
        "mobile",
        "--write-url-env",
        "REGISTRY_WRITE_URL",
        "--index-domain",
        "mobile",
        "--stored-as",
        "text",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert f"ALTER TABLE {dept.table} ADD COLUMN mobile_enc TEXT" in result.output
    assert f"ALTER TABLE {dept.table} ADD COLUMN mobile_bidx VARCHAR(64)" in result.output
    assert f"CREATE INDEX ix_{dept.table}_mobile_bidx ON {dept.table} (mobile_bidx)" in result.output
    with_mobile = sum(1 for i in range(1, ROWS + 1) if person(i)["mobile"] is not None)
    assert f"{ROWS} rows, {with_mobile} of them" in result.output
    assert "nothing was written" in result.output
    assert asyncio.run(columns_of(dept)) == {"person_id", "name", "mobile", "district"}


def test_the_command_encrypts_verifies_and_prints_the_manifest_lines(dept: Department) -> None:
    result = cli(
        dept,
        "encrypt-column",
        "registry",
        "Person",
        "mobile",
        "--write-url-env",
        "REGISTRY_WRITE_URL",
        "--index-domain",
        "mobile",
        "--stored-as",
        "text",
        "--batch-size",
        "50",
    )
    assert result.exit_code == 0, result.output
    assert "every encrypted value decrypts to its plain value" in result.output
    for line in (
        "column: mobile_enc",
        "encrypted: true",
        "blind_index: mobile",
        "index_column: mobile_bidx",
        "stored_as: text",
    ):
        assert f"  {line}\n" in result.output
    assert "--drop-plain" in result.output  # says how to finish
    again = cli(
        dept,
        "encrypt-column",
        "registry",
        "Person",
        "mobile",
        "--write-url-env",
        "REGISTRY_WRITE_URL",
        "--index-domain",
        "mobile",
        "--stored-as",
        "text",
    )
    assert again.exit_code == 0, again.output
    assert "0 rows to encrypt into mobile_enc, 0 encrypted" in again.output


class Stop(Exception):
    pass


async def test_an_interrupted_fill_continues_where_it_stopped_and_keeps_what_was_written(dept: Department) -> None:
    before = await plain_values(dept, "mobile")
    plan = mobile_plan(dept)
    ring = await keyring(dept)
    batches = 0

    def stop_after_three(label: str, done: int, total: int) -> None:
        nonlocal batches
        if label.startswith("encrypting") and done:
            batches += 1
            if batches == 3:
                raise Stop

    writer = writer_for(dept, plan)
    try:
        with pytest.raises(Stop):
            await encrypt_column(writer, plan, ring, batch_size=30, progress=stop_after_three)
        first = {k: v for k, v in await read_column(dept, "person_id", "mobile_enc") if v is not None}
        assert len(first) == 90
        report = await encrypt_column(writer, plan, ring, batch_size=30)
    finally:
        await writer.close()
    assert report.ok
    assert report.filled == sum(1 for _, v in before if v is not None) - 90
    after = dict(await read_column(dept, "person_id", "mobile_enc"))
    assert all(after[k] == v for k, v in first.items())  # what the first run wrote stands
    assert (await decrypted(dept, ring, dept.write_manifest(ENCRYPTED), "mobile")).values == before


class RacingWriter(TableWriter):
    """A writer whose every batch meets a concurrent write, made just before it is applied."""

    def __init__(self, url: Any, table: str, key: str, race: Callable[[Sequence[Change]], Awaitable[None]]) -> None:
        super().__init__(url, table, key)
        self.race = race

    async def update(self, changes: Sequence[Change]) -> set[Any]:
        await self.race(changes)
        return await super().update(changes)


async def set_value(dept: Department, key: str, **values: Any) -> None:
    engine = dept.engine()
    try:
        t = sa.table(dept.table, sa.column("person_id"), *(sa.column(c) for c in values))
        async with engine.begin() as conn:
            await conn.execute(sa.update(t).where(t.c.person_id == key).values(**values))
    finally:
        await engine.dispose()


async def test_a_plain_value_changed_while_its_batch_is_encrypted_is_encrypted_as_changed(dept: Department) -> None:
    plan = mobile_plan(dept)
    ring = await keyring(dept)
    raced: list[str] = []

    async def race(changes: Sequence[Change]) -> None:
        if len(raced) < 3 and "mobile_enc" in changes[0].values and changes[0].expect.get("mobile_enc", 1) is None:
            raced.append(changes[-1].key)
            await set_value(dept, changes[-1].key, mobile=f"+86 139 0000 000{len(raced)}")

    writer = RacingWriter(dept.url, dept.table, plan.key_column, race)
    try:
        report = await encrypt_column(writer, plan, ring, batch_size=50)
    finally:
        await writer.close()
    assert len(raced) == 3
    assert report.ok
    opened = dict((await decrypted(dept, ring, dept.write_manifest(ENCRYPTED), "mobile")).values)
    assert [opened[k] for k in raced] == ["+86 139 0000 0001", "+86 139 0000 0002", "+86 139 0000 0003"]


def test_a_plain_value_changed_after_the_fill_fails_verification_until_refilled(dept: Department) -> None:
    args = [
        "encrypt-column",
        "registry",
        "Person",
        "mobile",
        "--write-url-env",
        "REGISTRY_WRITE_URL",
        "--index-domain",
        "mobile",
        "--stored-as",
        "text",
    ]
    assert cli(dept, *args).exit_code == 0
    asyncio.run(set_value(dept, "P000010", mobile="13900000000"))
    asyncio.run(set_value(dept, "P000047", mobile=None))  # was NULL-free; now a stray encrypted value
    failed = cli(dept, *args, "--drop-plain")
    assert failed.exit_code == 1
    assert "verified 230 rows: 2 do not match the plain column" in failed.output
    assert f"1: {Mismatch.DIFFERS.value}" in failed.output
    assert f"1: {Mismatch.STRAY.value}" in failed.output
    assert "--refill" in failed.output
    assert "mobile" in asyncio.run(columns_of(dept))  # not dropped
    repaired = cli(dept, *args, "--refill", "--drop-plain")
    assert repaired.exit_code == 0, repaired.output
    assert "encrypted again from the plain value: 2 rows" in repaired.output
    assert "dropped the plain column mobile" in repaired.output
    ring = asyncio.run(keyring(dept))
    opened = dict(asyncio.run(decrypted(dept, ring, dept.write_manifest(ENCRYPTED), "mobile")).values)
    assert (opened["P000010"], opened["P000047"]) == ("13900000000", None)
    assert "mobile" not in asyncio.run(columns_of(dept))
    dept.write_manifest(PLAIN)  # as if the operator ran it again before changing the manifest
    done = cli(dept, *args)
    assert done.exit_code == 0, done.output
    assert "nothing to do" in done.output


async def test_encrypting_the_key_binds_each_value_to_its_own_index_and_keeps_the_primary_key(
    dept: Department,
) -> None:
    before = [row[0] for row in await read_column(dept, "person_id")]
    plan = plan_encryption(dept.entity(), "personId", domain="resident_id")
    assert (plan.key_column, plan.own_index_is_key) == ("person_id", True)
    ring = await keyring(dept)
    writer = writer_for(dept, plan)
    try:
        with pytest.raises(MaintenanceError, match="primary key"):
            await encrypt_column(writer, plan, ring, batch_size=100, drop_plain=True)
        report = await encrypt_column(writer, plan, ring, batch_size=100)
    finally:
        await writer.close()
    assert report.ok
    keyed = dept.write_manifest(
        PLAIN.replace(
            "{{name: personId, column: person_id, type: ID}}",
            "{{name: personId, column: person_id_enc, type: ID, encrypted: true, blind_index: resident_id, "
            "index_column: person_id_bidx}}",
        )
    )
    assert keyed.table.key == "person_id_bidx"
    opened = await decrypted(dept, ring, keyed, "personId")
    assert opened.failures == 0
    assert sorted(v for _, v in opened.values) == before


async def test_a_field_beside_an_encrypted_key_is_bound_to_the_key_index(empty: Department) -> None:
    dept = empty
    keyed_plain = PLAIN.replace(
        "{{name: personId, column: person_id, type: ID}}",
        "{{name: personId, column: person_id_enc, type: ID, encrypted: true, blind_index: resident_id, "
        "index_column: person_id_bidx}}",
    )
    entity = dept.write_manifest(keyed_plain)
    ring = await keyring(dept)
    key_cells = FieldCells(ring, entity, entity.fields["personId"])
    table = sa.Table(
        dept.table,
        sa.MetaData(),
        sa.Column("person_id_bidx", sa.LargeBinary(), primary_key=True),
        sa.Column("person_id_enc", sa.LargeBinary()),
        sa.Column("name", sa.String(100)),
        sa.Column("mobile", sa.String(40)),
        sa.Column("district", sa.String(20)),
    )
    rows = []
    for i in range(1, 61):
        p = person(i)
        index = key_cells.index.digest(p["person_id"])  # type: ignore[union-attr]
        rows.append(
            {
                "person_id_bidx": index,
                "person_id_enc": key_cells.encrypt(p["person_id"], index.hex()),
                "name": p["name"],
                "mobile": p["mobile"],
                "district": p["district"],
            }
        )
    engine = dept.engine()
    async with engine.begin() as conn:
        await conn.run_sync(table.create)
        await conn.execute(table.insert(), rows)
    await engine.dispose()
    plan = plan_encryption(entity, "name")
    assert plan.key_column == "person_id_bidx"
    writer = writer_for(dept, plan)
    try:
        assert (await encrypt_column(writer, plan, ring, batch_size=7)).ok
    finally:
        await writer.close()
    after = dept.write_manifest(
        keyed_plain.replace(
            "{{name: name, type: String, tier: L3}}",
            "{{name: name, column: name_enc, type: String, tier: L3, encrypted: true}}",
        )
    )
    opened = await decrypted(dept, ring, after, "name")
    assert opened.failures == 0
    assert sorted((v for _, v in opened.values), key=str) == sorted((r["name"] for r in rows), key=str)
    assert all(
        k == row["person_id_bidx"]
        for (k, _), row in zip(opened.values, sorted(rows, key=lambda r: r["person_id_bidx"]), strict=True)
    )


def entity_of(tmp_path: Path, fields: str, key: str = "personId") -> EntityInfo:
    folder = tmp_path / "refusals"
    folder.mkdir(exist_ok=True)
    (folder / "registry.yaml").write_text(
        "department: registry\nconnection: {sqlite_path: x.db}\nentities:\n"
        f"  - name: Person\n    table: person\n    key: {key}\n    fields:\n{fields}",
        encoding="utf-8",
    )
    return load_catalog(folder).entity("registry.Person")


@pytest.mark.parametrize(
    ("fields", "field", "options", "message"),
    [
        ("      - {name: personId, type: ID}\n", "mobile", {}, "has no field mobile"),
        (
            "      - {name: personId, type: ID}\n      - {name: n, type: String, encrypted: true}\n",
            "n",
            {},
            "already declared encrypted",
        ),
        ("      - {name: personId, type: ID}\n      - {name: age, type: Int}\n", "age", {}, "only String and ID"),
        ("      - {name: personId, type: ID}\n", "personId", {}, "encrypted key needs an index domain"),
        (
            "      - {name: personId, type: ID}\n      - {name: n, type: String, encrypted: true}\n",
            "personId",
            {"domain": "resident_id"},
            "Encrypt the key first",
        ),
        (
            "      - {name: personId, type: ID}\n      - {name: m, type: String}\n      - {name: menc, column: m_enc, type: String}\n",
            "m",
            {},
            "column m_enc is already a column",
        ),
        (
            "      - {name: personId, type: ID}\n      - {name: m, type: String}\n",
            "m",
            {"index_column": "m_i"},
            "needs an index domain",
        ),
    ],
)
def test_what_cannot_be_encrypted_in_place_is_refused_with_the_reason(
    tmp_path: Path, fields: str, field: str, options: dict[str, str], message: str
) -> None:
    with pytest.raises(MaintenanceError, match=message):
        plan_encryption(entity_of(tmp_path, fields), field, **options)  # type: ignore[arg-type]


def test_the_command_fails_in_one_line_without_a_write_url_or_a_table(dept: Department) -> None:
    env = dept.env()
    del env["REGISTRY_WRITE_URL"]
    result = CliRunner().invoke(
        main, ["encrypt-column", "registry", "Person", "mobile", "--write-url-env", "REGISTRY_WRITE_URL"], env=env
    )
    assert result.exit_code == 1
    assert result.output.strip() == "error: the environment variable REGISTRY_WRITE_URL (--write-url-env) is not set"
    missing = cli(dept, "encrypt-column", "registry", "Person", "nickname", "--write-url-env", "REGISTRY_WRITE_URL")
    assert missing.exit_code == 1
    assert "registry.Person has no field nickname" in missing.output
    dept.write_manifest(PLAIN.replace("table: {table}", "table: elsewhere"))
    gone = cli(dept, "encrypt-column", "registry", "Person", "mobile", "--write-url-env", "REGISTRY_WRITE_URL")
    assert gone.exit_code == 1
    assert "the table elsewhere does not exist in the write database" in gone.output
    assert "Traceback" not in gone.output


def test_request_paths_cannot_reach_the_write_capability() -> None:
    probe = (
        "import sys, hub.app, hub.services, schema; "
        "print(sorted(m for m in sys.modules if m.startswith(('connectors.sql.writer', 'hub.maintenance'))))"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
