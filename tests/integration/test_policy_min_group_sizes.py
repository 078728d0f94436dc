"""The smallest group size k of aggregates, edited through the admin GraphQL API: live on the
next aggregate, per department of the data, versioned and recorded like every policy edit, and
refused (and recorded) where a steward reaches past their own department's data or anyone goes
below the floor.

Every test runs on a hub database of its own (see `policy_fixtures`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.demo.generate import generate
from hub.demo.workspace import Workspace
from tests.conftest import Hub
from tests.integration.policy_fixtures import ADMIN, STEWARD, change, data, error, history, own_hub, version

AUDITOR = "auditor"
BY_DISTRICT = """{ civilAffairsServiceDeliveriesAggregate(groupBy: [DISTRICT_CODE], first: 1000) {
    groups { key { districtCode } count suppressed } } }"""
SIZES = "{ accessPolicy { version minGroupSizes { role purpose department k } } }"


def persons_by_district() -> dict[str, int]:
    who: dict[str, set[str]] = defaultdict(set)
    for row in generate()["civil_affairs"]["ca_service_delivery"]:
        who[row["district_code"]].add(row["recipient_id_number"])
    return {district: len(persons) for district, persons in who.items()}


@pytest.fixture
def hub(demo_workspace: Workspace, tmp_path: Path) -> Iterator[Hub]:
    yield from own_hub(demo_workspace, tmp_path)


def suppressed(hub: Hub) -> set[str]:
    answer = data(hub.as_caller(AUDITOR).query(BY_DISTRICT))["civilAffairsServiceDeliveriesAggregate"]
    return {g["key"]["districtCode"] for g in answer["groups"] if g["suppressed"]}


def set_k(role: str, k: int | None, purpose: str = "*", department: str = "*") -> dict[str, Any]:
    return {
        "op": "SET_MIN_GROUP_SIZE",
        "minGroupSize": {"role": role, "purpose": purpose, "department": department, "k": k},
    }


def test_an_admin_sets_k_for_one_departments_data_live_on_the_next_aggregate(hub: Hub) -> None:
    persons = persons_by_district()
    k = sorted(persons.values())[len(persons) // 2]
    assert suppressed(hub) == {d for d, n in persons.items() if n < 5}
    start = version(hub)

    # A line on finance's data changes nothing for civil affairs' deliveries.
    data(change(hub, ADMIN, [set_k(AUDITOR, 1000, department="finance")], "finance tables for the public"))
    assert suppressed(hub) == {d for d, n in persons.items() if n < 5}
    data(change(hub, ADMIN, [set_k(AUDITOR, k, department="civil_affairs")], "district tables, coarser"))

    assert suppressed(hub) == {d for d, n in persons.items() if n < k}
    sizes = data(hub.query(SIZES))["accessPolicy"]
    assert sizes["version"] == start + 2
    assert {"role": AUDITOR, "purpose": "*", "department": "civil_affairs", "k": k} in sizes["minGroupSizes"]
    newest = history(hub, 1)[0]
    assert (newest["actor"], newest["outcome"], newest["version"]) == (ADMIN, "applied", start + 2)
    assert newest["edits"] == [
        {
            "op": "set_min_group_size",
            "min_group": {"role": AUDITOR, "purpose": "*", "department": "civil_affairs", "k": k},
        }
    ]


def test_a_steward_raises_k_on_their_own_data(hub: Hub) -> None:
    data(change(hub, STEWARD, [set_k(AUDITOR, 1000, department="civil_affairs")], "no district tables for now"))
    assert suppressed(hub) == set(persons_by_district())


@pytest.mark.parametrize(
    ("caller", "edit", "code", "refusal"),
    [
        (STEWARD, set_k(AUDITOR, 1000, department="health"), "FORBIDDEN", "own department's data (civil_affairs)"),
        (STEWARD, set_k(AUDITOR, 2, department="civil_affairs"), "FORBIDDEN", "may not set k below 5"),
        (STEWARD, set_k(AUDITOR, 6), "FORBIDDEN", "own department's data (civil_affairs)"),
        ("civil-affairs-app", set_k(AUDITOR, 50, department="civil_affairs"), "FORBIDDEN", "only admins and data"),
        (ADMIN, set_k(AUDITOR, 0, department="civil_affairs"), "BAD_USER_INPUT", "k is a whole number from 1 to 1000"),
        (ADMIN, set_k(AUDITOR, -5), "BAD_USER_INPUT", "k is a whole number from 1 to 1000"),
        (ADMIN, set_k(AUDITOR, 5, purpose="shopping"), "BAD_USER_INPUT", "shopping is not a purpose"),
    ],
    ids=["steward-other-department", "steward-below-default", "steward-every-department", "app",
         "admin-zero", "admin-negative", "unknown-purpose"],
)  # fmt: skip
def test_a_k_nobody_may_set_is_refused_recorded_and_changes_nothing(
    hub: Hub, caller: str, edit: dict[str, Any], code: str, refusal: str
) -> None:
    before, start = suppressed(hub), version(hub)
    refused = error(change(hub, caller, [edit], "trying my luck"))
    assert refused["extensions"]["code"] == code
    assert refusal in refused["message"]
    assert version(hub) == start
    assert suppressed(hub) == before
    newest = history(hub, 1)[0]
    assert (newest["actor"], newest["outcome"], newest["version"]) == (caller, "refused", start)
    assert newest["edits"][0]["op"] == "set_min_group_size"
