"""Finding 1 of the attack, over HTTP against the demo: a steward (or an admin) cannot publish
personal data to the public, backdate a grant, grant to a department that does not exist, or
flood the record of refused changes; and the public caller keeps reading what it read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.demo.workspace import Workspace
from tests.conftest import Hub
from tests.integration.policy_fixtures import ADMIN, GRANT, STEWARD, data, error, grant, history, own_hub, policy

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
    assert "'healthh' is not a known department; known: audit, civil_affairs, education" in refused["message"]


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
