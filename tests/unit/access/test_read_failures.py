"""When a department database fails, the caller gets a clear code, the other departments'
data still arrives, and nothing internal (SQL, paths, tracebacks) leaks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from connectors.base import Filter, Page, Query, TableSpec, UnavailableError
from hub.access.plan import ReleaseEverything
from hub.app import create_app
from hub.catalog import Catalog
from hub.config import load_settings
from hub.services import build_services
from tests.conftest import FIXTURES, TEST_MASTER_KEY, Hub, memory_connectors, register


class Broken:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def fetch(self, query: Query) -> Page:
        raise self.error

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        raise self.error

    async def fetch_by(self, *args: Any, **options: Any) -> Page:
        raise self.error

    async def close(self) -> None:
        pass


def serve(hub_db: URL, catalog: Catalog, welfare: Any) -> Iterator[Hub]:
    connectors: dict[str, Any] = {**memory_connectors(), "welfare": welfare}
    settings = load_settings(
        {}, database_url=hub_db.render_as_string(), manifests_dir=FIXTURES / "manifests", master_key=TEST_MASTER_KEY
    )
    services = build_services(settings, catalog=catalog, connectors=connectors, policy=ReleaseEverything())
    with TestClient(create_app(services)) as client:
        yield Hub(client, register(hub_db), hub_db)


@pytest.fixture
def welfare_down(hub_db: URL, small_catalog: Catalog) -> Iterator[Hub]:
    yield from serve(hub_db, small_catalog, Broken(UnavailableError("the department database is unavailable")))


@pytest.fixture
def welfare_buggy(hub_db: URL, small_catalog: Catalog) -> Iterator[Hub]:
    yield from serve(hub_db, small_catalog, Broken(RuntimeError("SELECT secret FROM /var/lib/db.sqlite")))


def test_unavailable_department_is_reported_and_others_still_answer(welfare_down: Hub) -> None:
    result = welfare_down.query("{ welfareCases { nodes { caseId } } registryPersons { totalCount } }")
    assert result["data"] == {"welfareCases": None, "registryPersons": {"totalCount": 3}}
    (error,) = result["errors"]
    assert error["extensions"] == {"code": "DEPARTMENT_UNAVAILABLE", "department": "welfare"}
    assert error["path"] == ["welfareCases"]


def test_unavailable_relation_nulls_only_that_field(welfare_down: Hub) -> None:
    result = welfare_down.query('{ registryPerson(key: "110105199001011234") { name cases { caseId } } }')
    assert result["data"] == {"registryPerson": {"name": "王小明", "cases": None}}
    assert result["errors"][0]["extensions"]["code"] == "DEPARTMENT_UNAVAILABLE"
    assert result["errors"][0]["path"] == ["registryPerson", "cases"]


def test_unexpected_error_is_internal_without_details(welfare_buggy: Hub) -> None:
    response = welfare_buggy.client.post(
        "/graphql",
        json={"query": "{ welfareCases { nodes { caseId } } }"},
        headers={"Authorization": f"Bearer {welfare_buggy.token}"},
    )
    body = response.text
    assert response.status_code == 200
    assert '"code":"INTERNAL"' in body
    for leak in ("SELECT", "/var/lib", "Traceback", "RuntimeError"):
        assert leak not in body
