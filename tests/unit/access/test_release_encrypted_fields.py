"""Encrypted fields on the request path: stored as ciphertext, released plain only where the
plan says so, searched and joined through blind indexes, and a value that is not its cell's
is null with DATA_INTEGRITY, never wrong data.

The catalog is tests/fixtures/encrypted (a registry keyed by an encrypted ID number, a welfare
department joining it on an encrypted and on a plain ID number); the data is encrypted under
keys made in the test's hub database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from connectors.base import Filter, Page, Query, TableSpec
from connectors.memory import MemoryConnector
from hub.access.plan import PLAIN, Decision, Verdict
from hub.app import create_app
from hub.auth.principal import Principal
from hub.catalog import Catalog, EntityInfo, FieldInfo, RelationInfo, load_catalog
from hub.config import load_settings
from hub.crypto.cells import FieldCells, open_keyring, row_key_text
from hub.crypto.fields import FieldCipher
from hub.crypto.keyring import Keyring, rotate_data_key
from hub.crypto.master import MasterKey
from hub.db.engine import hub_engine, sessions
from hub.services import Services, build_services
from tests.conftest import TEST_MASTER_KEY, Hub, register

CATALOG_DIR = Path(__file__).parents[2] / "fixtures" / "encrypted"

PEOPLE = [
    {"id_number": "110105199001011234", "name": "王小明", "mobile": "13812341234", "district": "Chaoyang"},
    {"id_number": "11010519850202567X", "name": "李华", "mobile": "13900005678", "district": "Haidian"},
    {"id_number": "330102200512120021", "name": "张伟", "mobile": None, "district": "Chaoyang"},
]
CASES = [
    {"case_id": "C1", "recipient_id_number": "110105199001011234", "note": "低保 申请", "amount": Decimal("500.00")},
    {"case_id": "C2", "recipient_id_number": "110105199001011234", "note": "", "amount": Decimal("250.50")},
    {"case_id": "C3", "recipient_id_number": "11010519850202567X", "note": None, "amount": Decimal("90.00")},
]
REFERRALS = [
    {"referral_id": "R1", "id_number": "11010519850202567x"},
    {"referral_id": "R2", "id_number": "999999999999999999"},
    {"referral_id": "R3", "id_number": "110105199001011234"},
    {"referral_id": "R4", "id_number": "110105199001011234"},
]


def encrypt_rows(keyring: Keyring, entity: EntityInfo, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as a department stores them: encrypted fields as ciphertext beside their index."""
    key_field = entity.fields[entity.key]
    out = []
    for plain in rows:
        row = dict(plain)
        if key_field.encrypted:
            row[key_field.index_column] = FieldCells(keyring, entity, key_field).index_value(plain[key_field.column])
        row_key = row_key_text(entity, row[entity.table.key])
        for item in entity.fields.values():
            if not item.encrypted:
                continue
            cells = FieldCells(keyring, entity, item)
            value = plain[item.column]
            if item.index_column is not None:
                row[item.index_column] = None if value is None else cells.index_value(value)
            row[item.column] = None if value is None else cells.encrypt(value, row_key)
        out.append(row)
    return out


class CountingConnector:
    def __init__(self, inner: MemoryConnector) -> None:
        self.inner = inner
        self.queries: list[Query] = []
        # The values of each batch read by values (`fetch_by`), one entry per call.
        self.batches: list[list[Any]] = []

    async def fetch(self, query: Query) -> Page:
        self.queries.append(query)
        return await self.inner.fetch(query)

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        return await self.inner.count(table, where)

    async def fetch_by(self, *args: Any, **options: Any) -> Page:
        self.batches.append(list(args[2]))
        return await self.inner.fetch_by(*args, **options)

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class Policy:
    """Everything plain, except the verdicts given by field name."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)
    version: str = "test"

    def field(self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo) -> Verdict:
        return self.verdicts.get(item.name, PLAIN)

    def relation(self, principal: Principal, purpose: str | None, relation: RelationInfo) -> Verdict:
        return PLAIN

    def row_rule(self, principal: Principal, purpose: str | None, entity: EntityInfo) -> Filter | None:
        return None

    def attributes_used(self, principal: Principal) -> tuple[tuple[str, str], ...]:
        return ()

    def next_change(self, after: datetime) -> datetime | None:
        return None


@dataclass
class Vault:
    hub: Hub
    catalog: Catalog
    keyring: Keyring
    connectors: dict[str, CountingConnector]
    policy: Policy
    services: Services

    def table(self, department: str, name: str) -> list[dict[str, Any]]:
        """The rows the department's connector serves (altered in place to tamper with them)."""
        rows: list[dict[str, Any]] = self.connectors[department].inner._tables[name]
        return rows


