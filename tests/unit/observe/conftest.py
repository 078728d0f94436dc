"""Observed hubs for the tests of hub/observe: the small catalog's in-memory data behind a
policy that masks and withholds a field, a welfare database that can be taken down, callers
with the roles the tests need, and (optionally) an in-memory span exporter."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from connectors.base import Filter, Page, Query, TableSpec, UnavailableError
from connectors.memory import MemoryConnector
from hub.access.plan import PLAIN, Decision, Verdict
from hub.app import create_app
from hub.auth.principal import Principal
from hub.auth.registry import register_app
from hub.catalog import Catalog, EntityInfo, FieldInfo, RelationInfo
from hub.config import load_settings
from hub.db.engine import hub_engine, sessions
from hub.services import Services, build_services
from tests.conftest import CASES, FIXTURES, PEOPLE, TEST_MASTER_KEY

# Apps and their roles: `app` reads, `prober` looks persons up by a masked ID number (and has
# no lookup quota), `watcher` and `admin` may read /metrics.
CALLERS = {
    "app": ("welfare", ("department_app",)),
    "prober": ("welfare", ("auditor",)),
    "watcher": ("platform", ("monitoring",)),
    "admin": ("platform", ("admin",)),
}


class Switchable:
    """A department's connector that can be taken down between requests."""

    def __init__(self, inner: MemoryConnector) -> None:
        self.inner = inner
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise UnavailableError("the department database is unavailable")

    async def fetch(self, query: Query) -> Page:
        self._check()
        return await self.inner.fetch(query)

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        self._check()
        return await self.inner.count(table, where)

    async def fetch_by(self, *args: Any, **options: Any) -> Page:
        self._check()
        return await self.inner.fetch_by(*args, **options)

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class Policy:
    """Everything plain but a person's name (masked) and income (withheld); to `prober`, the
    ID number is masked but may be looked up by."""

    version: str = "1"
    fields: dict[str, Verdict] = field(
        default_factory=lambda: {
            "name": Verdict(Decision.MASKED, "no grant"),
            "income": Verdict(Decision.DENIED, "not for tests"),
        }
    )

    def field(self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo) -> Verdict:
        if principal.subject == "prober" and item.name == "idNumber":
            return Verdict(Decision.MASKED, "no grant", lookup=True)
        return self.fields.get(item.name, PLAIN)

    def relation(self, principal: Principal, purpose: str | None, relation: RelationInfo) -> Verdict:
        return PLAIN

    def row_rule(self, principal: Principal, purpose: str | None, entity: EntityInfo) -> Filter | None:
        return None

    def attributes_used(self, principal: Principal) -> tuple[tuple[str, str], ...]:
        return ()

    def next_change(self, after: datetime) -> datetime | None:
        return None


@dataclass
class ObservedHub:
    client: TestClient
    tokens: dict[str, str]
    services: Services
    welfare: Switchable
    spans: InMemorySpanExporter | None

    def post(self, who: str | None, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        sent = dict(headers or {})
        if who is not None:
            sent["Authorization"] = f"Bearer {self.tokens[who]}"
        return self.client.post("/graphql", json=body, headers=sent)

    def query(self, who: str | None, text: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.post(who, {"query": text}, headers)

    def metrics(self, who: str | None = "watcher") -> httpx.Response:
        headers = {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.get("/metrics", headers=headers)


def _register(url: URL, callers: Sequence[str]) -> dict[str, str]:
    async def run() -> dict[str, str]:
        engine = hub_engine(url)
        try:
            tokens = {}
            async with sessions(engine)() as session, session.begin():
                for name in callers:
                    department, roles = CALLERS[name]
                    tokens[name] = (await register_app(session, name, department, roles, {}, 30)).token
            return tokens
        finally:
            await engine.dispose()

    return asyncio.run(run())


def serve_observed_hub(
    hub_db: URL,
    catalog: Catalog,
    environ: dict[str, str] | None = None,
    traced: bool = False,
    **settings: Any,
) -> Iterator[ObservedHub]:
    loaded = load_settings(
        environ or {},
        database_url=hub_db.render_as_string(),
        manifests_dir=FIXTURES / "manifests",
        master_key=TEST_MASTER_KEY,
        token_cache_seconds=0,
        **settings,
    )
    welfare = Switchable(MemoryConnector({"welfare_case": CASES}))
    connectors = {"registry": MemoryConnector({"person": PEOPLE}), "welfare": welfare}
    spans = InMemorySpanExporter() if traced else None
    services = build_services(loaded, catalog=catalog, connectors=connectors, policy=Policy(), span_exporter=spans)
    tokens = _register(hub_db, list(CALLERS))
    with TestClient(create_app(services)) as client:
        yield ObservedHub(client, tokens, services, welfare, spans)


@pytest.fixture
def observed(hub_db: URL, small_catalog: Catalog) -> Iterator[ObservedHub]:
    """Tracing off, as by default; `app` may send 6 requests a minute, `prober` has no lookups."""
    yield from serve_observed_hub(
        hub_db,
        small_catalog,
        # Access log lines written at once, not in batches (tests of batches set their own delay).
        {"HUB_BREAKER_FAILURES": "1", "HUB_ACCESS_LOG_DELAY_MS": "0"},
        rate_limits={"department_app": "6/minute"},
        lookup_quotas={"auditor": 0},
    )


@pytest.fixture
def traced(hub_db: URL, small_catalog: Catalog) -> Iterator[ObservedHub]:
    yield from serve_observed_hub(hub_db, small_catalog, traced=True)
