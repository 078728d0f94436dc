"""`hub policy` export, import (validated, atomic) and test (truth tables)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import URL

from hub.cli import main

DEMO = Path(__file__).resolve().parents[3] / "hub" / "demo" / "manifests"
POLICIES = Path(__file__).resolve().parents[3] / "policies"


@pytest.fixture
def env(hub_db: URL) -> dict[str, str]:
    return {"HUB_DATABASE_URL": hub_db.render_as_string(), "HUB_MANIFESTS": str(DEMO)}


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["policy", *args], env=env)
    return result.exit_code, result.output


def test_export_then_import_round_trips_as_a_new_version(env: dict[str, str], tmp_path: Path) -> None:
    code, exported = run(env, "export")
    assert code == 0
    assert exported.startswith("# policy version 1\n")
    assert "- [department_app, own, L3, read, allow]" in exported
    (tmp_path / "p.yaml").write_text(exported, encoding="utf-8")
    code, output = run(env, "import", str(tmp_path / "p.yaml"), "--reason", "round trip")
    assert code == 0, output
    assert "policy version 2" in output
    code, again = run(env, "export")
    assert again == exported.replace("# policy version 1", "# policy version 2")


def test_invalid_import_names_the_entry_and_changes_nothing(env: dict[str, str], tmp_path: Path) -> None:
    code, exported = run(env, "export")
    broken = exported.replace("population.Person", "population.Citizen", 1)
    (tmp_path / "bad.yaml").write_text(broken, encoding="utf-8")
    code, output = run(env, "import", str(tmp_path / "bad.yaml"), "--reason", "typo")
    assert code == 1
    assert "population.Citizen is not an entity" in output
    assert "nothing was imported" in output
    assert run(env, "export")[1].startswith("# policy version 1\n")


def test_truth_table_of_the_demo_policy_passes(env: dict[str, str]) -> None:
    code, output = run(env, "test", str(POLICIES / "tests" / "demo.yaml"), "--policy", str(POLICIES / "default.yaml"))
    assert code == 0, output
    assert output.strip().endswith("13 passed, 0 failed")


def test_truth_table_mismatch_fails_and_names_the_case(env: dict[str, str], tmp_path: Path) -> None:
    table = tmp_path / "wrong.yaml"
    table.write_text(
        "- caller: {name: public, department: public, roles: [public]}\n"
        "  field: health.Visit.diagnosis\n"
        "  expect: PLAIN\n",
        encoding="utf-8",
    )
    code, output = run(env, "test", str(table))
    assert code == 1
    assert "case 1: public health.Visit.diagnosis purpose=None: expected PLAIN, got DENIED" in output


def test_seeding_on_another_catalog_keeps_the_tier_wide_lines(tmp_path: Path) -> None:
    from hub.catalog import load_catalog
    from hub.policy.snapshot import load_seed, prune
    from hub.policy.terms import load_terms
    from tests.conftest import FIXTURES

    catalog = load_catalog(FIXTURES / "manifests")
    pruned, dropped = prune(load_seed(), catalog, load_terms(catalog))
    assert any("hotline.Request.content" in d for d in dropped)
    assert all(r.object in ("L1", "L2", "L3", "L4", "relation") for r in pruned.rules)
    assert len(pruned.rules) >= 8
    assert pruned.row_rules == () and pruned.grants == ()


def test_role_hierarchy_deeper_than_casbin_follows_is_refused() -> None:
    from hub.catalog import load_catalog
    from hub.policy.snapshot import Inheritance, Snapshot, SnapshotError, validate
    from hub.policy.terms import load_terms

    chain = tuple(Inheritance(role=f"r{i}", inherits=f"r{i + 1}") for i in range(10))
    with pytest.raises(SnapshotError, match="more than 8 levels"):
        validate(Snapshot(hierarchy=chain), load_catalog(DEMO), load_terms(load_catalog(DEMO)))
    cycle = (Inheritance(role="a", inherits="b"), Inheritance(role="b", inherits="a"))
    with pytest.raises(SnapshotError, match="cycle"):
        validate(Snapshot(hierarchy=cycle), load_catalog(DEMO), load_terms(load_catalog(DEMO)))


def test_row_rules_of_inherited_roles_apply() -> None:
    from hub.auth.principal import Principal
    from hub.catalog import load_catalog
    from hub.policy.decisions import SnapshotPolicy
    from hub.policy.snapshot import Inheritance, RowRule, Snapshot

    catalog = load_catalog(DEMO)
    snapshot = Snapshot(
        hierarchy=(Inheritance(role="district_office", inherits="department_app"),),
        row_rules=(
            RowRule(role="department_app", entity="population.Person", filter={"districtCode": {"eq": "330102"}}),
        ),
    )
    policy = SnapshotPolicy(snapshot, catalog)
    office = Principal("o", "civil_affairs", ("district_office",))
    assert policy.row_rule(office, None, catalog.entity("population.Person")) is not None
