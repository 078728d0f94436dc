"""Policy changes sent again under the same idempotency key apply once.

A client that lost the answer to a change cannot tell whether it landed; it sends the change
again with the key it used. The hub must answer the retry as the change it already applied
(`replayed: true`, the same version) and record nothing new; refuse the key when it comes with
a different change; keep keys per caller; and hold under concurrent retries racing each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.app import create_app
from hub.demo.workspace import Workspace
from tests.conftest import Hub
from tests.integration.policy_fixtures import (
    ADMIN,
    CASES,
    STEWARD,
    data,
    error,
    fresh_hub_database,
    grant,
    history,
    hub_services,
    own_hub,
    version,
)

GRANT = """
mutation($grant: GrantInput!, $reason: String!, $key: String, $dryRun: Boolean! = false) {
  grantAccess(grant: $grant, reason: $reason, idempotencyKey: $key, dryRun: $dryRun) { applied version replayed }
}"""
REVOKE = """
mutation($id: ID!, $reason: String!, $key: String) {
  revokeGrant(id: $id, reason: $reason, idempotencyKey: $key) { applied version replayed }
}"""
ASSIGN = """
mutation($app: String!, $roles: [String!]!, $reason: String!, $key: String) {
  assignRoles(app: $app, roles: $roles, reason: $reason, idempotencyKey: $key)
}"""


@pytest.fixture
def hub(demo_workspace: Workspace, tmp_path: Path) -> Iterator[Hub]:
    yield from own_hub(demo_workspace, tmp_path)


# Grants by id, made once: a retry sends the very same change (its start time included).
GRANTS: dict[tuple[str, str], dict[str, Any]] = {}


def granting(hub: Hub, caller: str, grant_id: str, key: str | None, field: str = "recipientName") -> Any:
    made = GRANTS.setdefault((grant_id, field), grant(grant_id, "health", CASES, "health_care", field))
    return hub.as_caller(caller).query(GRANT, {"grant": made, "reason": "care", "key": key})


def applied(hub: Hub) -> list[dict[str, Any]]:
    return [change for change in history(hub) if change["outcome"] == "applied"]


def test_a_grant_sent_twice_with_one_key_applies_once(hub: Hub) -> None:
    before, changes = version(hub), len(applied(hub))
    first = data(granting(hub, ADMIN, "once", "retry-1"))["grantAccess"]
    again = data(granting(hub, ADMIN, "once", "retry-1"))["grantAccess"]
    assert first == {"applied": True, "version": before + 1, "replayed": False}
    assert again == {"applied": True, "version": before + 1, "replayed": True}
    assert version(hub) == before + 1
    assert len(applied(hub)) == changes + 1


def test_without_a_key_the_same_grant_sent_twice_is_refused_the_second_time(hub: Hub) -> None:
    # What the key is for: without it, the retry is a new change, refused as a duplicate.
    data(granting(hub, ADMIN, "dup", None))
    refused = error(granting(hub, ADMIN, "dup", None))
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_key_reused_for_a_different_change_is_refused_and_applies_nothing(hub: Hub) -> None:
    data(granting(hub, ADMIN, "first", "k-2"))
    before = version(hub)
    refused = error(granting(hub, ADMIN, "second", "k-2"))
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert "used for a different change" in refused["message"]
    assert version(hub) == before


def test_keys_belong_to_their_caller(hub: Hub) -> None:
    # The steward's "k" is not the admin's "k": each applies its own change.
    admin = data(granting(hub, ADMIN, "by-admin", "k"))["grantAccess"]
    steward = data(granting(hub, STEWARD, "by-steward", "k", field="recipientIdNumber"))["grantAccess"]
    assert not admin["replayed"] and not steward["replayed"]
    assert steward["version"] == admin["version"] + 1


def test_a_refused_change_does_not_use_up_its_key(hub: Hub) -> None:
    # A steward may not grant its own department; the refusal is recorded without the key, so
    # the key can carry a change that is allowed.
    own = {"grant": grant("own", "civil_affairs", CASES, "health_care", "recipientName"), "reason": "x", "key": "k-3"}
    assert error(hub.as_caller(STEWARD).query(GRANT, own))["extensions"]["code"] == "FORBIDDEN"
    assert not data(granting(hub, STEWARD, "ok", "k-3"))["grantAccess"]["replayed"]


def test_a_dry_run_does_not_use_up_its_key(hub: Hub) -> None:
    variables = {"grant": grant("dry", "health", CASES, "health_care", "recipientName"), "reason": "care"}
    dry = data(hub.query(GRANT, {**variables, "key": "k-4", "dryRun": True}))["grantAccess"]
    assert dry["applied"] is False
    real = data(hub.query(GRANT, {**variables, "key": "k-4"}))["grantAccess"]
    assert real["applied"] is True and real["replayed"] is False


@pytest.mark.parametrize("key", ["", " ", "a" * 101, "tab\there", "键", "a/b", "x" * 10_000])
def test_a_malformed_key_is_refused_before_anything_applies(hub: Hub, key: str) -> None:
    before = version(hub)
    refused = error(granting(hub, ADMIN, "bad-key", key))
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert "idempotency key" in refused["message"] and len(refused["message"]) < 200
    assert version(hub) == before


def test_a_revoke_retried_after_it_applied_answers_as_applied(hub: Hub) -> None:
    data(granting(hub, ADMIN, "to-revoke", None))
    first = data(hub.query(REVOKE, {"id": "to-revoke", "reason": "done", "key": "rv"}))["revokeGrant"]
    # The grant is gone now: without the key this retry would be refused as revoking nothing.
    again = data(hub.query(REVOKE, {"id": "to-revoke", "reason": "done", "key": "rv"}))["revokeGrant"]
    assert again == {**first, "replayed": True}


def test_a_role_assignment_retried_with_its_key_is_recorded_once(hub: Hub) -> None:
    variables = {"app": "health-app", "roles": ["department_app", "auditor"], "reason": "study", "key": "roles-1"}
    before = version(hub)
    first = data(hub.query(ASSIGN, variables))["assignRoles"]
    again = data(hub.query(ASSIGN, variables))["assignRoles"]
    assert first == again == ["auditor", "department_app"]
    assert version(hub) == before + 1
    other = error(hub.query(ASSIGN, {**variables, "roles": ["department_app"]}))
    assert other["extensions"]["code"] == "BAD_USER_INPUT"


def test_concurrent_retries_of_one_change_apply_it_once(demo_workspace: Workspace, tmp_path: Path) -> None:
    url, tokens = fresh_hub_database(tmp_path)
    # Six retries in flight at once from one admin, past an admin's four: what is under test
    # is the retries, not the concurrency limit (tests/unit/http/test_app_concurrency.py).
    services = hub_services(demo_workspace, url, concurrency_limit_enabled=False)
    variables = {"grant": grant("raced", "health", CASES, "health_care", "recipientName"), "reason": "r", "key": "race"}

    async def race() -> list[dict[str, Any]]:
        app = create_app(services)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://hub", timeout=60) as client:
                headers = {"Authorization": f"Bearer {tokens[ADMIN]}"}

                async def send() -> dict[str, Any]:
                    response = await client.post(
                        "/graphql", json={"query": GRANT, "variables": variables}, headers=headers
                    )
                    assert response.status_code == 200, response.text
                    body: dict[str, Any] = response.json()
                    return body

                return list(await asyncio.gather(*(send() for _ in range(6))))

    answers = asyncio.run(race())
    results = [data(answer)["grantAccess"] for answer in answers]
    assert len({r["version"] for r in results}) == 1, results
    assert sum(not r["replayed"] for r in results) == 1, results
