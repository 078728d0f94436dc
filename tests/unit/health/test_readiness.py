"""/readyz: 200 with each department's state while the hub database answers (a department's
outage leaves the hub ready to serve the others), 503 when the hub database does not; the body
holds states, never a URL, a path or an error. /healthz stays a liveness check."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from connectors.base import Filter, Page, Query, TableSpec, UnavailableError
from connectors.memory import MemoryConnector
from hub.access.plan import ReleaseEverything
from hub.app import create_app
from hub.catalog import Catalog
from hub.config import load_settings
from hub.db.engine import hub_engine, sessions
from hub.instances.catalog_hash import catalog_hash, publish
from hub.services import Services, build_services
from tests.conftest import FIXTURES, TEST_MASTER_KEY, memory_connectors, register


class Switchable:
    def __init__(self, inner: MemoryConnector) -> None:
        self.inner = inner
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise UnavailableError("the department database is unavailable", "ConnectionRefusedError: unreachable")

    async def fetch(self, query: Query) -> Page:
        self._check()
        return await self.inner.fetch(query)

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        self._check()
        return await self.inner.count(table, where)

    async def fetch_by(self, *args: Any) -> Any:
        self._check()
        return await self.inner.fetch_by(*args)

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class Served:
    client: TestClient
    services: Services
    welfare: Switchable
    token: str

    def query(self, query: str) -> Any:
        response = self.client.post(
            "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {self.token}"}
        )
        assert response.status_code == 200
        return response.json()


@pytest.fixture
def served(hub_db: URL, small_catalog: Catalog) -> Iterator[Served]:
    connectors: dict[str, Any] = memory_connectors()
    welfare = connectors["welfare"] = Switchable(connectors["welfare"])
    settings = load_settings(
        {},
        database_url=hub_db.render_as_string(),
        manifests_dir=FIXTURES / "manifests",
        master_key=TEST_MASTER_KEY,
        breaker_failures=2,
        breaker_cooldown_seconds=60,
    )
    services = build_services(settings, catalog=small_catalog, connectors=connectors, policy=ReleaseEverything())
    token = register(hub_db)
    with TestClient(create_app(services)) as client:
        yield Served(client, services, welfare, token)


def test_readyz_reports_the_hub_database_and_every_department_up(served: Served) -> None:
    response = served.client.get("/readyz")
    assert response.status_code == 200
    own = catalog_hash(FIXTURES / "manifests")
    assert response.json() == {
        "status": "ready",
        "hub_database": "up",
        "departments": {
            "registry": {"state": "up", "circuit": "closed"},
            "welfare": {"state": "up", "circuit": "closed"},
        },
        # The first instance on a hub database records its catalog's hash.
        "catalog": {"hash": own, "published": own, "state": "matches"},
    }


def test_an_instance_whose_manifests_differ_from_the_published_catalog_is_not_ready(served: Served) -> None:
    async def publish_other() -> None:
        engine = hub_engine(served.services.settings.database_url)
        try:
            async with sessions(engine)() as session, session.begin():
                await publish(session, "sha256:" + "0" * 64)
        finally:
            await engine.dispose()

    asyncio.run(publish_other())
    response = served.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["catalog"]["state"] == "differs"
    assert body["catalog"]["published"] == "sha256:" + "0" * 64
    # Requests are still served (the balancer decides); only readiness says no.
    assert served.query("{ welfareCases { nodes { caseId } } }")["data"]["welfareCases"]["nodes"]


def test_a_failing_department_shows_degraded_then_open_while_the_hub_stays_ready(served: Served) -> None:
    served.welfare.down = True
    served.query("{ welfareCases { nodes { caseId } } }")
    degraded = served.client.get("/readyz")
    assert degraded.status_code == 200
    assert degraded.json()["departments"]["welfare"] == {"state": "degraded", "circuit": "closed"}
    served.query("{ welfareCases { nodes { caseId } } }")
    opened = served.client.get("/readyz")
    assert opened.status_code == 200
    assert opened.json()["departments"] == {
        "registry": {"state": "up", "circuit": "closed"},
        "welfare": {"state": "open", "circuit": "open"},
    }
    # The open circuit answers without asking the department, and the others are served.
    served.welfare.down = False
    result = served.query("{ welfareCases { nodes { caseId } } registryPersons { totalCount } }")
    assert result["data"] == {"welfareCases": None, "registryPersons": {"totalCount": 3}}
    assert [error["extensions"]["code"] for error in result["errors"]] == ["DEPARTMENT_UNAVAILABLE"]


def test_readyz_is_503_when_the_hub_database_does_not_answer_and_healthz_stays_200(served: Served) -> None:
    working = served.services.engine
    # Nothing listens on port 1: the hub database is gone.
    served.services.engine = create_async_engine("postgresql+asyncpg://hub:s3cr3t@127.0.0.1:1/hub")
    try:
        response = served.client.get("/readyz")
        liveness = served.client.get("/healthz")
    finally:
        served.services.engine = working
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["hub_database"]) == ("unavailable", "down")
    assert set(body["departments"]) == {"registry", "welfare"}
    for secret in ("s3cr3t", "127.0.0.1", "postgresql", "hub.db", str(served.services.settings.database_url)):
        assert secret not in response.text
    assert liveness.status_code == 200
