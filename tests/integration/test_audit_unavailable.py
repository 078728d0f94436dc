"""With the event store unavailable (its PostgreSQL table refusing writes while the hub runs),
no L3 data leaves, nor by default L2; the answer says why. Once the store takes writes again,
the same request is served and recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from hub.catalog import Catalog
from hub.db.engine import hub_engine
from hub.migrate import upgrade
from tests.conftest import Hub, serve_small_hub
from tests.servers import fresh_database

L3 = "{ registryPersons { nodes { idNumber name } } }"
L2 = "{ registryPersons { nodes { district children } } }"
REFUSE = (
    "CREATE FUNCTION refuse_writes() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'store unavailable'; END $$ "
    "LANGUAGE plpgsql",
    "CREATE TRIGGER unavailable BEFORE INSERT ON hub_audit_event FOR EACH ROW EXECUTE FUNCTION refuse_writes()",
)
RESTORE = ("DROP TRIGGER unavailable ON hub_audit_event", "DROP FUNCTION refuse_writes()")


def _sql(url: URL, statements: tuple[str, ...]) -> None:
    async def run() -> None:
        engine = hub_engine(url)
        try:
            async with engine.begin() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture
def pg_hub(small_catalog: Catalog) -> Iterator[Hub]:
    url = fresh_database("postgresql", "hub_it_audit_unavailable")
    upgrade(url)
    yield from serve_small_hub(url, small_catalog, {"HUB_ACCESS_LOG": "off"})


def _status(hub: Hub, query: str) -> tuple[int, dict[str, Any]]:
    response = hub.client.post("/graphql", json={"query": query}, headers={"Authorization": f"Bearer {hub.token}"})
    return response.status_code, response.json()


def test_no_l3_or_l2_data_leaves_while_the_event_store_refuses_writes(pg_hub: Hub) -> None:
    assert _status(pg_hub, L3)[0] == 200
    _sql(pg_hub.url, REFUSE)
    for query in (L3, L2):
        status, body = _status(pg_hub, query)
        assert status == 503
        assert body["data"] is None
        assert body["errors"][0]["extensions"] == {"code": "INTERNAL", "reason": "AUDIT_UNAVAILABLE"}
        assert "access trail" in body["errors"][0]["message"]
    # A request that releases nothing is still answered (with its own refusal).
    assert _status(pg_hub, "{ registryPersons { nodes { nope } } }")[0] == 400
    _sql(pg_hub.url, RESTORE)
    status, body = _status(pg_hub, L3)
    assert status == 200 and body["data"]["registryPersons"]["nodes"]
