"""The demo's synthetic department data: valid identities, determinism, scale, referential
integrity across departments, manifests that match the tables, and a load into SQLite.

The generated rows are plain; the tables store the fields the manifests encrypt as binary
values with their blind indexes beside them (tests/unit/demo/test_workspace_encrypted.py checks the
stored data itself)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Table, UniqueConstraint, create_engine, func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.types import LargeBinary

from hub.catalog import Catalog, EntityInfo
from hub.catalog.loader import load_catalog
from hub.catalog.manifest import FieldType, LineageRole, PartialMask, Storage, Tier, YearOnlyMask
from hub.crypto.cells import FieldCells, key_scopes, row_keys
from hub.crypto.fields import DataKeys
from hub.crypto.keyring import Keyring
from hub.demo.deliveries import reference
from hub.demo.generate import generate
from hub.demo.geography import BY_CODE
from hub.demo.identities import MOBILE_PREFIXES, birth_date_of, check_char, gender_of, is_valid_id_number
from hub.demo.load import load_demo
from hub.demo.tables import DEPARTMENTS, METADATA
from hub.demo.timeline import NOW, REFERENCE_DATE, age_on

Data = dict[str, dict[str, list[dict[str, Any]]]]

MANIFESTS = Path(__file__).resolve().parents[3] / "hub" / "demo" / "manifests"
DELIVERY_TABLES = {
    "civil_affairs": ("ca_service_delivery", "recipient_id_number"),
    "human_resources": ("hr_service_delivery", "id_number"),
    "education": ("edu_service_delivery", "id_number"),
}


@pytest.fixture(scope="module")
def data() -> Data:
    return generate()


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(MANIFESTS)


def index_columns(catalog: Catalog) -> dict[str, dict[str, str]]:
    """By table: each blind-index column and the encrypted column it indexes."""
    out: dict[str, dict[str, str]] = {}
    for entity in catalog:
        for f in entity.fields.values():
            if f.index_column is not None:
                out.setdefault(entity.table.name, {})[f.index_column] = f.column
    return out


def memory_keyring(catalog: Catalog) -> Keyring:
    """A keyring with fixed keys and no hub database, for loads that need nothing else."""
    departments, domains = key_scopes(list(catalog))
    data = {d: DataKeys(1, {1: AESGCM(bytes([n]) * 32)}) for n, d in enumerate(departments)}
    return Keyring(data, {d: bytes([100 + n]) * 32 for n, d in enumerate(domains)}, bytes(32))


@pytest.fixture(scope="module")
def people(data: Data) -> dict[str, dict[str, Any]]:
    return {p["id_number"]: p for p in data["population"]["pop_person"]}


def digest(data: Data) -> str:
    text = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# --- identities -------------------------------------------------------------------------------


def test_check_character_follows_gb_11643() -> None:
    # The standard's own example number.
    assert check_char("11010519491231002") == "X"
    assert is_valid_id_number("11010519491231002X")
    assert not is_valid_id_number("110105194912310021")
    assert not is_valid_id_number("110105194902300021")  # 30 February


def test_every_id_number_is_valid_and_matches_birth_date_gender_and_district(
    people: dict[str, dict[str, Any]],
) -> None:
    for number, person in people.items():
        assert is_valid_id_number(number), number
        assert birth_date_of(number) == person["birth_date"]
        assert gender_of(number) == person["gender"]
        assert number[:6] == person["district_code"]


def test_mobiles_are_unique_eleven_digit_numbers_of_real_segments(people: dict[str, dict[str, Any]]) -> None:
    mobiles = [p["mobile"] for p in people.values() if p["mobile"] is not None]
    assert len(mobiles) == len(set(mobiles))
    for mobile in mobiles:
        assert len(mobile) == 11
        assert mobile.isdigit()
        assert mobile[:3] in MOBILE_PREFIXES


def test_people_span_every_life_stage_in_urban_and_rural_districts(people: dict[str, dict[str, Any]]) -> None:
    ages = [age_on(p["birth_date"], REFERENCE_DATE) for p in people.values()]
    stages = Counter("child" if a < 6 else "student" if a < 22 else "working" if a < 60 else "elderly" for a in ages)
    assert min(stages.values()) > 500, stages
    assert min(ages) == 0
    assert max(ages) >= 90
    kinds = Counter(BY_CODE[p["district_code"]].type for p in people.values())
    assert kinds["urban"] > 2000
    assert kinds["rural"] > 2000
    assert all(len(p["name"]) in (2, 3, 4) for p in people.values())


# --- determinism and scale ----------------------------------------------------------------------


def test_generation_is_deterministic(data: Data) -> None:
    assert digest(generate()) == digest(data)


def test_generation_does_not_depend_on_the_hash_seed(data: Data) -> None:
    code = (
        "import hashlib, json; from hub.demo.generate import generate;"
        "text = json.dumps(generate(), sort_keys=True, default=str, ensure_ascii=False);"
        "print(hashlib.sha256(text.encode()).hexdigest())"
    )
    root = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=root)
    assert result.stdout.strip() == digest(data)


def test_another_seed_gives_other_people(data: Data) -> None:
    other = generate(7)
    assert other["population"]["pop_person"][0] != data["population"]["pop_person"][0]


def test_scale(data: Data) -> None:
    assert len(data["population"]["pop_person"]) >= 10_000
    assert len(data["civil_affairs"]["ca_service_delivery"]) >= 10_000
    assert {d: len(t) for d, t in data.items()}.keys() == set(DEPARTMENTS)


def test_rows_have_exactly_the_columns_of_their_tables_but_blind_indexes(data: Data, catalog: Catalog) -> None:
    indexes = index_columns(catalog)
    for department, tables in data.items():
        metadata = METADATA[department]
        assert set(tables) == set(metadata.tables), department
        for name, rows in tables.items():
            of = indexes.get(name, {})
            columns = set(metadata.tables[name].columns.keys()) - set(of)
            assert rows, name
            for row in rows:
                assert set(row) == columns, name
            key = next(iter(metadata.tables[name].primary_key.columns)).name
            key = of.get(key, key)  # a blind index is unique where its plain value is
            assert len({row[key] for row in rows}) == len(rows), f"{name}: duplicate keys"


def test_civil_affairs_delivery_has_exactly_twelve_fields(catalog: Catalog) -> None:
    # The benchmarks' wide-list workload reads all twelve; the table adds two blind indexes.
    assert len(catalog.entity("civil_affairs.ServiceDelivery").fields) == 12
    columns = METADATA["civil_affairs"].tables["ca_service_delivery"].columns.keys()
    assert len([c for c in columns if not c.endswith("_bidx")]) == 12


# --- referential integrity --------------------------------------------------------------------


def test_every_delivery_answers_a_real_request_is_funded_and_reaches_a_registered_person(
    data: Data, people: dict[str, dict[str, Any]]
) -> None:
    requests = {r["request_id"]: r for r in data["hotline"]["hl_request"]}
    expenditures = {e["expenditure_id"]: e for e in data["finance"]["fin_expenditure"]}
    lines = {b["line_id"]: b for b in data["finance"]["fin_budget_line"]}
    for department, (table, id_column) in DELIVERY_TABLES.items():
        rows = data[department][table]
        assert any(r["request_id"] for r in rows)
        assert any(r["request_id"] is None for r in rows)
        for row in rows:
            person = people[row[id_column]]
            assert row["recipient_name"] == person["name"]
            assert row["district_code"] == person["district_code"]
            assert row["delivered_at"] <= NOW
            expenditure = expenditures[row["expenditure_id"]]
            line = lines[expenditure["budget_line_id"]]
            assert expenditure["department"] == line["department"] == department
            assert line["fiscal_year"] == row["delivered_at"].year
            assert expenditure["paid_at"] <= row["delivered_at"]
            if row["request_id"] is not None:
                request = requests[row["request_id"]]
                assert request["assigned_department"] == department
                assert request["received_at"] < row["delivered_at"]


def test_civil_affairs_deliveries_belong_to_their_recipients_cases(
    data: Data, people: dict[str, dict[str, Any]]
) -> None:
    cases = {c["case_id"]: c for c in data["civil_affairs"]["ca_assistance_case"]}
    for row in data["civil_affairs"]["ca_service_delivery"]:
        case = cases[row["case_id"]]
        assert case["recipient_id_number"] == row["recipient_id_number"]
        assert row["recipient_mobile"] == people[row["recipient_id_number"]]["mobile"]
        assert case["start_date"] <= row["delivered_at"].date()
        assert case["end_date"] is None or row["delivered_at"].date() <= case["end_date"]


def test_education_deliveries_pay_their_aid(data: Data, people: dict[str, dict[str, Any]]) -> None:
    aids = {a["aid_id"]: a for a in data["education"]["edu_student_aid"]}
    students = {s["student_id"]: s for s in data["education"]["edu_student"]}
    assert len(aids) == len(data["education"]["edu_service_delivery"])
    for row in data["education"]["edu_service_delivery"]:
        aid = aids[row["aid_id"]]
        assert (aid["student_id_number"], aid["amount"]) == (row["id_number"], row["amount"])
        assert aid["granted_at"] <= row["delivered_at"].date()
        assert students[aid["student_id"]]["id_number"] == aid["student_id_number"]
    assert all(s["id_number"] in people for s in students.values())


def test_other_records_are_about_registered_people(data: Data, people: dict[str, dict[str, Any]]) -> None:
    pairs = [
        ("human_resources", "hr_pension_account", "id_number"),
        ("human_resources", "hr_employment", "id_number"),
        ("health", "hlth_visit", "patient_id_number"),
        ("civil_affairs", "ca_assistance_case", "recipient_id_number"),
        ("hotline", "hl_request", "caller_id_number"),
    ]
    for department, table, column in pairs:
        assert all(row[column] in people for row in data[department][table]), table
    for request in data["hotline"]["hl_request"]:
        assert request["caller_mobile"] == people[request["caller_id_number"]]["mobile"]


def test_expenditures_add_up_to_the_deliveries_they_fund(data: Data) -> None:
    funded: dict[str, Any] = {}
    for department, (table, _) in DELIVERY_TABLES.items():
        for row in data[department][table]:
            funded[row["expenditure_id"]] = funded.get(row["expenditure_id"], 0) + row["amount"]
    for expenditure in data["finance"]["fin_expenditure"]:
        if expenditure["expenditure_id"] in funded:
            assert funded[expenditure["expenditure_id"]] == expenditure["amount"]


def test_budget_lines_cover_their_spending_and_some_fund_no_delivery(data: Data) -> None:
    spent: dict[str, Any] = {}
    for expenditure in data["finance"]["fin_expenditure"]:
        line = expenditure["budget_line_id"]
        spent[line] = spent.get(line, 0) + expenditure["amount"]
    funded_lines = set()
    by_id = {e["expenditure_id"]: e for e in data["finance"]["fin_expenditure"]}
    for department, (table, _) in DELIVERY_TABLES.items():
        funded_lines |= {by_id[row["expenditure_id"]]["budget_line_id"] for row in data[department][table]}
    lines = data["finance"]["fin_budget_line"]
    for line in lines:
        assert spent.get(line["line_id"], 0) <= line["amount"], line
    no_demand = [line for line in lines if line["line_id"] not in funded_lines]
    assert any(line["line_id"] in spent for line in no_demand)  # paid contractors, served nobody
    assert any(line["line_id"] not in spent for line in no_demand)  # approved, never spent


def test_requests_run_in_time_order_and_some_demand_goes_unanswered(data: Data) -> None:
    answered = {
        row["request_id"]
        for department, (table, _) in DELIVERY_TABLES.items()
        for row in data[department][table]
        if row["request_id"] is not None
    }
    requests = data["hotline"]["hl_request"]
    for request in requests:
        assert request["received_at"] < request["deadline"]
        assert request["received_at"] <= NOW
        if request["closed_at"] is not None:
            assert request["status"] == "已办结"
            assert request["received_at"] < request["closed_at"] <= NOW
        assert request["satisfaction"] is None or 1 <= request["satisfaction"] <= 5
    statuses = Counter(r["status"] for r in requests)
    assert set(statuses) == {"受理", "办理中", "已办结", "超期"}
    unanswered = [r for r in requests if r["request_id"] not in answered]
    assert any(r["status"] == "超期" for r in unanswered)
    assert any(r["assigned_department"] == "civil_affairs" and r["status"] == "超期" for r in unanswered)


def test_feedback_names_the_delivery_that_answered_its_request(data: Data) -> None:
    refs = {
        reference(department, row["delivery_id"]): row["request_id"]
        for department, (table, _) in DELIVERY_TABLES.items()
        for row in data[department][table]
    }
    requests = {r["request_id"]: r for r in data["hotline"]["hl_request"]}
    feedback = data["hotline"]["hl_feedback"]
    assert any(f["delivery_ref"] for f in feedback)
    assert any(f["delivery_ref"] is None for f in feedback)
    for item in feedback:
        request = requests[item["request_id"]]
        assert request["satisfaction"] == item["satisfaction"]
        assert request["closed_at"] < item["submitted_at"] <= NOW
        if item["delivery_ref"] is not None:
            assert refs[item["delivery_ref"]] == item["request_id"]


# --- manifests and tables ---------------------------------------------------------------------


def _indexed(table: Table, column: str) -> bool:
    """Whether `column` alone is indexed, unique or the primary key of `table`."""
    if [c.name for c in table.primary_key.columns] == [column]:
        return True
    singles = [[c.name for c in i.columns] for i in table.indexes]
    singles += [[c.name for c in u.columns] for u in table.constraints if isinstance(u, UniqueConstraint)]
    return [column] in singles or bool(table.columns[column].unique)


def test_manifests_load_and_every_field_has_a_column_in_its_table() -> None:
    catalog = load_catalog(MANIFESTS)
    assert set(catalog.departments) == set(DEPARTMENTS)
    covered: dict[str, set[str]] = {}
    for entity in catalog:
        assert catalog.departments[entity.department].connection.sqlite_path == f"{entity.department}.db"
        table = METADATA[entity.department].tables[entity.table.name]
        assert [c.name for c in table.primary_key.columns] == [entity.table.key], entity.id
        seen = covered.setdefault(table.name, set())
        for field in entity.fields.values():
            where = f"{entity.id}.{field.name}"
            assert field.column in table.columns, where
            seen.add(field.column)
            binary = isinstance(table.columns[field.column].type, LargeBinary)
            assert binary == (field.encrypted and field.stored_as is Storage.BINARY), where
            if field.encrypted:
                # A ciphertext takes a fresh nonce: an index or uniqueness on it means nothing.
                assert not _indexed(table, field.column), where
            if field.index_column is not None:
                assert field.index_column in table.columns, f"{where}: no {field.index_column}"
                seen.add(field.index_column)
                index = table.columns[field.index_column]
                assert isinstance(index.type, LargeBinary) == (field.stored_as is Storage.BINARY), where
                assert _indexed(table, field.index_column), f"{where}: {field.index_column} is not indexed"
                assert index.nullable == table.columns[field.column].nullable, where
    # Nothing in the tables that no manifest names (a forgotten plain copy of an encrypted value).
    for metadata in METADATA.values():
        for table in metadata.tables.values():
            assert set(table.columns.keys()) == covered.get(table.name), table.name


def test_encrypted_keys_make_their_blind_index_the_primary_key(catalog: Catalog) -> None:
    keyed = {e.id: e.table.key for e in catalog if e.fields[e.key].encrypted}
    assert keyed == {"population.Person": "id_number_bidx", "human_resources.PensionAccount": "id_number_bidx"}
    for entity_id in keyed:
        entity = catalog.entity(entity_id)
        table = METADATA[entity.department].tables[entity.table.name]
        assert not table.columns[entity.column_of(entity.key)].nullable


def test_manifests_protect_personal_data() -> None:
    catalog = load_catalog(MANIFESTS)
    for entity in catalog:
        people = [f for f in entity.fields.values() if f.column.endswith("id_number")]
        if people:
            assert sum(f.person for f in people) == 1, entity.id
        for field in people:
            assert field.tier is Tier.L3
            assert field.blind_index == "resident_id"
            assert field.encrypted
            # The area code's first half only: the birth date, sequence and check digit stay
            # hidden (hub.policy.mask_strength explains why 6+4 is not enough).
            assert field.mask == PartialMask(kind="partial", keep_first=3, keep_last=0)
        for field in entity.fields.values():
            if "mobile" in field.column:
                assert field.blind_index == "mobile"
                assert field.tier is Tier.L3
                assert field.encrypted
                assert field.mask == PartialMask(kind="partial", keep_first=3, keep_last=4)
            if field.column == "birth_date":
                assert field.mask == YearOnlyMask(kind="year_only")
    assert catalog.entity("health.Visit").fields["diagnosis"].tier is Tier.L4
    roles = {e.id: e.lineage_role for e in catalog if e.lineage_role is not None}
    assert roles == {
        "hotline.Request": LineageRole.CITIZEN_INPUT,
        "hotline.Feedback": LineageRole.FEEDBACK,
        "civil_affairs.ServiceDelivery": LineageRole.SERVICE_DELIVERY,
        "human_resources.ServiceDelivery": LineageRole.SERVICE_DELIVERY,
        "education.ServiceDelivery": LineageRole.SERVICE_DELIVERY,
        "finance.Expenditure": LineageRole.EXPENDITURE,
        "finance.BudgetLine": LineageRole.BUDGET_LINE,
        "civil_affairs.AssistanceCase": LineageRole.ENTITLEMENT,
        "education.StudentAid": LineageRole.ENTITLEMENT,
        "population.Person": LineageRole.PERSON,
    }


def test_manifest_types_fit_the_generated_values(data: Data) -> None:
    checks: dict[FieldType, Callable[[Any], bool]] = {
        FieldType.DECIMAL: lambda v: v.as_tuple().exponent == -2,
        FieldType.DATE: lambda v: type(v) is date,
        FieldType.INT: lambda v: isinstance(v, int),
        FieldType.STRING: lambda v: isinstance(v, str),
        FieldType.ID: lambda v: isinstance(v, str),
    }
    for entity in load_catalog(MANIFESTS):
        rows = data[entity.department][entity.table.name]
        for field in entity.fields.values():
            check = checks.get(field.type)
            values = [row[field.column] for row in rows[:500] if row[field.column] is not None]
            if check is not None:
                assert all(check(v) for v in values), f"{entity.id}.{field.name}"


def test_all_departments_fit_in_one_database() -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        for metadata in METADATA.values():
            metadata.create_all(connection)
    names = [t for m in METADATA.values() for t in m.tables]
    assert len(names) == len(set(names))
    engine.dispose()


# --- loading ------------------------------------------------------------------------------------


async def test_load_demo_creates_every_department_database(tmp_path: Path, data: Data, catalog: Catalog) -> None:
    urls = {d: f"sqlite+aiosqlite:///{tmp_path / 'demo' / d}.db" for d in DEPARTMENTS}
    keyring = memory_keyring(catalog)
    seen: dict[str, tuple[int, int]] = {}
    counts = await load_demo(urls, keyring, progress=lambda d, done, total: seen.__setitem__(d, (done, total)))
    expected = {name: len(rows) for tables in data.values() for name, rows in tables.items()}
    assert counts == expected
    for department in DEPARTMENTS:
        done, total = seen[department]
        assert done == total == sum(len(rows) for rows in data[department].values())
    engine = create_async_engine(urls["civil_affairs"])
    table = METADATA["civil_affairs"].tables["ca_service_delivery"]
    async with engine.connect() as connection:
        stored = (await connection.execute(select(func.count()).select_from(table))).scalar_one()
        query = select(table).order_by(table.c.delivery_id).limit(1)
        first = dict((await connection.execute(query)).mappings().one())
    await engine.dispose()
    assert stored == expected["ca_service_delivery"]
    assert (
        plain_row(catalog.entity("civil_affairs.ServiceDelivery"), keyring, first)
        == (data["civil_affairs"]["ca_service_delivery"][0])
    )
    # Loading again replaces the tables instead of failing on them.
    assert await load_demo({"finance": urls["finance"]}, keyring) == {
        "fin_budget_line": expected["fin_budget_line"],
        "fin_expenditure": expected["fin_expenditure"],
    }


def plain_row(entity: EntityInfo, keyring: Keyring, row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as generated: encrypted values decrypted, blind indexes left out."""
    (key,) = row_keys(entity, [row[entity.table.key]])
    plain = dict(row)
    for field in entity.fields.values():
        if field.encrypted:
            (plain[field.column],) = FieldCells(keyring, entity, field).decrypt([row[field.column]], [key])
            if field.index_column is not None:
                del plain[field.index_column]
    return plain


async def test_load_demo_rejects_unknown_departments(tmp_path: Path, catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="housing"):
        await load_demo({"housing": f"sqlite+aiosqlite:///{tmp_path}/housing.db"}, memory_keyring(catalog))
