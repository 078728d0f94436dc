"""Demand control over HTTP, where it depends on the caller: limits per role, checked before the
lookup quota looks at the request and before any department is read; tools load the schema
with the standard introspection query; a limit naming a role the policy lacks stops the start."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from graphql import get_introspection_query
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from connectors.memory import MemoryConnector
from hub.access.plan import ReleaseEverything
from hub.app import create_app
from hub.auth.registry import register_app
from hub.catalog import Catalog
from hub.config import load_settings
from hub.db.engine import hub_engine, sessions
from hub.services import StartupRefused, build_services
from schema.lookups import Lookups
from tests.conftest import FIXTURES, TEST_MASTER_KEY, memory_connectors

# registryPersons 1, nodes 1 + rows x (name 1, cases 1 + 100 x caseId 1): 2 + 102 per row.
PEOPLE = "query($n: Int) { registryPersons(first: $n) { nodes { name cases { caseId } } } }"


def _token(url: URL, name: str, roles: tuple[str, ...]) -> str:
    async def run() -> str:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session, session.begin():
                return (await register_app(session, name, "welfare", roles, {}, 30)).token
        finally:
            await engine.dispose()

    return asyncio.run(run())


class Caller:
    def __init__(self, client: TestClient, token: str) -> None:
        self.client, self.token = client, token

    def post(self, query: str, variables: dict[str, Any] | None = None) -> tuple[int, Any]:
        response = self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        return response.status_code, response.json()


@contextmanager
def serving(hub_db: URL, catalog: Catalog, environ: dict[str, str]) -> Iterator[dict[str, Caller]]:
    settings = load_settings(
        environ,
        database_url=hub_db.render_as_string(),
        manifests_dir=FIXTURES / "manifests",
        master_key=TEST_MASTER_KEY,
        token_cache_seconds=0,
    )
    services = build_services(settings, catalog=catalog, connectors=memory_connectors(), policy=ReleaseEverything())
    tokens = {role: _token(hub_db, f"{role}-app", (role,)) for role in ("department_app", "auditor")}
    with TestClient(create_app(services)) as client:
        yield {role: Caller(client, token) for role, token in tokens.items()}


def _limit(body: dict[str, Any]) -> dict[str, Any]:
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    return dict(error["extensions"])


def test_an_auditor_may_run_what_a_department_app_may_not(hub_db: URL, small_catalog: Catalog) -> None:
    with serving(hub_db, small_catalog, {"HUB_MAX_COST": "1022,auditor=20000"}) as callers:
        status, body = callers["department_app"].post(PEOPLE, {"n": 11})
        assert status == 400
        assert _limit(body) == {"code": "LIMIT_EXCEEDED", "limit": "cost", "value": 2 + 11 * 102, "max": 1022}
        assert body["data"] is None
        assert callers["department_app"].post(PEOPLE, {"n": 10})[0] == 200
        status, body = callers["auditor"].post(PEOPLE, {"n": 11})
        assert status == 200 and len(body["data"]["registryPersons"]["nodes"]) == 3


def test_a_refused_request_reaches_neither_the_lookup_quota_nor_a_department(
    hub_db: URL, small_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    touched: list[str] = []
    sites, fetch = Lookups.sites, MemoryConnector.fetch

    def quota_looked(*args: Any) -> Any:
        touched.append("quota")
        return sites(*args)

    async def department_read(*args: Any) -> Any:
        touched.append("department")
        return await fetch(*args)

    monkeypatch.setattr(Lookups, "sites", quota_looked)
    monkeypatch.setattr(MemoryConnector, "fetch", department_read)
    with serving(hub_db, small_catalog, {"HUB_MAX_DEPTH": "3"}) as callers:
        filtered = '{ registryPersons(filter: {idNumber: {eq: "1"}}) { nodes { cases { caseId } } } }'
        status, body = callers["department_app"].post(filtered)
        assert status == 400 and _limit(body)["limit"] == "depth"
        assert touched == []
        status, _ = callers["department_app"].post(filtered.replace("cases { caseId }", "name"))
        assert status == 200 and {"quota", "department"} <= set(touched)


def test_a_huge_first_variable_is_refused_for_its_cost_before_anything_runs(
    hub_db: URL, small_catalog: Catalog
) -> None:
    nested = "query($n: Int) { registryPersons(first: $n) { nodes { cases { recipient { cases { caseId } } } } } }"
    with serving(hub_db, small_catalog, {}) as callers:
        status, body = callers["auditor"].post(nested, {"n": 2_000_000_000})
    assert status == 400
    # Priced at the largest page, 10,000 rows.
    assert _limit(body) == {
        "code": "LIMIT_EXCEEDED",
        "limit": "cost",
        "value": 2 + 10_000 * (1 + 100 * (1 + 1 + 100 * 1)),
        "max": 10_000_000,
    }


def test_the_standard_introspection_query_loads_the_schema(hub_db: URL, small_catalog: Catalog) -> None:
    # 15 levels deep, with the depth limit at 12; introspection turned on (production mode
    # has it off).
    with serving(hub_db, small_catalog, {"HUB_INTROSPECTION": "on"}) as callers:
        status, body = callers["department_app"].post(get_introspection_query())
    assert status == 200, body
    names = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"RegistryPerson", "WelfareCase"} <= names


def _start(hub_db: URL, catalog: Catalog, environ: dict[str, str]) -> None:
    settings = load_settings(
        {"HUB_MIN_MASK_CANDIDATES": "1", **environ},
        database_url=hub_db.render_as_string(),
        manifests_dir=FIXTURES / "manifests",
        master_key=TEST_MASTER_KEY,
    )
    # The live policy (seeded from the demo's), whose roles the setting is checked against.
    services = build_services(settings, catalog=catalog, connectors=memory_connectors())
    with TestClient(create_app(services)) as client:
        assert client.get("/healthz").status_code == 200


def test_a_limit_for_a_role_the_policy_does_not_know_stops_the_start(hub_db: URL, small_catalog: Catalog) -> None:
    _start(hub_db, small_catalog, {"HUB_MAX_COST": "1000000,auditor=5000000"})
    with pytest.raises(StartupRefused, match=r"HUB_MAX_COST names the role 'auditr'.*known: admin, auditor"):
        _start(hub_db, small_catalog, {"HUB_MAX_COST": "1000000,auditr=5000000"})


def test_circular_fragments_are_refused_as_a_wrong_document(hub_db: URL, small_catalog: Catalog) -> None:
    cycle = """
        { registryPersons(filter: {idNumber: {eq: "1"}}) { ...A } }
        fragment A on RegistryPersonConnection { totalCount ...B }
        fragment B on RegistryPersonConnection { nodes { name } ...A }
    """
    with serving(hub_db, small_catalog, {}) as callers:
        status, body = callers["department_app"].post(cycle)
    assert status == 400
    assert [(e["message"], e["extensions"]["code"]) for e in body["errors"]] == [
        ("Cannot spread fragment 'A' within itself via 'B'.", "BAD_USER_INPUT")
    ]
