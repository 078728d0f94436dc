"""`hub manifest draft` over department databases the test makes on SQLite, PostgreSQL and
MariaDB: the draft loads as a manifest, its guesses about personal data are right (checked by
content, not by column names), foreign keys become relations, and a table without a key is
reported, not silently drafted."""

from __future__ import annotations

import asyncio
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from hub.catalog.loader import load_catalog
from hub.cli.main import main
from tests.resident_ids import check_digit
from tests.servers import fresh_database

NAMES = ["王建国", "李秀英", "张伟", "刘丽娟", "陈志强", "欧阳晓燕"]


def resident_id(i: int) -> str:
    first17 = f"33010219{80 + i % 20:02d}0{1 + i % 9}1{i % 10}{i % 1000:03d}"
    return first17 + check_digit(first17)


def stored_value(i: int) -> bytes:
    # Format 1 (docs/stored-format.md): version, key version 1, nonce, ciphertext and tag.
    return b"\x01" + (1).to_bytes(4, "big") + os.urandom(12) + os.urandom(18) + os.urandom(16)


metadata = sa.MetaData()
tenant = sa.Table(
    "hs_tenant",
    metadata,
    sa.Column("tenant_id", sa.String(20), primary_key=True),
    sa.Column("full_name", sa.String(40)),
    # Named for nothing personal: the content gives them away.
    sa.Column("id_value", sa.String(18)),
    sa.Column("contact", sa.String(20)),
    # Named like a mobile, holding none.
    sa.Column("phone_note", sa.String(40)),
)
lease = sa.Table(
    "hs_leases",
    metadata,
    sa.Column("lease_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("tenant_id", sa.String(20), sa.ForeignKey("hs_tenant.tenant_id")),
    sa.Column("monthly_rent", sa.Numeric(10, 2)),
    sa.Column("signed_at", sa.DateTime),
    sa.Column("start_date", sa.Date),
    sa.Column("active", sa.Boolean),
    sa.Column("holder_id_number", sa.LargeBinary(120)),
    sa.Column("holder_id_number_bidx", sa.LargeBinary(32)),
)
log = sa.Table("hs_log", metadata, sa.Column("at", sa.DateTime), sa.Column("message", sa.String(200)))


async def _fill(url: URL) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(
                tenant.insert(),
                [
                    {
                        "tenant_id": f"T{i}",
                        "full_name": NAMES[i % len(NAMES)],
                        "id_value": resident_id(i),
                        "contact": f"13{i % 10}{i:08d}",
                        "phone_note": "call after six",
                    }
                    for i in range(30)
                ],
            )
            await conn.execute(
                lease.insert(),
                [
                    {
                        "lease_id": i,
                        "tenant_id": f"T{i % 30}",
                        "monthly_rent": Decimal("1234.50"),
                        "signed_at": datetime(2026, 1, 2, 3, 4, 5),
                        "start_date": date(2026, 2, 1),
                        "active": True,
                        "holder_id_number": stored_value(i),
                        "holder_id_number_bidx": os.urandom(32),
                    }
                    for i in range(40)
                ],
            )
            await conn.execute(log.insert(), [{"at": datetime(2026, 1, 1), "message": "started"}])
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def department_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "housing.db"))
    else:
        url = fresh_database(request.param, "onboard_housing")
    asyncio.run(_fill(url))
    return url.render_as_string(hide_password=False)


def _draft(url: str, tmp_path: Path, *args: str) -> tuple[Any, dict[str, Any], str]:
    out = tmp_path / "manifests" / "housing.yaml"
    out.parent.mkdir(exist_ok=True)
    result = CliRunner().invoke(
        main,
        ["manifest", "draft", "--url-env", "HOUSING_URL", "--department", "housing", "--output", str(out), *args],
        env={"HOUSING_URL": url},
    )
    assert result.exit_code == 0, result.output
    return result, yaml.safe_load(out.read_text(encoding="utf-8")), out.read_text(encoding="utf-8")


def _fields(document: dict[str, Any], entity: str) -> dict[str, dict[str, Any]]:
    found = next(item for item in document["entities"] if item["name"] == entity)
    return {item["name"]: item for item in found["fields"]}


