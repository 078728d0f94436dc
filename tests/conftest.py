"""Fixtures shared by every test folder: a migrated hub database, a small two-department
catalog with in-memory data, and an HTTP client of the hub over them."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from connectors.memory import MemoryConnector
from hub.access.plan import ReleaseEverything
from hub.app import create_app
from hub.auth.registry import register_app
from hub.catalog import Catalog, load_catalog
from hub.config import load_settings
from hub.db.engine import hub_engine, sessions
from hub.migrate import upgrade
from hub.services import build_services

FIXTURES = Path(__file__).parent / "fixtures"
# The master key of test hubs: fixed, so a test can open what another fixture encrypted.
TEST_MASTER_KEY = hashlib.sha256(b"hub tests: not a real master key").digest()
SHANGHAI = ZoneInfo("Asia/Shanghai")

PEOPLE: list[dict[str, Any]] = [
    {
        "id_number": "110105199001011234",
        "name": "王小明",
        "birth_date": datetime(1990, 1, 1).date(),
        "district": "Chaoyang",
        "income": Decimal("12345.67"),
        "registered_at": datetime(2020, 5, 1, 9, 30),
        "children": 2,
        "active": True,
    },
    {
        "id_number": "11010519850202567X",
        "name": "李华",
        "birth_date": datetime(1985, 2, 2).date(),
        "district": "Haidian",
        "income": Decimal("8800.00"),
        "registered_at": datetime(2021, 6, 1, 10, 0),
        "children": 0,
        "active": True,
    },
    {
        "id_number": "330102200512120021",
        "name": "张伟",
        "birth_date": datetime(2005, 12, 12).date(),
        "district": "Chaoyang",
        "income": None,
        "registered_at": datetime(2022, 7, 1, 8, 15),
        "children": None,
        "active": False,
    },
]
CASES: list[dict[str, Any]] = [
    {
        "case_id": "C1",
        "recipient_id_number": "110105199001011234",
        "amount": Decimal("500.00"),
        "status": "open",
    },
    {
        "case_id": "C2",
        "recipient_id_number": "110105199001011234",
        "amount": Decimal("250.50"),
        "status": "closed",
    },
    {
        "case_id": "C3",
        "recipient_id_number": "330102200512120021",
        "amount": Decimal("90.00"),
        "status": "open",
    },
]


@pytest.fixture
def hub_db(tmp_path: Path) -> URL:
    url = URL.create("sqlite+aiosqlite", database=str(tmp_path / "hub.db"))
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def small_catalog() -> Catalog:
    return load_catalog(FIXTURES / "manifests")


def memory_connectors() -> dict[str, MemoryConnector]:
    return {
        "registry": MemoryConnector({"person": PEOPLE}),
        "welfare": MemoryConnector({"welfare_case": CASES}),
    }


def register(url: URL, name: str = "test-app", department: str = "welfare", days: int = 30) -> str:
    async def run() -> str:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session, session.begin():
                return (await register_app(session, name, department, ("department_app",), {}, days)).token
        finally:
            await engine.dispose()

    return asyncio.run(run())


def refusals_in_trail(url: URL) -> list[tuple[str, int, str | None, str | None]]:
    """Each request event of the trail in `url`'s hub database, in log order: its principal,
    status, code and the limit that refused it (`released.limit`)."""

    async def run() -> list[tuple[str, int, str | None, str | None]]:
        engine = hub_engine(url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    sa.text(
                        "SELECT principal, status, code, released FROM hub_audit_event "
                        "WHERE kind = 'request' ORDER BY position"
                    )
                )
                return [(p, s, c, orjson.loads(r).get("limit")) for p, s, c, r in rows]
        finally:
            await engine.dispose()

    return asyncio.run(run())


@dataclass
class Hub:
    client: TestClient
    token: str
    url: URL
    # Tokens of other callers by name (the demo's callers), and the purpose sent by default.
    tokens: dict[str, str] = field(default_factory=dict)
    purpose: str | None = None

    def query(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        purpose: str | None = None,
    ) -> Any:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        if purpose or self.purpose:
            headers["X-Hub-Purpose"] = purpose or self.purpose or ""
        response = self.client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
        return response.json()

    def as_caller(self, name: str, purpose: str | None = None) -> Hub:
        """The same hub, queried as another demo caller with a purpose."""
        return Hub(self.client, self.tokens[name], self.url, self.tokens, purpose)


def serve_small_hub(hub_db: URL, catalog: Catalog, environ: dict[str, str] | None = None) -> Iterator[Hub]:
    """A hub over the small catalog's in-memory data, with settings read from `environ` (a
    production-mode hub without one)."""
    # Tokens are read on every request here (revocation tests see it at once); the token
    # cache has its own tests (tests/unit/auth/test_cache.py).
    settings = load_settings(
        environ or {},
        database_url=hub_db.render_as_string(),
        manifests_dir=FIXTURES / "manifests",
        master_key=TEST_MASTER_KEY,
        token_cache_seconds=0,
    )
    # The spine's tests run with everything released; policies have their own tests.
    services = build_services(settings, catalog=catalog, connectors=memory_connectors(), policy=ReleaseEverything())
    token = register(hub_db)
    with TestClient(create_app(services)) as client:
        yield Hub(client, token, hub_db)


@pytest.fixture
def hub(hub_db: URL, small_catalog: Catalog) -> Iterator[Hub]:
    yield from serve_small_hub(hub_db, small_catalog)
