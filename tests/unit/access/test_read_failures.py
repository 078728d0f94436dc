"""When a department database fails, the caller gets a clear code, the other departments'
data still arrives, and nothing internal (SQL, paths, tracebacks) leaks."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from connectors.base import Filter, Page, Query, TableSpec, UnavailableError
from connectors.sql import SqlConnector
from hub.access.plan import ReleaseEverything
from hub.app import create_app
from hub.catalog import Catalog
from hub.config import load_settings
from hub.services import build_services
from tests.conftest import CASES, FIXTURES, TEST_MASTER_KEY, Hub, memory_connectors, register


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


@pytest.fixture
def welfare_file(tmp_path: Path) -> Path:
    path = tmp_path / "welfare.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "CREATE TABLE welfare_case (case_id TEXT PRIMARY KEY, recipient_id_number TEXT, amount NUMERIC, status TEXT)"
        )
        db.executemany(
            "INSERT INTO welfare_case VALUES (?, ?, ?, ?)",
            [(c["case_id"], c["recipient_id_number"], float(c["amount"]), c["status"]) for c in CASES],
        )
        db.commit()
    return path


def test_a_locked_sqlite_department_is_unavailable_quickly_and_the_log_says_why(
    hub_db: URL, small_catalog: Catalog, welfare_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    welfare = SqlConnector(f"sqlite+aiosqlite:///{welfare_file}", statement_timeout_ms=300)
    hub = serve(hub_db, small_catalog, welfare)
    served = next(hub)
    try:
        assert served.query("{ welfareCases { nodes { caseId } } }")["data"]["welfareCases"]["nodes"]
        # Another writer holds the file: in SQLite's default journal mode nobody may read it.
        with contextlib.closing(sqlite3.connect(welfare_file, isolation_level=None)) as writer:
            writer.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            with caplog.at_level(logging.WARNING, logger="hub.access"):
                result = served.query("{ welfareCases { nodes { caseId } } registryPersons { totalCount } }")
            elapsed = time.monotonic() - started
            writer.execute("ROLLBACK")
        assert result["data"] == {"welfareCases": None, "registryPersons": {"totalCount": 3}}
        (error,) = result["errors"]
        assert error["extensions"] == {"code": "DEPARTMENT_UNAVAILABLE", "department": "welfare"}
        assert error["path"] == ["welfareCases"]
        assert elapsed < 1.5  # the lock is waited for as long as a statement may run (300 ms)
        for leak in ("locked", "SQLITE", "welfare.db", str(welfare_file.parent)):
            assert leak not in str(result)
        (line,) = [r.getMessage() for r in caplog.records if r.name == "hub.access"]
        assert line.startswith("department welfare unavailable reading welfare.Case:")
        assert "SQLITE_BUSY" in line and "database is locked" in line
        # Once the writer is done, the department answers again.
        assert served.query("{ welfareCases { nodes { caseId } } }")["data"]["welfareCases"]["nodes"]
    finally:
        hub.close()
