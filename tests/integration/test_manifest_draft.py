"""`hub manifest draft` over department databases the test makes on SQLite, PostgreSQL and
MariaDB: the draft loads as a manifest, its guesses about personal data are right (checked by
content, not by column names), foreign keys become relations, and a table without a key is
reported, not silently drafted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from hub.catalog.loader import load_catalog
from hub.cli.main import main
from tests.housing_department import housing_database


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def department_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return housing_database(request.param, tmp_path)


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
    # Of the index domain as it is, plain: it joins the registry and is looked up under the quota.
    assert fields["idValue"]["blind_index"] == "resident_id" and "encrypted" not in fields["idValue"]
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
