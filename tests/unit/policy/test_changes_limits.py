"""Limits found in review: steward grant windows are measured from now, a caller missing an
attribute its row rule reads sees no rows, and row rules are validated when written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import In
from hub.auth.principal import Principal
from hub.catalog import load_catalog
from hub.errors import Forbidden
from hub.policy.changes import Edit, authorize
from hub.policy.decisions import SnapshotPolicy
from hub.policy.snapshot import Grant, RowRule, Snapshot, SnapshotError, load_seed, validate
from hub.policy.terms import load_terms

CATALOG = load_catalog(Path(__file__).resolve().parents[3] / "hub" / "demo" / "manifests")
TERMS = load_terms(CATALOG)
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
STEWARD = Principal("civil-affairs-steward", "civil_affairs", ("data_steward",))


def grant(start: datetime, days: float, grant_id: str = "g") -> Edit:
    return Edit(
        op="grant",
        grant=Grant(
            id=grant_id,
            department="health",
            entity="civil_affairs.ServiceDelivery",
            field="recipientName",
            purpose="health_care",
            valid_from=start,
            valid_until=start + timedelta(days=days),
            granted_by=STEWARD.subject,
        ),
    )


def steward_may(edit: Edit) -> bool:
    policy = SnapshotPolicy(load_seed(now=NOW), CATALOG, clock=lambda: NOW)
    try:
        authorize(STEWARD, [edit], policy, CATALOG, TERMS)
    except Forbidden:
        return False
    return True


def test_steward_grant_of_90_days_from_now_is_allowed() -> None:
    assert steward_may(grant(NOW, 90))


def test_steward_grant_starting_later_cannot_extend_beyond_90_days_from_now() -> None:
    assert not steward_may(grant(NOW + timedelta(days=89), 10))
    assert not steward_may(grant(NOW + timedelta(days=3650), 1))


def test_steward_grant_cannot_be_backdated() -> None:
    assert not steward_may(grant(NOW - timedelta(days=30), 40))


def test_caller_without_the_attribute_its_row_rule_reads_sees_no_rows() -> None:
    rule = RowRule(
        role="district_office", entity="population.Person", filter={"districtCode": {"ne": "$principal.district"}}
    )
    policy = SnapshotPolicy(Snapshot(row_rules=(rule,)), CATALOG)
    person = CATALOG.entity("population.Person")
    without = Principal("o", "civil_affairs", ("district_office",))
    assert policy.row_rule(without, None, person) == In(person.table.key, ())
    with_attribute = Principal("o", "civil_affairs", ("district_office",), {"district": "330102"})
    assert policy.row_rule(with_attribute, None, person) != In("id_number", ())
    assert policy.attributes_used(without) != policy.attributes_used(
        Principal("o", "civil_affairs", ("district_office",), {"district": ""})
    )


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"fiscalYear": {"equals": 2026}}, "unknown filter operator"),
        ({"not": "x"}, "a filter is a mapping"),
        ({"and": [1]}, "a filter is a mapping"),
        ({"districtCode": {"in": "$principal.district"}}, "takes a list of plain values"),
        ({"districtCode": {"in": ["$principal.district"]}}, "takes a list of plain values"),
    ],
)
def test_row_rules_the_hub_cannot_use_are_refused_when_written(bad: dict[str, object], says: str) -> None:
    entity = "finance.BudgetLine" if "fiscalYear" in bad else "population.Person"
    snapshot = Snapshot(row_rules=(RowRule(role="auditor", entity=entity, filter=bad),))
    with pytest.raises(SnapshotError, match=says):
        validate(snapshot, CATALOG, TERMS)
