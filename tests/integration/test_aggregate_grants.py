"""An aggregate's access follows the live policy request by request: decisions are cached per
caller, purpose and policy version (hub/access/plan.py), and a cached decision never outlives
the grant it relied on, whether the grant is revoked (a new policy version) or runs out."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub.demo.workspace import Workspace
from tests.conftest import Hub
from tests.integration.policy_fixtures import GRANT, REVOKE, STEWARD, data, grant, own_hub

DELIVERIES = "civil_affairs.ServiceDelivery"
AMOUNT = "CivilAffairsServiceDelivery.amount"
# Health reads civil affairs' amounts (L3) masked unless granted: a sum over them needs them plain.
SUMS = """
{ civilAffairsServiceDeliveriesAggregate(groupBy: [DISTRICT_CODE], first: 100) {
    groups { key { districtCode } count sum { amount } }
} }
"""


@pytest.fixture
def hub(demo_workspace: Workspace, tmp_path: Path) -> Iterator[Hub]:
    yield from own_hub(demo_workspace, tmp_path)


def sums(hub: Hub) -> dict[str, Any]:
    result: dict[str, Any] = hub.as_caller("health-app", "health_care").query(SUMS)
    return result


def refused_field(result: dict[str, Any]) -> str | None:
    """The field a FORBIDDEN refusal names; None where the aggregate was served."""
    if "errors" not in result:
        return None
    (only,) = result["errors"]
    assert only["extensions"]["code"] == "FORBIDDEN", only
    return str(only["extensions"]["field"])


def served_total(result: dict[str, Any]) -> int:
    groups = data(result)["civilAffairsServiceDeliveriesAggregate"]["groups"]
    assert all(group["sum"]["amount"] is not None for group in groups)
    return sum(group["count"] for group in groups)


def granting(hub: Hub, given: dict[str, Any]) -> None:
    assert data(hub.as_caller(STEWARD).query(GRANT, {"grant": given, "reason": "an aggregate test"}))["grantAccess"][
        "applied"
    ]


def test_a_revoked_grant_refuses_the_aggregate_its_cached_plan_served(hub: Hub) -> None:
    assert refused_field(sums(hub)) == AMOUNT
    granting(hub, grant("sums", "health", DELIVERIES, "health_care", "amount"))
    first = served_total(sums(hub))
    assert served_total(sums(hub)) == first > 0  # the second from the cached plan
    revoked = hub.as_caller(STEWARD).query(REVOKE, {"id": "sums", "reason": "no longer needed"})
    assert data(revoked)["revokeGrant"]["applied"]
    assert refused_field(sums(hub)) == AMOUNT


def test_a_grant_that_runs_out_refuses_the_aggregate_its_cached_plan_served(hub: Hub) -> None:
    # grant() starts a grant a minute ago: this one ends about five seconds from now.
    given = grant("brief", "health", DELIVERIES, "health_care", "amount", days=66 / 86_400)
    granting(hub, given)
    served_total(sums(hub))
    served_total(sums(hub))
    ends = datetime.fromisoformat(given["validUntil"]).timestamp()
    time.sleep(max(0.0, ends - datetime.now(UTC).timestamp()) + 0.5)
    assert refused_field(sums(hub)) == AMOUNT