def test_draft_loads_as_a_manifest_of_every_keyed_table(department_url: str, tmp_path: Path) -> None:
    _, document, _ = _draft(department_url, tmp_path)
    catalog = load_catalog(tmp_path / "manifests")
    assert set(catalog.entities) == {"housing.Tenant", "housing.Lease"}
    assert document["connection"]["url_env"] == "HOUSING_URL"
    assert catalog.entities["housing.Tenant"].key == "tenantId"
    assert catalog.entities["housing.Lease"].key == "leaseId"


def test_table_without_a_key_is_reported_not_drafted(department_url: str, tmp_path: Path) -> None:
    result, _, text = _draft(department_url, tmp_path)
    assert "note: table hs_log: it has no primary key or single unique column, left out" in result.stderr
    assert "# left out: table hs_log" in text


def test_every_column_gets_its_type(department_url: str, tmp_path: Path) -> None:
    _, document, _ = _draft(department_url, tmp_path)
    lease_fields = _fields(document, "Lease")
    assert {name: item["type"] for name, item in lease_fields.items()} == {
        "leaseId": "Int",
        "tenantId": "ID",
        "monthlyRent": "Decimal",
        "signedAt": "DateTime",
        "startDate": "Date",
        "active": "Boolean",
        "holderIdNumber": "ID",
    }
    assert lease_fields["monthlyRent"]["scale"] == 2
    assert lease_fields["signedAt"]["column"] == "signed_at"


def test_personal_data_is_recognised_by_its_values(department_url: str, tmp_path: Path) -> None:
    _, document, text = _draft(department_url, tmp_path)
    fields = _fields(document, "Tenant")
    assert fields["idValue"]["tier"] == "L3"
    assert fields["idValue"]["mask"] == {"kind": "partial", "keep_first": 3}
    assert fields["idValue"]["identifier"] == "resident_id" and fields["idValue"]["person"] is True
    assert fields["contact"]["tier"] == "L3" and fields["contact"]["identifier"] == "mobile"
    assert fields["fullName"]["tier"] == "L3" and fields["fullName"]["mask"] == {"kind": "partial", "keep_first": 1}
    # A name that sounds personal is not enough: its values decide, and a person is asked.
    assert fields["phoneNote"]["tier"] == "L2"
    assert "the name phone_note suggests personal data" in text
    assert "id_value holds resident ID numbers (valid check digits) in plain text" in text


def test_columns_already_in_the_stored_format_are_declared_encrypted(department_url: str, tmp_path: Path) -> None:
    _, document, text = _draft(department_url, tmp_path)
    holder = _fields(document, "Lease")["holderIdNumber"]
    assert holder["encrypted"] is True and holder["blind_index"] == "resident_id" and holder["tier"] == "L3"
    assert "holderIdNumberBidx" not in _fields(document, "Lease")
    assert "`hub keys restore`" in text


def test_foreign_keys_become_relations_both_ways(department_url: str, tmp_path: Path) -> None:
    _draft(department_url, tmp_path)
    catalog = load_catalog(tmp_path / "manifests")
    forward = catalog.entities["housing.Lease"].relations["tenant"]
    assert (forward.target, forward.field, forward.many) == ("housing.Tenant", "tenantId", False)
    back = catalog.entities["housing.Tenant"].relations["leases"]
    assert (back.target, back.field, back.target_field, back.many) == ("housing.Lease", "tenantId", "tenantId", True)


def test_named_tables_only_and_an_unknown_table_is_one_line(department_url: str, tmp_path: Path) -> None:
    _, document, _ = _draft(department_url, tmp_path, "--tables", "hs_tenant")
    assert [item["name"] for item in document["entities"]] == ["HsTenant"]
    result = CliRunner().invoke(
        main,
        ["manifest", "draft", "--url-env", "HOUSING_URL", "--department", "housing", "--tables", "hs_tenants"],
        env={"HOUSING_URL": department_url},
    )
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: table hs_tenants is not in the database (it holds: hs_leases, hs_log, hs_tenant)"
    ]


def test_unset_url_variable_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["manifest", "draft", "--url-env", "HOUSING_URL", "--department", "housing"], env={"HOUSING_URL": None}
    )
    assert result.exit_code == 1
    assert result.stderr == "error: department housing: environment variable HOUSING_URL is not set\n"
