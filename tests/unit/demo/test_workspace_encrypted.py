"""The demo stores its sensitive fields encrypted: whoever copies a department database file sees
no resident ID number, mobile number, assistance recipient's name, diagnosis or hotline request
text, only values that decrypt (with the keys in the hub database, under the master key in the
data folder) to exactly what was generated, with blind indexes beside them.

The workspace is made once, by `hub demo` as a user starts it (the server itself replaced)."""

from __future__ import annotations

import asyncio
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select

import hub.cli
import hub.cli.serve
from hub.catalog import Catalog, EntityInfo
from hub.config import Settings
from hub.crypto.cells import FieldCells, row_keys
from hub.crypto.fields import Failure
from hub.crypto.keyring import Keyring
from hub.demo.catalog import demo_catalog
from hub.demo.generate import generate
from hub.demo.tables import DEPARTMENTS, METADATA
from hub.demo.workspace import MARKER, Workspace, create_workspace, open_workspace_keyring

Data = dict[str, dict[str, list[dict[str, Any]]]]


@dataclass(frozen=True)
class Started:
    workspace: Workspace
    output: str  # what `hub demo` printed
    settings: Settings  # what it would have served with


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Started:
    root = tmp_path_factory.mktemp("demo") / "demo-data"
    served: list[Settings] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hub.cli.serve, "_serve", lambda settings, host, port: served.append(settings))
        result = CliRunner().invoke(hub.cli.main, ["demo", "--data-dir", str(root)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return Started(Workspace(root), result.output, served[0])


@pytest.fixture(scope="module")
def workspace(started: Started) -> Workspace:
    return started.workspace


@pytest.fixture(scope="module")
def data() -> Data:
    return generate()


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return demo_catalog()


@pytest.fixture(scope="module")
def keyring(workspace: Workspace) -> Keyring:
    keyring, made = asyncio.run(open_workspace_keyring(workspace))
    assert made == []  # every key was made when the demo was created
    return keyring


def stored_rows(workspace: Workspace, entity: EntityInfo) -> list[dict[str, Any]]:
    table = METADATA[entity.department].tables[entity.table.name]
    engine = create_engine(f"sqlite:///{workspace.root / entity.department}.db")
    try:
        with engine.connect() as connection:
            return [dict(row) for row in connection.execute(select(table)).mappings()]
    finally:
        engine.dispose()


def encrypted_entities(catalog: Catalog) -> list[EntityInfo]:
    return [e for e in catalog if any(f.encrypted for f in e.fields.values())]


# --- the data folder and what `hub demo` says ------------------------------------------------


def test_master_key_file_is_owner_only_and_the_demo_says_where_it_is(started: Started) -> None:
    key_file = started.workspace.master_key_file
    assert key_file == started.workspace.root / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert str(key_file) in started.output
    assert "owner only" in started.output
    assert "cannot be read" in started.output
    # The served hub reads that very file, and the hub database holding the keys.
    assert started.settings.master_key_file == key_file
    assert started.settings.master_key is None
    assert started.settings.database_url == started.workspace.hub_database


def test_a_second_start_keeps_the_key_and_the_data(workspace: Workspace) -> None:
    key = workspace.master_key_file.read_bytes()
    files = {d: (workspace.root / f"{d}.db").stat().st_mtime_ns for d in DEPARTMENTS}
    asyncio.run(create_workspace(workspace.root))
    assert workspace.master_key_file.read_bytes() == key
    assert {d: (workspace.root / f"{d}.db").stat().st_mtime_ns for d in DEPARTMENTS} == files


# --- what a copy of a department database shows ------------------------------------------------


# Every run of 18 characters that could be an ID number, and of 11 digits that could be a
# mobile number, wherever it starts (overlapping), so neighbouring digits cannot hide one.
ID_WINDOWS = re.compile(rb"(?=([0-9]{17}[0-9X]))")
MOBILE_WINDOWS = re.compile(rb"(?=(1[0-9]{10}))")


def file_bytes(workspace: Workspace, department: str) -> bytes:
    return (workspace.root / f"{department}.db").read_bytes()


def test_no_department_database_file_holds_an_id_number_or_a_mobile_number(workspace: Workspace, data: Data) -> None:
    people = data["population"]["pop_person"]
    ids = {p["id_number"].encode() for p in people}
    mobiles = {p["mobile"].encode() for p in people if p["mobile"]}
    for department in DEPARTMENTS:
        content = file_bytes(workspace, department)
        assert not ids & {m.group(1) for m in ID_WINDOWS.finditer(content)}, department
        assert not mobiles & {m.group(1) for m in MOBILE_WINDOWS.finditer(content)}, department


def test_no_file_holds_a_recipient_name_a_diagnosis_or_a_request_text(workspace: Workspace, data: Data) -> None:
    civil = data["civil_affairs"]
    names = {c["recipient_name"] for c in civil["ca_assistance_case"][::10]}
    names |= {d["recipient_name"] for d in civil["ca_service_delivery"][::100]}
    samples = {
        "civil_affairs": names,
        "health": {v["diagnosis"] for v in data["health"]["hlth_visit"]},
        "hotline": {r["content"] for r in data["hotline"]["hl_request"][::25]},
    }
    for department, values in samples.items():
        assert len(values) > 20, department
        content = file_bytes(workspace, department)
        found = sorted(v for v in values if v.encode() in content)
        assert not found, f"{department}.db holds in plain text: {found[:5]}"


def test_the_plaintext_search_finds_what_is_stored_plain(workspace: Workspace, data: Data) -> None:
    # The search above would find these fields' values had they been left plain.
    plain = {
        "population": [p["address"] for p in data["population"]["pop_person"][:20]],
        "civil_affairs": [c["case_id"] for c in data["civil_affairs"]["ca_assistance_case"][:20]],
        "health": [v["patient_name"] for v in data["health"]["hlth_visit"][:20]],
        "hotline": [r["caller_name"] for r in data["hotline"]["hl_request"][:20]],
    }
    for department, values in plain.items():
        content = file_bytes(workspace, department)
        assert all(v.encode() in content for v in values), department
    # And the windows find numbers among other digits, as a record would store them side by side.
    person = data["population"]["pop_person"][0]
    record = f"{person['district_code']}{person['id_number']}{person['mobile']}2026".encode()
    assert person["id_number"].encode() in {m.group(1) for m in ID_WINDOWS.finditer(record)}
    assert person["mobile"].encode() in {m.group(1) for m in MOBILE_WINDOWS.finditer(record)}


# --- what the keys open ----------------------------------------------------------------------


def test_every_encrypted_value_decrypts_to_the_generated_plaintext(
    workspace: Workspace, data: Data, catalog: Catalog, keyring: Keyring
) -> None:
    checked = 0
    for entity in encrypted_entities(catalog):
        rows = stored_rows(workspace, entity)
        generated = data[entity.department][entity.table.name]
        assert len(rows) == len(generated), entity.id
        keys = row_keys(entity, [row[entity.table.key] for row in rows])
        key_field = entity.fields[entity.key]
        if key_field.encrypted:
            index = keyring.blind_index(key_field.blind_index or "")
            by_key = {index.digest(g[key_field.column]).hex(): g for g in generated}
        else:
            by_key = {str(g[key_field.column]): g for g in generated}
        expected = [by_key[k] for k in keys]
        for item in entity.fields.values():
            if not item.encrypted:
                continue
            stored = [row[item.column] for row in rows]
            assert all(v is None or isinstance(v, bytes) for v in stored), f"{entity.id}.{item.name}"
            decrypted = FieldCells(keyring, entity, item).decrypt(stored, keys)
            assert decrypted == [g[item.column] for g in expected], f"{entity.id}.{item.name}"
            checked += sum(v is not None for v in stored)
    assert checked > 100_000


def test_blind_indexes_are_the_digests_of_the_generated_values(
    workspace: Workspace, data: Data, catalog: Catalog, keyring: Keyring
) -> None:
    for entity in encrypted_entities(catalog):
        rows = stored_rows(workspace, entity)
        keys = row_keys(entity, [row[entity.table.key] for row in rows])
        for item in entity.fields.values():
            if item.index_column is None or item.blind_index is None:
                continue
            index = keyring.blind_index(item.blind_index)
            plain = FieldCells(keyring, entity, item).decrypt([row[item.column] for row in rows], keys)
            digests = [None if p is None else index.digest(str(p)) for p in plain]
            assert [row[item.index_column] for row in rows] == digests, f"{entity.id}.{item.name}"
    # One person's index is the same in every department: that is what joins them.
    person = data["population"]["pop_person"][0]["id_number"]
    digest = keyring.blind_index("resident_id").digest(person)
    holders = {e.table.name for e in encrypted_entities(catalog) for f in e.fields.values() if f.blind_index}
    assert digest in {row["id_number_bidx"] for row in stored_rows(workspace, catalog.entity("population.Person"))}
    assert holders >= {"pop_person", "ca_service_delivery", "hl_request"}


def test_a_value_moved_to_another_row_fails_to_decrypt(
    workspace: Workspace, catalog: Catalog, keyring: Keyring
) -> None:
    entity = catalog.entity("health.Visit")
    rows = stored_rows(workspace, entity)[:50]
    keys = row_keys(entity, [row[entity.table.key] for row in rows])
    shifted = keys[1:] + keys[:1]
    cells = FieldCells(keyring, entity, entity.fields["diagnosis"])
    assert cells.decrypt([row["diagnosis"] for row in rows], shifted) == [Failure.INTEGRITY] * len(rows)


# --- an interrupted first start ---------------------------------------------------------------


def test_an_interrupted_start_is_redone_under_the_key_already_made(workspace: Workspace, tmp_path: Path) -> None:
    # As if the first start stopped after making the key and provisioning the hub database.
    root = tmp_path / "demo-data"
    root.mkdir()
    for name in ("master.key", "hub.db"):
        shutil.copy2(workspace.root / name, root / name)
    (root / "population.db").write_bytes(b"half-written")
    assert not (root / MARKER).exists()
    redone = asyncio.run(create_workspace(root))
    assert redone.ready
    assert redone.master_key_file.read_bytes() == workspace.master_key_file.read_bytes()
    keyring, made = asyncio.run(open_workspace_keyring(redone))
    assert made == []
    entity = demo_catalog().entity("population.Person")
    rows = stored_rows(redone, entity)
    keys = row_keys(entity, [row["id_number_bidx"] for row in rows[:10]])
    plain = FieldCells(keyring, entity, entity.fields["idNumber"]).decrypt(
        [row["id_number"] for row in rows[:10]], keys
    )
    assert all(isinstance(p, str) and len(p) == 18 for p in plain)


# --- loading the demo elsewhere ----------------------------------------------------------------


def test_load_demo_without_a_master_key_says_so_in_one_line(tmp_path: Path) -> None:
    env = {
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/hub.db",
        "HUB_MASTER_KEY": "",
        "HUB_MASTER_KEY_FILE": "",
    }
    result = CliRunner().invoke(hub.cli.main, ["load-demo", f"sqlite+aiosqlite:///{tmp_path}/demo.db"], env=env)
    assert result.exit_code == 1
    assert result.output == "error: no master key: set HUB_MASTER_KEY (base64 of 32 bytes) or HUB_MASTER_KEY_FILE\n"
    assert not (tmp_path / "demo.db").exists()