def make_keyring(url: URL, catalog: Catalog) -> Keyring:
    async def run() -> Keyring:
        engine = hub_engine(url)
        try:
            keyring, _ = await open_keyring(sessions(engine), MasterKey(TEST_MASTER_KEY), list(catalog))
            return keyring
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _vault(hub_db: URL, environ: dict[str, str]) -> Iterator[Vault]:
    catalog = load_catalog(CATALOG_DIR)
    keyring = make_keyring(hub_db, catalog)
    tables = {
        "person": encrypt_rows(keyring, catalog.entity("registry.Person"), PEOPLE),
        "welfare_case": encrypt_rows(keyring, catalog.entity("welfare.Case"), CASES),
        "welfare_referral": [dict(r) for r in REFERRALS],
    }
    connectors = {
        "registry": CountingConnector(MemoryConnector({"person": tables["person"]})),
        "welfare": CountingConnector(
            MemoryConnector({"welfare_case": tables["welfare_case"], "welfare_referral": tables["welfare_referral"]})
        ),
    }
    policy = Policy()
    settings = load_settings(
        environ, database_url=hub_db.render_as_string(), manifests_dir=CATALOG_DIR, master_key=TEST_MASTER_KEY
    )
    services = build_services(settings, catalog=catalog, connectors=connectors, policy=policy)
    with TestClient(create_app(services)) as client:
        yield Vault(Hub(client, register(hub_db), hub_db), catalog, keyring, connectors, policy, services)


@pytest.fixture
def vault(hub_db: URL) -> Iterator[Vault]:
    yield from _vault(hub_db, {})


@pytest.fixture
def tight_vault(hub_db: URL) -> Iterator[Vault]:
    """The same, its app allowed three looked-up identifiers an hour."""
    yield from _vault(hub_db, {"HUB_LOOKUP_QUOTAS": "department_app=3"})


def persons(result: dict[str, Any]) -> list[dict[str, Any]]:
    assert "errors" not in result, result.get("errors")
    return list(result["data"]["registryPersons"]["nodes"])


def test_department_rows_hold_ciphertext_and_no_plaintext(vault: Vault) -> None:
    stored = repr(vault.table("registry", "person")) + repr(vault.table("welfare", "welfare_case"))
    for plain in ["110105199001011234", "王小明", "13812341234", "低保"]:
        assert plain not in stored
        assert plain.encode() not in stored.encode()
    person = vault.table("registry", "person")[0]
    assert isinstance(person["id_number"], bytes) and isinstance(person["id_number_bidx"], bytes)
    # The mobile is declared `stored_as: text`: base64 text and a hex index.
    assert person["mobile"].startswith("hub1:") and len(person["mobile_index"]) == 64


def test_cleared_caller_gets_encrypted_fields_plain(vault: Vault) -> None:
    nodes = persons(vault.hub.query("{ registryPersons { nodes { idNumber name mobile district } } }"))
    assert sorted(nodes, key=lambda n: n["idNumber"]) == sorted(
        [
            {"idNumber": p["id_number"], "name": p["name"], "mobile": p["mobile"], "district": p["district"]}
            for p in PEOPLE
        ],
        key=lambda n: n["idNumber"],
    )


def test_empty_and_null_encrypted_values_stay_distinct(vault: Vault) -> None:
    result = vault.hub.query("{ welfareCases(orderBy: [CASE_ID_ASC]) { nodes { caseId note } } }")
    assert result["data"]["welfareCases"]["nodes"] == [
        {"caseId": "C1", "note": "低保 申请"},
        {"caseId": "C2", "note": ""},
        {"caseId": "C3", "note": None},
    ]
    assert "errors" not in result


