"""Every kind of corrupt cell a department database can hold, on every kind of column the demo's
manifests use, read through lists, relations and lookups by key: the cell is null with one
DATA_INTEGRITY error at its path, the rest of its row and list stand, and a row whose key is
null or does not decrypt is left out with one error carrying the count. Never INTERNAL.

SQLite holds any value in any column, so every kind is tried there (on a copy of the demo's
files); PostgreSQL and MariaDB are tried with the kinds their column types admit."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from hub.app import create_app
from hub.config import load_settings
from hub.demo.workspace import Workspace, open_workspace_keyring
from hub.services import build_services
from tests.conftest import Hub
from tests.demo_copies import copy_workspace
from tests.integration.conftest import CALLER, PURPOSE, _tokens
from tests.servers import database_name, server_url

LIST = "{ civilAffairsAssistanceCases(first: 5, orderBy: [CASE_ID_ASC]) { nodes { %s } } }"
BY_KEY = "query($key: ID!) { civilAffairsAssistanceCase(key: $key) { caseId %s status } }"
FIELDS = "caseId recipientName recipientIdNumber monthlyAmount startDate householdSize status"


@dataclass(frozen=True)
class Corruption:
    """One bad value written into one column of the second assistance case (by key order)."""

    column: str
    field: str
    # SQL for the new value; `:v` binds `value`, and `other(...)` is filled in by the test.
    sql: str
    value: Any = None


def _copy_of(column: str) -> str:
    # Another row's ciphertext of the same column: authentic, but bound to that row.
    return f"(SELECT {column} FROM ca_assistance_case WHERE case_id <> :key ORDER BY case_id LIMIT 1)"  # noqa: S608


# Kinds every backend can hold (the column's own type).
PORTABLE: dict[str, Corruption] = {
    "ciphertext_from_another_row": Corruption("recipient_name", "recipientName", _copy_of("recipient_name")),
    "ciphertext_from_another_field": Corruption("recipient_name", "recipientName", "recipient_id_number"),
    "truncated_ciphertext": Corruption("recipient_name", "recipientName", ":v", b"\x01\x00\x00\x00\x01" + b"\x00" * 20),
    "garbage_bytes": Corruption("recipient_name", "recipientName", ":v", os.urandom(60)),
    "empty_bytes": Corruption("recipient_name", "recipientName", ":v", b""),
    "ciphertext_of_another_key_field": Corruption("recipient_id_number", "recipientIdNumber", "recipient_name"),
}
# Kinds SQLite holds in any column.
SQLITE_ONLY: dict[str, Corruption] = {
    "text_in_a_binary_column": Corruption("recipient_name", "recipientName", ":v", "hub1:AQAAAAFhYmNkZWZnaGlqa2xtbm9w"),
    "a_number_in_a_binary_column": Corruption("recipient_name", "recipientName", ":v", 42),
    "text_in_an_int_column": Corruption("household_size", "householdSize", ":v", "three"),
    "int_wider_than_32_bits": Corruption("household_size", "householdSize", ":v", 2**40),
    "int_wider_than_64_bits_as_text": Corruption("household_size", "householdSize", ":v", "9" * 40),
    "fraction_in_an_int_column": Corruption("household_size", "householdSize", ":v", 2.5),
    "bytes_in_an_int_column": Corruption("household_size", "householdSize", ":v", b"\x03"),
    "text_in_a_decimal_column": Corruption("monthly_amount", "monthlyAmount", ":v", "a lot"),
    "nan_text_in_a_decimal_column": Corruption("monthly_amount", "monthlyAmount", ":v", "NaN"),
    "infinity_in_a_decimal_column": Corruption("monthly_amount", "monthlyAmount", "9e999"),
    "a_decimal_past_any_precision": Corruption("monthly_amount", "monthlyAmount", ":v", 1e300),
    "malformed_date": Corruption("start_date", "startDate", ":v", "not a date"),
    "impossible_date": Corruption("start_date", "startDate", ":v", "2024-02-30"),
    "zero_date": Corruption("start_date", "startDate", ":v", "0000-00-00"),
    "a_number_in_a_date_column": Corruption("start_date", "startDate", ":v", 20240101),
    "invalid_utf8_text": Corruption("status", "status", "CAST(X'FFFE61' AS TEXT)"),
    "bytes_in_a_text_column": Corruption("status", "status", ":v", b"\xff\x00"),
}


@pytest.fixture(scope="module")
def sqlite_hub(demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """The demo on a copy of its files, so the cells corrupted here are nobody else's."""
    root = tmp_path_factory.mktemp("integrity") / "demo"
    copy_workspace(demo_workspace.root, root)
    copy = Workspace(root)
    settings = load_settings(
        {},
        database_url=copy.hub_database.render_as_string(),
        manifests_dir=copy.manifests,
        master_key_file=copy.master_key_file,
    )
    tokens = _tokens(copy)
    with TestClient(create_app(build_services(settings))) as client:
        hub = Hub(client, tokens[CALLER], settings.database_url, tokens, PURPOSE)
        hub.department_url = URL.create("sqlite+aiosqlite", database=str(root / "civil_affairs.db"))  # type: ignore[attr-defined]
        yield hub


