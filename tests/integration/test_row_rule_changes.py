"""A policy whose row rules leave an entity about persons uncovered is refused wherever it
would come in: a change through the admin API, and a stored version the hub starts on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub.db.engine import hub_engine, sessions
from hub.demo.workspace import Workspace
from hub.policy.models import PolicySnapshotRow
from hub.policy.snapshot import load_seed
from hub.services import StartupRefused
from tests.conftest import Hub
from tests.integration.policy_fixtures import (
    ADMIN,
    change,
    data,
    error,
    fresh_hub_database,
    history,
    hub_services,
    own_hub,
    rule,
    version,
)

OFFICE = "district-office-app"
VISIT_RULE = {
    "role": "district_office",
    "entity": "health.Visit",
    "filter": {"patient": {"districtCode": {"eq": "$principal.district"}}},
}
VISITS = "{ healthVisits(first: 5) { totalCount nodes { visitId } } }"


@pytest.fixture
def hub(demo_workspace: Workspace, tmp_path: Path) -> Iterator[Hub]:
    yield from own_hub(demo_workspace, tmp_path)


def test_an_admin_change_leaving_a_person_entity_without_a_row_rule_is_refused_and_recorded(hub: Hub) -> None:
    start = version(hub)
    refused = error(change(hub, ADMIN, [{"op": "REMOVE_ROW_RULE", "rowRule": VISIT_RULE}], "visits for everyone"))
    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert "role district_office has none on health.Visit" in refused["message"]
    assert version(hub) == start
    newest = history(hub, 1)[0]
    assert newest["outcome"] == "refused" and newest["detail"] == refused["message"]
    # The office still sees its district's visits only.
    counted = data(hub.as_caller(OFFICE).query(VISITS))["healthVisits"]["totalCount"]
    everyone = data(hub.as_caller("health-app").query(VISITS))["healthVisits"]["totalCount"]
    assert 0 < counted < everyone


def test_an_admin_may_replace_a_row_rule_by_a_deny_in_one_change(hub: Hub) -> None:
    edits: list[dict[str, Any]] = [
        {"op": "REMOVE_ROW_RULE", "rowRule": VISIT_RULE},
        {"op": "ADD_RULE", "rule": rule("district_office", "*", "health.Visit", "read", "deny")},
        {"op": "ADD_RULE", "rule": rule("district_office", "*", "health.Visit", "mask", "deny")},
    ]
    start = version(hub)
    assert data(change(hub, ADMIN, edits, "district offices have no business with visits"))
    assert version(hub) == start + 1
    refused = hub.as_caller(OFFICE).query(VISITS)
    assert refused["data"] is None or refused["data"]["healthVisits"] is None
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_the_hub_refuses_to_start_on_a_stored_policy_with_a_gap(demo_workspace: Workspace, tmp_path: Path) -> None:
    url, _ = fresh_hub_database(tmp_path)
    gap = load_seed()
    gap = gap.model_copy(update={"row_rules": tuple(r for r in gap.row_rules if r.entity != "hotline.Feedback")})

    async def store() -> None:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session, session.begin():
                # As a hub from before the check would have stored it.
                session.add(PolicySnapshotRow(version=1, created_at=datetime.now(UTC), content=gap.to_json()))
        finally:
            await engine.dispose()

    asyncio.run(store())
    services = hub_services(demo_workspace, url)

    async def start() -> None:
        try:
            await services.start()
        finally:
            await services.close()

    with pytest.raises(StartupRefused) as refused:
        asyncio.run(start())
    assert "policy version 1" in str(refused.value)
    assert "role district_office has none on hotline.Feedback" in str(refused.value)