def test_find_person_by_id_number_through_the_blind_index(vault: Vault) -> None:
    # Lower-case x: the index normalises ID numbers to upper case.
    query = '{ registryPersons(filter: {idNumber: {eq: "11010519850202567x"}}) { nodes { name } } }'
    assert persons(vault.hub.query(query)) == [{"name": "李华"}]
    sent = vault.connectors["registry"].queries[-1]
    # The department database is asked for an index value, never the number.
    assert "11010519850202567" not in repr(sent.where)
    assert "id_number_bidx" in repr(sent.where)


def test_in_filter_on_an_encrypted_text_stored_field(vault: Vault) -> None:
    query = '{ registryPersons(filter: {mobile: {in: ["138 1234 1234", "+8613900005678", "10000000000"]}}) { nodes { name } } }'
    assert sorted(n["name"] for n in persons(vault.hub.query(query))) == ["李华", "王小明"]


def test_lookup_by_encrypted_key(vault: Vault) -> None:
    result = vault.hub.query('{ registryPerson(key: "330102200512120021") { name idNumber } }')
    assert "errors" not in result
    assert result["data"] == {"registryPerson": {"name": "张伟", "idNumber": "330102200512120021"}}
    missing = vault.hub.query('{ registryPerson(key: "000000000000000000") { name } }')
    assert missing["data"] == {"registryPerson": None}


def test_relations_join_encrypted_fields_through_blind_indexes(vault: Vault) -> None:
    result = vault.hub.query("{ registryPersons { nodes { name cases { caseId note recipient { name } } } } }")
    by_name = {n["name"]: n for n in persons(result)}
    assert sorted(c["caseId"] for c in by_name["王小明"]["cases"]) == ["C1", "C2"]
    assert [c["caseId"] for c in by_name["李华"]["cases"]] == ["C3"]
    assert by_name["张伟"]["cases"] == []
    assert all(c["recipient"] == {"name": "王小明"} for c in by_name["王小明"]["cases"])


def test_plain_id_number_joins_the_encrypted_registry(vault: Vault) -> None:
    result = vault.hub.query(
        "{ welfareReferrals(orderBy: [REFERRAL_ID_ASC]) { nodes { referralId person { name } } } }"
    )
    assert result["data"]["welfareReferrals"]["nodes"] == [
        {"referralId": "R1", "person": {"name": "李华"}},
        {"referralId": "R2", "person": None},
        {"referralId": "R3", "person": {"name": "王小明"}},
        {"referralId": "R4", "person": {"name": "王小明"}},
    ]


def test_encrypted_id_number_joins_a_plain_column_by_its_decrypted_value(vault: Vault) -> None:
    result = vault.hub.query("{ registryPersons { nodes { name referrals { referralId } } } }")
    by_name = {n["name"]: sorted(r["referralId"] for r in n["referrals"]) for n in persons(result)}
    # R1 holds 李华's number with a lower-case x: one value in the ID number's normal form.
    assert by_name == {"王小明": ["R3", "R4"], "李华": ["R1"], "张伟": []}
    # One statement for the whole list's join values, by value on the plain side.
    assert len(vault.connectors["welfare"].batches) == 1
    assert "110105199001011234" in vault.connectors["welfare"].batches[0]


def test_a_masked_id_number_joins_the_plain_side_without_being_released(vault: Vault) -> None:
    vault.policy.verdicts["idNumber"] = Verdict(Decision.MASKED, "no grant", lookup=True)
    response = vault.hub.client.post(
        "/graphql",
        json={"query": "{ registryPersons { nodes { idNumber referrals { referralId } } } }"},
        headers={"Authorization": f"Bearer {vault.hub.token}"},
    )
    nodes = persons(response.json())
    assert sorted(len(n["referrals"]) for n in nodes) == [0, 1, 2]
    assert all("*" in n["idNumber"] for n in nodes)
    for person in PEOPLE:
        assert person["id_number"] not in response.text
        assert person["id_number"][6:14] not in response.text


