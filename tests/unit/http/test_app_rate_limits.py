"""Requests past a caller's or a department's rate: 429 with `Retry-After` and the lookup
quota's LIMIT_EXCEEDED body, decided before the request body is read, each an event of the
access trail that names the rate."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from hub.access.plan import ReleaseEverything
from hub.app import create_app
from hub.catalog import Catalog
from hub.config import load_settings
from hub.services import build_services
from tests.conftest import FIXTURES, TEST_MASTER_KEY, memory_connectors, refusals_in_trail, register

COUNT = "{ registryPersons { totalCount } }"


@dataclass
class Limited:
    client: TestClient
    tokens: dict[str, str]

    def post(self, who: str, body: object = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.post("/graphql", json=body or {"query": COUNT}, headers=headers)


@pytest.fixture
def limited(hub_db: URL, small_catalog: Catalog) -> Iterator[Limited]:
    """Apps may send 3 requests a minute, the welfare department's apps 5 together."""
    settings = load_settings(
        {},
        database_url=hub_db.render_as_string(),
        manifests_dir=FIXTURES / "manifests",
        master_key=TEST_MASTER_KEY,
        rate_limits={"department_app": "3/minute"},
        department_rate_limit="5/minute",
    )
    services = build_services(
        settings, catalog=small_catalog, connectors=memory_connectors(), policy=ReleaseEverything()
    )
    tokens = {
        "a": register(hub_db, "app-a", "welfare"),
        "b": register(hub_db, "app-b", "welfare"),
        "c": register(hub_db, "app-c", "registry"),
    }
    with TestClient(create_app(services)) as client:
        yield Limited(client, tokens)


def test_the_request_past_a_caller_s_rate_gets_429_with_when_to_retry(limited: Limited) -> None:
    statuses = [limited.post("a").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = limited.post("a")
    assert refused.status_code == 429
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 60
    body = refused.json()
    assert body["data"] is None
    (error,) = body["errors"]
    extensions = error["extensions"]
    assert extensions["code"] == "LIMIT_EXCEEDED"
    assert (extensions["limit"], extensions["used"], extensions["requested"]) == (3, 3, 1)
    assert (extensions["scope"], extensions["period"]) == ("caller", 60)
    assert set(extensions["window"]) == {"start", "end"}
    assert "3 requests per 60 s" in error["message"]


def test_a_request_refused_for_a_rate_is_an_event_of_the_trail_naming_that_rate(limited: Limited, hub_db: URL) -> None:
    assert [limited.post("a").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert [limited.post("b").status_code for _ in range(3)] == [200, 200, 429]
    events = [(status, code, limit) for _, status, code, limit in refusals_in_trail(hub_db)]
    caller, department = (429, "LIMIT_EXCEEDED", "rate_caller"), (429, "LIMIT_EXCEEDED", "rate_department")
    assert events == [(200, None, None)] * 3 + [caller] + [(200, None, None)] * 2 + [department]


def test_a_department_s_apps_share_its_rate(limited: Limited) -> None:
    assert [limited.post("a").status_code for _ in range(3)] == [200] * 3
    assert [limited.post("b").status_code for _ in range(3)] == [200, 200, 429]
    assert limited.post("b").json()["errors"][0]["extensions"]["scope"] == "department"
    # Another department's app is not held back by welfare's traffic.
    assert limited.post("c").status_code == 200


def test_a_caller_over_its_rate_is_refused_before_its_body_is_read(limited: Limited) -> None:
    for _ in range(3):
        limited.post("a")
    # A body that would be a 400 if it were read: the rate is checked first, and cheaply.
    headers = {"Authorization": f"Bearer {limited.tokens['a']}", "Content-Type": "application/json"}
    refused = limited.client.post("/graphql", content=b"{not json", headers=headers)
    assert refused.status_code == 429


def test_requests_without_a_valid_token_are_not_counted_against_anyone(limited: Limited) -> None:
    for _ in range(10):
        assert (
            limited.client.post("/graphql", json={"query": COUNT}, headers={"Authorization": "Bearer nope"}).status_code
            == 401
        )
    assert limited.post("a").status_code == 200
