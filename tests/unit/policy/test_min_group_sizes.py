"""The smallest group size k of aggregates as policy edits: set and removed as whole lines,
validated (bounds, known roles, purposes and departments), kept by every other edit, applied
per department of the data, and refused to a steward outside their own department's data or
below the default."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub.auth.principal import Principal
from hub.catalog import load_catalog
from hub.errors import Forbidden
from hub.policy.changes import Edit, apply, authorize, parse_edits
from hub.policy.decisions import SnapshotPolicy
from hub.policy.snapshot import MinGroup, Rule, Snapshot, SnapshotError, load_seed, validate
from hub.policy.terms import load_terms

CATALOG = load_catalog(Path(__file__).resolve().parents[3] / "hub" / "demo" / "manifests")
TERMS = load_terms(CATALOG)
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
SEED = load_seed(now=NOW)
POLICY = SnapshotPolicy(SEED, CATALOG, clock=lambda: NOW, terms=TERMS)

ADMIN = Principal("platform-admin", "platform", ("admin",))
CIVIL_STEWARD = Principal("civil-affairs-steward", "civil_affairs", ("data_steward",))
AUDITOR = Principal("auditor", "audit", ("auditor",))


def set_k(role: str, k: int, purpose: str = "*", department: str = "*") -> Edit:
    line = {"role": role, "purpose": purpose, "department": department, "k": k}
    return parse_edits([{"op": "set_min_group_size", "min_group": line}])[0]


def remove_k(role: str, purpose: str = "*", department: str = "*") -> Edit:
    line = {"role": role, "purpose": purpose, "department": department}
    return parse_edits([{"op": "remove_min_group_size", "min_group_key": line}])[0]


def changed(*edits: Edit, actor: Principal = ADMIN) -> Snapshot:
    """The policy after `edits` by `actor`, checked as the store checks a change."""
    authorize(actor, edits, POLICY, CATALOG, TERMS)
    after = apply(SEED, edits)
    validate(after, CATALOG, TERMS)
    return after


def k_for(snapshot: Snapshot, principal: Principal, purpose: str | None, department: str) -> int:
    return SnapshotPolicy(snapshot, CATALOG, clock=lambda: NOW, terms=TERMS).min_group(principal, purpose, department)


def test_any_other_edit_keeps_the_group_sizes() -> None:
    # A change of rules once rebuilt the policy without them: every k fell back to 5.
    assert k_for(SEED, AUDITOR, "statistics", "civil_affairs") == 10
    rule = Rule(role="auditor", domain="*", object="civil_affairs.ServiceDelivery.amount", action="read", effect="deny")
    after = changed(Edit(op="add_rule", rule=rule))
    assert after.min_group_sizes == SEED.min_group_sizes
    assert k_for(after, AUDITOR, "statistics", "civil_affairs") == 10


def test_k_is_set_per_department_of_the_data_and_a_set_replaces_its_line() -> None:
    after = changed(set_k("auditor", 25, "statistics", "health"))
    assert k_for(after, AUDITOR, "statistics", "health") == 25
    # Elsewhere the lines that applied before still do.
    assert k_for(after, AUDITOR, "statistics", "civil_affairs") == 10
    again = apply(after, [set_k("auditor", 12, "statistics", "health")])
    lines = [m for m in again.min_group_sizes if m.department == "health"]
    assert lines == [MinGroup(role="auditor", purpose="statistics", department="health", k=12)]


def test_removing_a_line_brings_back_what_the_others_say() -> None:
    after = changed(remove_k("auditor", "statistics"))
    assert k_for(after, AUDITOR, "statistics", "civil_affairs") == 5
    with pytest.raises(SnapshotError, match="no such line"):
        apply(after, [remove_k("auditor", "statistics")])


def test_an_admin_may_set_k_down_to_one_and_nobody_below() -> None:
    after = changed(set_k("auditor", 1, "audit"))
    assert k_for(after, AUDITOR, "audit", "civil_affairs") == 1
    for k in (0, -3, 1001):
        with pytest.raises(SnapshotError, match="k is a whole number from 1 to 1000"):
            changed(set_k("auditor", k, "audit"))


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (set_k("auditor", 8, "shopping"), "shopping is not a purpose"),
        (set_k("auditor", 8, "statistics", "tax_office"), "tax_office is not a department"),
        (set_k("nobody_knows", 8), "nobody_knows is a role no line of the policy names"),
    ],
    ids=["unknown-purpose", "unknown-department", "unknown-role"],
)
def test_a_line_naming_what_the_policy_does_not_know_is_refused(edit: Edit, problem: str) -> None:
    with pytest.raises(SnapshotError, match=problem):
        changed(edit)


def test_a_malformed_name_is_refused_as_input_before_any_check() -> None:
    for line in ({"role": "Auditor", "k": 8}, {"role": "auditor", "purpose": "stat istics", "k": 8}):
        with pytest.raises(Exception, match="min_group"):
            parse_edits([{"op": "set_min_group_size", "min_group": line}])


def test_a_steward_sets_k_on_their_own_departments_data() -> None:
    after = changed(set_k("auditor", 20, "statistics", "civil_affairs"), actor=CIVIL_STEWARD)
    assert k_for(after, AUDITOR, "statistics", "civil_affairs") == 20
    assert k_for(after, AUDITOR, "statistics", "health") == 10


@pytest.mark.parametrize(
    ("edit", "refusal"),
    [
        # Another department's data: raising or lowering, it is not theirs to decide.
        (set_k("auditor", 5, "statistics", "health"), "only set group sizes on their own department's data"),
        (set_k("auditor", 50, "statistics", "health"), "only set group sizes on their own department's data"),
        # Every department's data at once.
        (set_k("auditor", 6, "statistics"), "only set group sizes on their own department's data"),
        (remove_k("auditor", "statistics"), "only set group sizes on their own department's data"),
        # Below the default, on their own data too; below the floor, a fortiori.
        (set_k("auditor", 4, "audit", "civil_affairs"), "may not set k below 5"),
        (set_k("auditor", 0, "audit", "civil_affairs"), "may not set k below 5"),
    ],
    ids=["other-department", "other-department-raised", "every-department", "remove-every-department",
         "below-default", "below-floor"],
)  # fmt: skip
def test_a_steward_may_not_set_k_beyond_their_own_data_or_below_the_default(edit: Edit, refusal: str) -> None:
    with pytest.raises(Forbidden, match=refusal):
        authorize(CIVIL_STEWARD, [edit], POLICY, CATALOG, TERMS)


def test_a_department_app_may_not_touch_group_sizes() -> None:
    app = Principal("civil-affairs-app", "civil_affairs", ("department_app",))
    with pytest.raises(Forbidden):
        authorize(app, [set_k("auditor", 20, "statistics", "civil_affairs")], POLICY, CATALOG, TERMS)


def test_the_seed_format_keeps_lines_without_a_department() -> None:
    raw: dict[str, Any] = {"role": "auditor", "purpose": "audit", "k": 1}
    line = MinGroup.model_validate(raw)
    assert line.department == "*"
    assert k_for(SEED.model_copy(update={"min_group_sizes": (line,)}), AUDITOR, "audit", "finance") == 1
