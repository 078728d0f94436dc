"""Finding 1 of the attack, over HTTP against the demo: a steward (or an admin) cannot publish
personal data to the public, backdate a grant, grant to a department that does not exist, or
flood the record of refused changes; and the public caller keeps reading what it read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.db.engine import hub_engine, sessions
from hub.demo.workspace import Workspace
from hub.policy.models import PolicySnapshotRow
from hub.policy.store import latest
from hub.services import StartupRefused
from tests.conftest import Hub
from tests.integration.policy_fixtures import (
    ADMIN,
    GRANT,
    STEWARD,
    data,
    error,
    fresh_hub_database,
    grant,
    history,
    hub_services,
    own_hub,
    policy,
)

DELIVERIES = "civil_affairs.ServiceDelivery"
PUBLIC_READ = "{ civilAffairsServiceDeliveries(first: 3) { nodes { deliveryId recipientIdNumber recipientName } } }"


@pytest.fixture
def hub(demo_workspace: Workspace, tmp_path: Path) -> Iterator[Hub]:
    yield from own_hub(demo_workspace, tmp_path)


def granting(hub: Hub, caller: str, given: dict[str, Any], reason: str = "testing the rules") -> dict[str, Any]:
    result: dict[str, Any] = hub.as_caller(caller).query(GRANT, {"grant": given, "reason": reason})
    return result


def test_the_public_reads_no_recipient_data_after_every_attempt_to_grant_it(hub: Hub) -> None:
    before = hub.as_caller("public", "statistics").query(PUBLIC_READ)
    for caller in (STEWARD, ADMIN):
        for field in ("recipientIdNumber", "recipientName", None):
            for purpose in ("statistics", "citizen_service"):
                given = grant(f"pub-{purpose}-{field}".replace("_", "-")[:40], "public", DELIVERIES, purpose, field)
                refused = error(granting(hub, caller, given))
                assert refused["extensions"]["code"] in ("FORBIDDEN", "BAD_USER_INPUT")
    assert hub.as_caller("public", "statistics").query(PUBLIC_READ) == before
    assert all(g["department"] != "public" for g in policy(hub)["grants"])


def test_an_admin_grant_of_sensitive_data_for_statistics_is_refused_naming_the_rule(hub: Hub) -> None:
    refused = error(granting(hub, ADMIN, grant("stats", "health", DELIVERIES, "statistics", "recipientIdNumber")))
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert "only be granted for a purpose that needs person-level data; statistics does not" in refused["message"]


@pytest.mark.parametrize("caller", [STEWARD, ADMIN])
def test_a_grant_to_a_department_that_does_not_exist_is_refused_with_the_known_ones(hub: Hub, caller: str) -> None:
    refused = error(granting(hub, caller, grant("ghost", "healthh", DELIVERIES, "health_care", "recipientName")))
    assert (
        "'healthh' is not a known department; known: audit, citizen_portal, civil_affairs, education"
        in refused["message"]
    )


@pytest.mark.parametrize("hours_ago", [23, 1, 0.1])
def test_a_steward_grant_may_not_start_more_than_five_minutes_ago(hub: Hub, hours_ago: float) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=hours_ago)
    given = grant("back", "health", DELIVERIES, "health_care", "recipientName")
    given |= {"validFrom": start.isoformat(), "validUntil": (start + timedelta(days=10)).isoformat()}
    refused = error(granting(hub, STEWARD, given))
    assert refused["extensions"]["code"] == "FORBIDDEN"
    assert "a steward may grant from now" in refused["message"]


def test_a_steward_grant_from_now_is_applied_and_the_steward_may_revoke_it(hub: Hub) -> None:
    given = grant("fresh", "health", DELIVERIES, "health_care", "recipientName")
    assert data(granting(hub, STEWARD, given))["grantAccess"]["applied"]
    revoked = hub.as_caller(STEWARD).query('mutation { revokeGrant(id: "fresh", reason: "done") { applied } }')
    assert data(revoked)["revokeGrant"]["applied"]


def test_a_reason_longer_than_2000_characters_is_refused(hub: Hub) -> None:
    refused = error(
        granting(hub, STEWARD, grant("long", "health", DELIVERIES, "health_care", "recipientName"), "x" * 2001)
    )
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert "at most 2000 characters" in refused["message"]


def test_refused_attempts_cannot_flood_the_record(hub: Hub) -> None:
    huge = "y" * 900_000
    start = len(history(hub, 500))
    for number in range(25):
        given = grant(f"flood-{number}", "public", DELIVERIES, "statistics", "recipientIdNumber")
        error(granting(hub, "public", given, huge))
    changes = history(hub, 500)
    mine = [c for c in changes if c["actor"] == "public"]
    assert len(changes) - start == len(mine) == 10
    assert all(len(c["reason"]) <= 500 for c in mine)
    # The other 15 are counted, on the newest record kept.
    assert sum(c["repeats"] for c in mine) == 15


def test_a_hub_refuses_to_start_on_a_stored_policy_that_breaks_the_grant_rules(
    demo_workspace: Workspace, tmp_path: Path
) -> None:
    url, _ = fresh_hub_database(tmp_path)
    services = hub_services(demo_workspace, url)
    asyncio.run(services.start())  # seeds version 1
    asyncio.run(services.close())
    leaked = {
        "id": "old",
        "department": "public",
        "entity": DELIVERIES,
        "field": "recipientIdNumber",
        "purpose": "statistics",
        "valid_from": "2026-01-01T00:00:00+00:00",
        "valid_until": "2030-01-01T00:00:00+00:00",
        "granted_by": "someone",
    }

    async def store_a_bad_version() -> None:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session, session.begin():
                current = await latest(session)
                assert current is not None
                content = current.to_json()
                content["grants"] = [*content["grants"], leaked]
                session.add(
                    PolicySnapshotRow(version=current.version + 1, created_at=datetime.now(UTC), content=content)
                )
        finally:
            await engine.dispose()

    asyncio.run(store_a_bad_version())
    again = hub_services(demo_workspace, url)
    with pytest.raises(
        StartupRefused, match="will not start on policy version 2: grant old: L3 data may not be granted to public"
    ):
        asyncio.run(again.start())
    asyncio.run(again.close())