def _server_department(name: str) -> URL:
    # The database conftest's `_loaded_hub` loaded the demo into (all departments in one).
    return make_url(server_url(name)).set(database=database_name("hub_it_demo"))


async def _run(url: URL, statements: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            if url.get_backend_name() == "mysql":
                await conn.execute(sa.text("SET SESSION sql_mode = ''"))  # admits a zero date
            out = []
            for sql, params in statements:
                result = await conn.execute(sa.text(sql), params)
                out.append(result.fetchall() if result.returns_rows else None)
            return out
    finally:
        await engine.dispose()


@contextlib.contextmanager
def corrupted(url: URL, table: str, key_column: str, key: Any, column: str, sql: str, value: Any) -> Iterator[None]:
    """`column` of the row keyed `key` set by `sql`, put back afterwards."""
    # Table and column names are this module's constants; values are bound.
    select = f"SELECT {column} FROM {table} WHERE {key_column} = :key"  # noqa: S608
    [[(before,)]] = asyncio.run(_run(url, [(select, {"key": key})]))
    update = f"UPDATE {table} SET {column} = {sql} WHERE {key_column} = :key"  # noqa: S608
    asyncio.run(_run(url, [(update, {"key": key, "v": value})]))
    try:
        yield
    finally:
        restore = f"UPDATE {table} SET {column} = :v WHERE {key_column} = :key"  # noqa: S608
        asyncio.run(_run(url, [(restore, {"key": key, "v": before})]))


def _case_keys(hub: Hub) -> list[str]:
    result = hub.query(LIST % "caseId")
    return [node["caseId"] for node in result["data"]["civilAffairsAssistanceCases"]["nodes"]]


def _assert_cell_nulled(hub: Hub, url: URL, bad: Corruption) -> None:
    clean = hub.query(LIST % FIELDS)
    assert "errors" not in clean
    rows = clean["data"]["civilAffairsAssistanceCases"]["nodes"]
    key = rows[1]["caseId"]
    with corrupted(url, "ca_assistance_case", "case_id", key, bad.column, bad.sql, bad.value):
        result = hub.query(LIST % FIELDS)
    nodes = result["data"]["civilAffairsAssistanceCases"]["nodes"]
    # The bad cell is null; everything else, in its row and the others, is as it was.
    expected = [dict(row) for row in rows]
    expected[1][bad.field] = None
    assert nodes == expected
    assert result["errors"] == [
        {
            "message": f"{bad.field}: 1 value(s) failed their integrity check and are null",
            "path": ["civilAffairsAssistanceCases", "nodes", "*", bad.field],
            "extensions": {"code": "DATA_INTEGRITY", "count": 1},
        }
    ]
    # The same cell read by key and through a relation answers the same way.
    by_key = hub.query(BY_KEY % bad.field, {"key": key})
    assert by_key["data"]["civilAffairsAssistanceCase"]["caseId"] == key
    assert [e["extensions"]["code"] for e in by_key.get("errors", [])] in ([], ["DATA_INTEGRITY"])


def _corrupt_and_read(hub: Hub, url: URL, bad: Corruption) -> None:
    key = _case_keys(hub)[1]
    with corrupted(url, "ca_assistance_case", "case_id", key, bad.column, bad.sql, bad.value):
        by_key = hub.query(BY_KEY % bad.field, {"key": key})
        listed = hub.query(LIST % FIELDS)
    assert by_key["data"]["civilAffairsAssistanceCase"][bad.field] is None
    assert by_key["errors"][0]["path"] == ["civilAffairsAssistanceCase", bad.field]
    assert by_key["errors"][0]["extensions"]["code"] == "DATA_INTEGRITY"
    assert listed["data"]["civilAffairsAssistanceCases"]["nodes"][1][bad.field] is None
    assert all(e["extensions"]["code"] == "DATA_INTEGRITY" for e in listed["errors"])


@pytest.mark.parametrize("kind", {**PORTABLE, **SQLITE_ONLY})
def test_corrupt_cell_on_sqlite_is_null_with_data_integrity_and_the_rest_stands(sqlite_hub: Hub, kind: str) -> None:
    bad = {**PORTABLE, **SQLITE_ONLY}[kind]
    _assert_cell_nulled(sqlite_hub, sqlite_hub.department_url, bad)  # type: ignore[attr-defined]
    _corrupt_and_read(sqlite_hub, sqlite_hub.department_url, bad)  # type: ignore[attr-defined]


POSTGRES_KINDS = {**PORTABLE, "nan_in_a_numeric_column": Corruption("monthly_amount", "monthlyAmount", "'NaN'")}
MARIADB_KINDS = {**PORTABLE, "zero_date": Corruption("start_date", "startDate", "'0000-00-00'")}


@pytest.mark.parametrize("kind", POSTGRES_KINDS)
def test_corrupt_cell_on_postgresql_is_null_with_data_integrity(postgres_hub: Hub, kind: str) -> None:
    _assert_cell_nulled(postgres_hub, _server_department("postgresql"), POSTGRES_KINDS[kind])


@pytest.mark.parametrize("kind", MARIADB_KINDS)
def test_corrupt_cell_on_mariadb_is_null_with_data_integrity(mariadb_hub: Hub, kind: str) -> None:
    _assert_cell_nulled(mariadb_hub, _server_department("mariadb"), MARIADB_KINDS[kind])


PERSONS = "{ populationPersons(first: 4) { nodes { idNumber name birthDate } } }"
# Ways a Person's encrypted key can fail: (SQL for id_number, value).
KEY_KINDS: dict[str, tuple[str, Any]] = {
    "key_ciphertext_from_another_row": (
        "(SELECT id_number FROM pop_person WHERE id_number_bidx <> :key ORDER BY id_number_bidx LIMIT 1)",
        None,
    ),
    "truncated_key_ciphertext": (":v", b"\x01\x00\x00\x00\x01"),
    "garbage_key": (":v", b"\xff" * 40),
    "empty_key": (":v", b""),
    "text_in_the_binary_key_column": (":v", "hub1:AQAAAAFhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5eg"),
}


def _department(hub: Hub, name: str) -> URL:
    """The SQLite file of department `name` beside the copy `sqlite_hub` serves."""
    return URL.create("sqlite+aiosqlite", database=str(Path(hub.department_url.database).parent / f"{name}.db"))  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_row_whose_key_does_not_decrypt_is_left_out_with_one_error_carrying_the_count(
    sqlite_hub: Hub, kind: str
) -> None:
    sql, value = KEY_KINDS[kind]
    url = _department(sqlite_hub, "population")
    [rows] = asyncio.run(_run(url, [("SELECT id_number_bidx FROM pop_person ORDER BY id_number_bidx LIMIT 4", {})]))
    clean = sqlite_hub.query(PERSONS)["data"]["populationPersons"]["nodes"]
    assert len(clean) == 4
    with contextlib.ExitStack() as stack:
        # Two rows: one error with a count of two, not one per row.
        for (bidx,) in rows[1:3]:
            stack.enter_context(corrupted(url, "pop_person", "id_number_bidx", bidx, "id_number", sql, value))
        listed = sqlite_hub.query(PERSONS)
        total = sqlite_hub.query("{ populationPersons(first: 4) { totalCount nodes { birthDate } } }")
    nodes = listed["data"]["populationPersons"]["nodes"]
    assert len(nodes) == 2
    assert all(node in clean for node in nodes)
    assert listed["errors"] == [
        {
            "message": "populationPersons/nodes: 2 row(s) left out: their key is missing or failed its integrity check",
            "path": ["populationPersons", "nodes"],
            "extensions": {"code": "DATA_INTEGRITY", "count": 2},
        }
    ]
    # A list that does not select the key keeps the rows (their other cells are bound to the
    # key's blind index, which is intact), and totalCount counts the stored rows.
    assert len(total["data"]["populationPersons"]["nodes"]) == 4
    assert total["data"]["populationPersons"]["totalCount"] >= 4


def test_row_whose_key_does_not_decrypt_is_left_out_through_a_relation_and_by_key(
    sqlite_hub: Hub, demo_workspace: Workspace
) -> None:
    case = sqlite_hub.query(
        "{ civilAffairsAssistanceCases(first: 1, orderBy: [CASE_ID_ASC]) { nodes { caseId recipient { idNumber } } } }"
    )
    node = case["data"]["civilAffairsAssistanceCases"]["nodes"][0]
    id_number = node["recipient"]["idNumber"]
    query = (
        "query($case: ID!, $person: ID!) { civilAffairsAssistanceCase(key: $case) { caseId status "
        "recipient { idNumber name } } populationPerson(key: $person) { idNumber name } }"
    )
    variables = {"case": node["caseId"], "person": id_number}
    clear = sqlite_hub.query(query, variables)
    assert "errors" not in clear
    # The recipient's row, found by the blind index the hub joins on, its key ciphertext garbled.
    keyring, _ = asyncio.run(open_workspace_keyring(demo_workspace))
    bidx = keyring.blind_index("resident_id").digest(id_number)
    url = _department(sqlite_hub, "population")
    with corrupted(url, "pop_person", "id_number_bidx", bidx, "id_number", ":v", b"\x01" * 40):
        result = sqlite_hub.query(query, variables)
    case_row = result["data"]["civilAffairsAssistanceCase"]
    assert case_row["caseId"] == node["caseId"]
    assert case_row["status"] == clear["data"]["civilAffairsAssistanceCase"]["status"]
    assert case_row["recipient"] is None
    assert result["data"]["populationPerson"] is None
    found = sorted((e["path"], e["extensions"]["code"], e["extensions"]["count"]) for e in result["errors"])
    assert found == [
        (["civilAffairsAssistanceCase", "recipient"], "DATA_INTEGRITY", 1),
        (["populationPerson"], "DATA_INTEGRITY", 1),
    ]
