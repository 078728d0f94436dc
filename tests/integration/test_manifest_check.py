"""`hub manifest check`: each manifest against its live database. The demo's manifests match
their databases on every backend; a typo in a table or column, a type that cannot hold the
field, a key that is not unique and a missing blind-index column are each one line naming the
file, the entity, the field and what the database has instead, with a non-zero exit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from hub.cli.main import main
from hub.demo.workspace import Workspace, retarget_manifests
from tests.housing_department import housing_database


def _check(manifests: Path, env: dict[str, str]) -> Result:
    return CliRunner().invoke(main, ["manifest", "check", "--manifests", str(manifests)], env=env)


@pytest.mark.parametrize("server", ["sqlite", "postgresql", "mariadb"])
def test_demo_manifests_match_their_databases(
    server: str, request: pytest.FixtureRequest, demo_workspace: Workspace, tmp_path: Path
) -> None:
    if server == "sqlite":
        manifests, env = demo_workspace.root, {}
    else:
        url = request.getfixturevalue(f"{'postgres' if server == 'postgresql' else server}_demo")
        manifests, env = retarget_manifests(tmp_path, {"url_env": "HUB_IT_URL"}), {"HUB_IT_URL": url}
    result = _check(manifests, env)
    assert result.exit_code == 0, result.output
    assert result.stdout.count(": matches its database") == 7


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def housing(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, Any]]:
    url = housing_database(request.param, tmp_path)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    env = {"HOUSING_URL": url}
    drafted = CliRunner().invoke(
        main,
        [
            "manifest",
            "draft",
            "--url-env",
            "HOUSING_URL",
            "--department",
            "housing",
            "--output",
            str(manifests / "housing.yaml"),
        ],
        env=env,
    )
    assert drafted.exit_code == 0, drafted.output
    return manifests, env, yaml.safe_load((manifests / "housing.yaml").read_text(encoding="utf-8"))


def _edit(housing: tuple[Path, dict[str, str], dict[str, Any]], entity: str, change: Any) -> Result:
    manifests, env, document = housing
    target = next(item for item in document["entities"] if item["name"] == entity)
    change(target, {item["name"]: item for item in target["fields"]})
    (manifests / "housing.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return _check(manifests, env)


def _errors(result: Result) -> list[str]:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.stderr.splitlines()


def test_a_fresh_draft_matches(housing: tuple[Path, dict[str, str], dict[str, Any]]) -> None:
    manifests, env, _ = housing
    result = _check(manifests, env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "department housing: matches its database (2 entities)\n"


def test_a_typo_in_a_table_is_one_line(housing: tuple[Path, dict[str, str], dict[str, Any]]) -> None:
    result = _edit(housing, "Tenant", lambda entity, fields: entity.update(table="hs_tenat"))
    assert _errors(result) == ["error: housing.yaml: entity Tenant: table hs_tenat is not in the database"]


def test_a_typo_in_a_column_names_the_columns_the_table_has(
    housing: tuple[Path, dict[str, str], dict[str, Any]],
) -> None:
    result = _edit(housing, "Tenant", lambda entity, fields: fields["fullName"].update(column="full_nmae"))
    assert _errors(result) == [
        "error: housing.yaml: entity Tenant, field fullName: column full_nmae is not in table hs_tenant "
        "(it has: contact, full_name, id_value, phone_note, tenant_id)"
    ]


def test_a_type_the_column_cannot_hold_is_one_line(housing: tuple[Path, dict[str, str], dict[str, Any]]) -> None:
    result = _edit(housing, "Lease", lambda entity, fields: fields["signedAt"].update(type="Int"))
    [line] = _errors(result)
    assert line.startswith("error: housing.yaml: entity Lease, field signedAt: column signed_at is ")
    assert line.endswith("; an Int field needs an integer column")


def test_a_key_that_is_not_unique_is_refused(housing: tuple[Path, dict[str, str], dict[str, Any]]) -> None:
    def rekey(entity: dict[str, Any], fields: dict[str, Any]) -> None:
        entity["key"] = "tenantId"
        entity.pop("relations", None)

    _, _, document = housing
    tenant = next(item for item in document["entities"] if item["name"] == "Tenant")
    tenant.pop("relations", None)
    assert _errors(_edit(housing, "Lease", rekey)) == [
        "error: housing.yaml: entity Lease, field tenantId: column tenant_id is neither the primary key "
        "nor declared unique in table hs_leases"
    ]


def test_a_missing_blind_index_column_is_refused(housing: tuple[Path, dict[str, str], dict[str, Any]]) -> None:
    result = _edit(housing, "Lease", lambda entity, fields: fields["holderIdNumber"].update(index_column="holder_bidx"))
    [line] = _errors(result)
    assert line.startswith(
        "error: housing.yaml: entity Lease, field holderIdNumber: its blind-index column holder_bidx is not in "
        "table hs_leases (it has: "
    )


def test_an_unreachable_department_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "housing.yaml").write_text(
        "department: housing\nconnection: {url_env: HOUSING_URL}\nentities:\n"
        "  - {name: Tenant, table: hs_tenant, key: tenantId, fields: [{name: tenantId, type: ID}]}\n",
        encoding="utf-8",
    )
    result = _check(tmp_path, {"HOUSING_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"})
    assert _errors(result) == ["error: department housing: its database cannot be reached (ConnectionRefusedError)"]