def test_a_withheld_or_unsearchable_id_number_cannot_be_followed_to_the_plain_side(vault: Vault) -> None:
    vault.policy.verdicts["idNumber"] = Verdict(Decision.MASKED, "no grant", lookup=False)
    result = vault.hub.query("{ registryPersons { nodes { district referrals { referralId } } } }")
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert vault.connectors["welfare"].batches == []


def test_a_relation_used_as_an_oracle_on_a_masked_id_number_is_bounded_by_the_lookup_quota(
    tight_vault: Vault,
) -> None:
    # The caller gets the number masked but may look it up: each guess it sends, whether it
    # then follows the relation to the plain side or filters by it, counts against its quota.
    tight_vault.policy.verdicts["idNumber"] = Verdict(Decision.MASKED, "no grant", lookup=True)
    guesses = ["110105199001011234", "110105199001011242", "110105199001011250", "110105199001011269"]
    answers = [
        tight_vault.hub.query(
            f'{{ registryPersons(filter: {{idNumber: {{eq: "{guess}"}}}}) {{ nodes {{ referrals {{ referralId }} }} }} }}'
        )
        for guess in guesses[:2]
    ]
    answers.append(tight_vault.hub.query(f'{{ registryPerson(key: "{guesses[2]}") {{ referrals {{ referralId }} }} }}'))
    refused = tight_vault.hub.query(
        f'{{ registryPersons(filter: {{idNumber: {{eq: "{guesses[3]}"}}}}) {{ nodes {{ referrals {{ referralId }} }} }} }}'
    )
    assert [a.get("errors") for a in answers] == [None, None, None]
    assert [len(n["referrals"]) for n in answers[0]["data"]["registryPersons"]["nodes"]] == [2]
    assert refused["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert refused["data"] is None


def test_eq_on_a_plain_id_number_column_compares_its_spellings(vault: Vault) -> None:
    query = '{ welfareReferrals(filter: {idNumber: {eq: "11010519850202567X"}}) { nodes { referralId } } }'
    assert vault.hub.query(query)["data"]["welfareReferrals"]["nodes"] == [{"referralId": "R1"}]


def test_a_masked_plain_id_number_allows_one_eq_under_lookup_and_counts_it(tight_vault: Vault) -> None:
    tight_vault.policy.verdicts["idNumber"] = Verdict(Decision.MASKED, "no grant", lookup=True)
    found = [
        tight_vault.hub.query(
            f'{{ welfareReferrals(filter: {{idNumber: {{eq: "{guess}"}}}}) {{ nodes {{ referralId }} }} }}'
        )
        for guess in [
            "110105199001011234",
            "11010519850202567x",
            "11010519850202567X",
            "999999999999999999",
            "330102200512120021",
        ]
    ]
    assert [[n["referralId"] for n in f["data"]["welfareReferrals"]["nodes"]] for f in found[:3]] == [
        ["R3", "R4"],
        ["R1"],
        ["R1"],  # the same number as the one before: counted once
    ]
    assert found[3]["data"]["welfareReferrals"]["nodes"] == [{"referralId": "R2"}]
    assert found[4]["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
    listed = tight_vault.hub.query(
        '{ welfareReferrals(filter: {idNumber: {in: ["110105199001011234"]}}) { nodes { referralId } } }'
    )
    assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_a_filter_cannot_follow_a_relation_between_an_encrypted_and_a_plain_column(vault: Vault) -> None:
    # A filter runs in SQL, where ciphertext never equals a plain value: refused, not empty.
    for query in (
        '{ registryPersons(filter: {referrals: {some: {referralId: {eq: "R1"}}}}) { nodes { name } } }',
        '{ welfareReferrals(filter: {person: {some: {district: {eq: "Haidian"}}}}) { nodes { referralId } } }',
    ):
        result = vault.hub.query(query)
        assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "cannot be filtered on" in result["errors"][0]["message"]


def test_encrypted_fields_refuse_pattern_filters_and_order(vault: Vault) -> None:
    result = vault.hub.query('{ registryPersons(filter: {idNumber: {contains: "1101"}}) { nodes { name } } }')
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    ordered = vault.hub.query("{ registryPersons(orderBy: [ID_NUMBER_ASC]) { nodes { name } } }")
    assert "ID_NUMBER_ASC" in ordered["errors"][0]["message"]
    no_index = vault.hub.query('{ registryPersons(filter: {name: {eq: "李华"}}) { nodes { name } } }')
    assert no_index["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "encrypted" in no_index["errors"][0]["message"]


def test_ciphertext_moved_to_another_row_is_null_with_data_integrity(vault: Vault) -> None:
    rows = vault.table("registry", "person")
    rows[0]["name"], rows[1]["name"] = rows[1]["name"], rows[0]["name"]
    result = vault.hub.query("{ registryPersons { nodes { name district } } }")
    nodes = result["data"]["registryPersons"]["nodes"]
    assert sorted((n["name"] or "", n["district"]) for n in nodes) == [
        ("", "Chaoyang"),
        ("", "Haidian"),
        ("张伟", "Chaoyang"),
    ]
    assert result["errors"] == [
        {
            "message": "name: 2 value(s) failed their integrity check and are null",
            "path": ["registryPersons", "nodes", "*", "name"],
            "extensions": {"code": "DATA_INTEGRITY", "count": 2},
        }
    ]


def test_ciphertext_moved_between_fields_entities_or_departments_never_decrypts(vault: Vault) -> None:
    people, cases = vault.table("registry", "person"), vault.table("welfare", "welfare_case")
    person = vault.catalog.entity("registry.Person")
    # The mobile column given a value encrypted for the name field of the same row.
    name_cipher = vault.keyring.cipher("registry", "Person", "name")
    people[0]["mobile"] = name_cipher.encrypt_text("13812341234", row_key_text(person, people[0]["id_number_bidx"]))
    cases[0]["note"] = people[1]["name"]  # another department's value
    result = vault.hub.query("{ registryPersons { nodes { mobile } } welfareCases { nodes { caseId note } } }")
    codes = sorted((e["path"][0], e["extensions"]["code"]) for e in result["errors"])
    assert codes == [("registryPersons", "DATA_INTEGRITY"), ("welfareCases", "DATA_INTEGRITY")]
    notes = {n["caseId"]: n["note"] for n in result["data"]["welfareCases"]["nodes"]}
    assert notes["C1"] is None and notes["C2"] == ""


def test_flipped_byte_is_null_with_data_integrity(vault: Vault) -> None:
    row = vault.table("welfare", "welfare_case")[0]
    flipped = bytearray(row["note"])
    flipped[-1] ^= 0x01
    row["note"] = bytes(flipped)
    result = vault.hub.query('{ welfareCase(key: "C1") { caseId note amount } }')
    assert result["data"]["welfareCase"] == {"caseId": "C1", "note": None, "amount": "500.00"}
    assert result["errors"][0]["path"] == ["welfareCase", "note"]
    assert result["errors"][0]["extensions"]["code"] == "DATA_INTEGRITY"


def test_withheld_encrypted_field_is_never_fetched_or_decrypted(vault: Vault, monkeypatch: Any) -> None:
    vault.policy.verdicts["name"] = Verdict(Decision.DENIED, "core data")
    decrypted: list[str] = []
    original = FieldCipher.decrypt_column

    def spy(self: FieldCipher, values: Any, keys: Any) -> Any:
        decrypted.append(self.field)
        return original(self, values, keys)

    monkeypatch.setattr(FieldCipher, "decrypt_column", spy)
    result = vault.hub.query("{ registryPersons { nodes { name mobile } } }")
    assert [n["name"] for n in result["data"]["registryPersons"]["nodes"]] == [None, None, None]
    assert decrypted == ["mobile"]
    assert "name" not in vault.connectors["registry"].queries[-1].columns


def test_masked_encrypted_field_is_decrypted_in_memory_then_masked(vault: Vault) -> None:
    vault.policy.verdicts["mobile"] = Verdict(Decision.MASKED, "no grant")
    result = vault.hub.query("{ registryPersons { nodes { name mobile } } }")
    mobiles = {n["name"]: n["mobile"] for n in result["data"]["registryPersons"]["nodes"]}
    assert mobiles == {"王小明": "138****1234", "李华": "139****5678", "张伟": None}
    assert result["extensions"]["access"]["masked"] == ["registryPersons/nodes/*/mobile"]


def test_masked_key_with_lookup_allows_one_eq_only(vault: Vault) -> None:
    vault.policy.verdicts["idNumber"] = Verdict(Decision.MASKED, "no grant", lookup=True)
    found = vault.hub.query(
        '{ registryPersons(filter: {idNumber: {eq: "110105199001011234"}}) { nodes { idNumber } } }'
    )
    assert persons(found) == [{"idNumber": "110105********1234"}]
    listed = vault.hub.query('{ registryPersons(filter: {idNumber: {in: ["110105199001011234"]}}) { nodes { name } } }')
    assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def _rotate_welfare(vault: Vault) -> Keyring:
    """Adds a data-key version to welfare in the hub database (as `hub keys rotate` does, from
    elsewhere: the running hub is not told); the keyring that holds it."""

    async def rotate() -> Keyring:
        from hub.crypto.keyring import load_keyring

        engine = hub_engine(vault.hub.url)
        try:
            async with sessions(engine)() as session, session.begin():
                await rotate_data_key(session, MasterKey(TEST_MASTER_KEY), "welfare")
            async with sessions(engine)() as session:
                return await load_keyring(session, MasterKey(TEST_MASTER_KEY))
        finally:
            await engine.dispose()

    return asyncio.run(rotate())


def _store_note_under(vault: Vault, keyring: Keyring, note: str) -> None:
    entity = vault.catalog.entity("welfare.Case")
    vault.table("welfare", "welfare_case")[0]["note"] = FieldCells(keyring, entity, entity.fields["note"]).encrypt(
        note, "C1"
    )


def test_values_under_a_key_rotated_while_serving_are_read_after_a_reload(vault: Vault) -> None:
    _store_note_under(vault, _rotate_welfare(vault), "新的")
    result = vault.hub.query('{ welfareCase(key: "C1") { note } }')
    assert result["data"]["welfareCase"] == {"note": "新的"}
    assert "errors" not in result


def test_a_value_under_a_key_rotated_just_after_an_announced_reload_is_read(vault: Vault) -> None:
    """Another instance's change (a policy edit, say) was announced and made this one reload
    its keys a moment ago; a rotation lands right after, and a value under it is met before
    its own announcement: the value prompts a reload of its own instead of waiting out the
    interval between reloads."""
    portal = vault.hub.client.portal
    assert portal is not None
    portal.call(vault.services.keys.refresh, True)
    _store_note_under(vault, _rotate_welfare(vault), "新的")
    result = vault.hub.query('{ welfareCase(key: "C1") { note } }')
    assert result["data"]["welfareCase"] == {"note": "新的"}
    assert "errors" not in result


def test_requests_that_met_a_new_key_version_together_all_release_again_after_the_one_reload(
    vault: Vault,
) -> None:
    """Two requests released their rows with the old keyring and met the new version; the first
    to ask reloads, and the second, asking within the interval between reloads, is told the
    keyring is newer than the one it used, so it releases again rather than report the values
    unreadable."""
    portal = vault.hub.client.portal
    assert portal is not None
    keys = vault.services.keys
    used = keys.keyring
    _rotate_welfare(vault)
    assert portal.call(keys.refresh, False, used) is True
    assert keys.keyring is not used
    assert portal.call(keys.refresh, False, used) is True
    # A caller that already holds the reloaded keyring meets no newer one: nothing to redo.
    assert portal.call(keys.refresh, False, keys.keyring) is False


def test_no_plaintext_in_logs_errors_or_the_hub_database(vault: Vault, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    rows = vault.table("registry", "person")
    rows[0]["name"], rows[1]["name"] = rows[1]["name"], rows[0]["name"]
    bodies = [
        vault.hub.query("{ registryPersons { nodes { name } } }"),
        vault.hub.query('{ registryPersons(filter: {name: {eq: "王小明"}}) { nodes { name } } }'),
    ]
    errors = repr([b.get("errors") for b in bodies])
    hub_file = Path(str(vault.hub.url.database)).read_bytes()
    for plain in ["王小明", "李华", "110105199001011234", "13812341234"]:
        assert plain not in caplog.text
        assert plain.encode() not in hub_file
        assert plain not in errors
