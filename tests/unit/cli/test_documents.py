"""`hub documents register` computes a trusted document's cost once: it prints it beside the id
(with page-size variables at their defaults and at the largest page), and refuses a document
costing more than the most generous role may run."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy.engine import URL

from hub.cli import main
from tests.conftest import FIXTURES

# registryPersons 1, nodes 1 + rows x (name 1, cases 1 + 100 x caseId 1).
PEOPLE = "query People($n: Int) { registryPersons(first: $n) { nodes { name cases { caseId } } } }"


def cli(hub_db: URL, *args: str, **environ: str) -> tuple[int, str]:
    env = {"HUB_DATABASE_URL": hub_db.render_as_string(), "HUB_MANIFESTS": str(FIXTURES / "manifests"), **environ}
    result = CliRunner().invoke(main, ["documents", *args], env=env)
    return result.exit_code, result.output


def test_register_prints_the_cost_at_default_and_largest_pages(hub_db: URL, tmp_path: Path) -> None:
    file = tmp_path / "people.graphql"
    file.write_text(PEOPLE, encoding="utf-8")
    code, output = cli(hub_db, "register", str(file))
    assert code == 0, output
    assert output.rstrip().split("\t")[2] == f"cost {2 + 100 * 102} ($n at defaults; {2 + 10_000 * 102} at 10000)"
    code, output = cli(hub_db, "register", "--dry-run", str(file))
    assert code == 0 and f"cost {2 + 100 * 102} " in output


def test_register_refuses_a_document_costlier_than_any_role_may_run(hub_db: URL, tmp_path: Path) -> None:
    file = tmp_path / "people.graphql"
    file.write_text(PEOPLE, encoding="utf-8")
    code, output = cli(hub_db, "register", str(file), HUB_MAX_COST="10000,auditor=10201")
    assert code == 1
    assert "nothing registered" in output
    assert f"'People' costs {2 + 100 * 102}" in output and "no caller may run more than 10201" in output
    assert "HUB_MAX_COST" in output
    assert cli(hub_db, "list")[1].strip() == "no trusted documents"
    # At the most generous role's limit, it is registered.
    assert cli(hub_db, "register", str(file), HUB_MAX_COST="10000,auditor=10202")[0] == 0


def test_register_refuses_a_document_past_every_role_on_another_limit(hub_db: URL, tmp_path: Path) -> None:
    file = tmp_path / "aliased.graphql"
    file.write_text("{ " + " ".join(f"a{i}: registryPersons {{ totalCount }}" for i in range(31)) + " }")
    code, output = cli(hub_db, "register", str(file))
    assert code == 1 and "31 aliases; at most 30" in output
