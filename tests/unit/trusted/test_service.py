"""Trusted documents: registered by their SHA-256, run by id from a plan compiled once (no
parsing or validation per request), managed with `hub documents`; and the compiled-document
cache that free-text requests go through."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest
import strawberry.schema.schema as strawberry_schema
from click.testing import CliRunner
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

import schema.compiled as documents_module
from hub.access.plan import ReleaseEverything
from hub.app import create_app
from hub.catalog import Catalog
from hub.cli import main
from hub.config import load_settings
from hub.db.engine import hub_engine, sessions
from hub.services import build_services
from hub.trusted import find_document, list_documents, register_document, remove_document
from schema import build_schema
from schema.compiled import TrustedDocuments
from tests.conftest import FIXTURES, TEST_MASTER_KEY, Hub, memory_connectors, register

PEOPLE = "query People($first: Int) { registryPersons(first: $first, orderBy: [NAME_ASC]) { nodes { idNumber name } } }"


def in_hub_db(url: URL, work: Any) -> Any:
    async def run() -> Any:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def registered(url: URL, text: str, name: str = "people") -> str:
    return in_hub_db(url, lambda s: register_document(s, text, name=name))  # type: ignore[no-any-return]


def post(hub: Hub, body: dict[str, Any], token: str | None = None) -> Any:
    return hub.client.post("/graphql", json=body, headers={"Authorization": f"Bearer {token or hub.token}"})


class Calls:
    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> dict[str, Calls]:
    """Counts every parse and validation, the hub's own and strawberry's."""
    found = {name: Calls() for name in ("parse", "validate", "strawberry_parse", "strawberry_validate")}

    def counting(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            found[name].count += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(documents_module, "parse", counting("parse", documents_module.parse))
    monkeypatch.setattr(documents_module, "validate", counting("validate", documents_module.validate))
    monkeypatch.setattr(strawberry_schema, "parse", counting("strawberry_parse", strawberry_schema.parse))
    monkeypatch.setattr(
        strawberry_schema, "validate_document", counting("strawberry_validate", strawberry_schema.validate_document)
    )
    return found


def test_document_id_is_the_sha256_of_the_exact_text(hub: Hub) -> None:
    id_ = registered(hub.url, PEOPLE)
    assert id_ == "sha256:" + hashlib.sha256(PEOPLE.encode()).hexdigest()
    assert registered(hub.url, PEOPLE, name="again") == id_  # registering twice is harmless


def test_trusted_document_answers_exactly_as_its_text(hub: Hub) -> None:
    id_ = registered(hub.url, PEOPLE)
    by_text = post(hub, {"query": PEOPLE, "variables": {"first": 2}})
    by_id = post(hub, {"documentId": id_, "variables": {"first": 2}})
    assert by_id.status_code == by_text.status_code == 200
    assert by_id.content == by_text.content
    assert len(by_id.json()["data"]["registryPersons"]["nodes"]) == 2


def test_trusted_document_is_never_parsed_or_validated_per_request(hub: Hub, spies: dict[str, Calls]) -> None:
    id_ = registered(hub.url, PEOPLE)
    for first in (1, 2, 3, 1):
        assert post(hub, {"documentId": id_, "variables": {"first": first}}).status_code == 200
    # Compiled once, on first use; strawberry's own parse and validation never ran.
    assert (spies["parse"].count, spies["validate"].count) == (1, 1)
    assert (spies["strawberry_parse"].count, spies["strawberry_validate"].count) == (0, 0)


def test_repeated_free_text_is_parsed_and_validated_once(hub: Hub, spies: dict[str, Calls]) -> None:
    for first in (1, 2, 3):
        assert post(hub, {"query": PEOPLE, "variables": {"first": first}}).status_code == 200
    assert (spies["parse"].count, spies["validate"].count) == (1, 1)
    assert (spies["strawberry_parse"].count, spies["strawberry_validate"].count) == (0, 0)


def test_get_runs_a_trusted_query_by_id(hub: Hub) -> None:
    id_ = registered(hub.url, PEOPLE)
    response = hub.client.get(
        "/graphql",
        params={"documentId": id_, "variables": '{"first": 1}'},
        headers={"Authorization": f"Bearer {hub.token}"},
    )
    assert response.status_code == 200
    assert len(response.json()["data"]["registryPersons"]["nodes"]) == 1


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"documentId": "sha256:" + "0" * 64}, "no trusted document"),
        ({"documentId": "md5:abc"}, "no trusted document"),
        ({"documentId": 7}, "`documentId` must be a string"),
        ({"documentId": "sha256:" + "0" * 64, "query": "{ registryPersons { totalCount } }"}, "not both"),
        ({"variables": {}}, "a `query` string or a trusted `documentId`"),
    ],
)
def test_bad_document_ids_are_bad_user_input(hub: Hub, body: dict[str, Any], says: str) -> None:
    response = post(hub, body)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert says in error["message"]


def test_trusted_document_that_no_longer_validates_is_refused_with_its_errors(hub: Hub) -> None:
    # As if the schema had lost a field since the document was registered.
    id_ = registered(hub.url, "{ registryPersons { nodes { salary } } }", name="stale")
    response = post(hub, {"documentId": id_})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "salary" in error["message"]


def test_a_hub_of_trusted_documents_only_refuses_free_text(hub_db: URL, small_catalog: Catalog) -> None:
    settings = load_settings(
        {"HUB_TRUSTED_DOCUMENTS_ONLY": "true"},
        database_url=hub_db.render_as_string(),
        manifests_dir=FIXTURES / "manifests",
        master_key=TEST_MASTER_KEY,
    )
    services = build_services(
        settings, catalog=small_catalog, connectors=memory_connectors(), policy=ReleaseEverything()
    )
    token = register(hub_db)
    id_ = registered(hub_db, PEOPLE)
    with TestClient(create_app(services)) as client:
        hub = Hub(client, token, hub_db)
        refused = post(hub, {"query": PEOPLE})
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert post(hub, {"documentId": id_, "variables": {"first": 1}}).status_code == 200


def test_removed_document_stops_running_once_instances_recheck(hub_db: URL, small_catalog: Catalog) -> None:
    now = [0.0]
    compiler = build_schema(small_catalog).compiler

    async def scenario() -> list[bool]:
        engine = hub_engine(hub_db)
        make = sessions(engine)
        store = TrustedDocuments(compiler, make, recheck_s=5.0, clock=lambda: now[0])
        try:
            async with make() as session, session.begin():
                id_ = await register_document(session, PEOPLE, name="people")
            seen = [await store.get(id_) is not None]
            async with make() as session, session.begin():
                await remove_document(session, id_)
            now[0] = 4.0
            seen.append(await store.get(id_) is not None)  # within the recheck interval
            now[0] = 5.5
            seen.append(await store.get(id_) is not None)
            async with make() as session:
                seen.append(await find_document(session, id_) is not None)
                seen.append(len(await list_documents(session, removed=True)) == 1)
            return seen
        finally:
            await engine.dispose()

    assert asyncio.run(scenario()) == [True, True, False, False, True]


# --- the command line ------------------------------------------------------------------------


def cli(hub_db: URL, *args: str) -> tuple[int, str]:
    env = {"HUB_DATABASE_URL": hub_db.render_as_string(), "HUB_MANIFESTS": str(FIXTURES / "manifests")}
    result = CliRunner().invoke(main, ["documents", *args], env=env)
    return result.exit_code, result.output


def test_register_prints_the_id_and_list_and_remove_manage_it(hub_db: URL, tmp_path: Path) -> None:
    file = tmp_path / "people.graphql"
    file.write_text(PEOPLE, encoding="utf-8")
    code, output = cli(hub_db, "register", str(file))
    assert code == 0, output
    id_ = "sha256:" + hashlib.sha256(PEOPLE.encode()).hexdigest()
    assert output.split("\t")[0] == id_
    code, output = cli(hub_db, "list")
    assert id_ in output and "\tpeople\t" in output
    code, output = cli(hub_db, "remove", id_)
    assert code == 0 and f"removed {id_}" in output
    assert cli(hub_db, "list")[1].strip() == "no trusted documents"
    assert "removed" in cli(hub_db, "list", "--all")[1]


def test_register_refuses_an_invalid_document_and_registers_nothing(hub_db: URL, tmp_path: Path) -> None:
    good, bad = tmp_path / "good.graphql", tmp_path / "bad.graphql"
    good.write_text(PEOPLE, encoding="utf-8")
    bad.write_text("{\n  registryPersons { nodes { salary } }\n}", encoding="utf-8")
    code, output = cli(hub_db, "register", str(good), str(bad))
    assert code == 1
    assert f"{bad}:2:" in output and "salary" in output
    assert "nothing registered" in output
    assert cli(hub_db, "list")[1].strip() == "no trusted documents"


def test_register_dry_run_checks_without_registering(hub_db: URL, tmp_path: Path) -> None:
    file = tmp_path / "people.graphql"
    file.write_text(PEOPLE, encoding="utf-8")
    code, output = cli(hub_db, "register", "--dry-run", str(file))
    assert code == 0 and "not registered" in output
    assert cli(hub_db, "list")[1].strip() == "no trusted documents"


def test_remove_of_an_unknown_id_fails_clearly(hub_db: URL) -> None:
    code, output = cli(hub_db, "remove", "sha256:" + "1" * 64)
    assert code == 1
    assert "no trusted document" in output


def test_commands_on_an_unmigrated_hub_database_fail_in_one_line(tmp_path: Path) -> None:
    empty = URL.create("sqlite+aiosqlite", database=str(tmp_path / "empty.db"))
    code, output = cli(empty, "list")
    assert code == 1
    assert output.startswith("error: the hub database") and "hub migrate" in output
    assert "Traceback" not in output and "SELECT" not in output
