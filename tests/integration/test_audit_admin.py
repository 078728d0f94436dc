"""Admin actions as events of their own in the access trail, over the demo: policy changes,
grants and revocations, refused attempts, role assignments, each with who, what and why; who
reads them (auditors and admins all, a steward its department's, an app its own), and the abuse
each must not allow: a steward reading another department's admin events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from hub.demo.workspace import Workspace
from tests.conftest import Hub
from tests.integration.policy_fixtures import (
    ADMIN,
    ASSIGN,
    CASES,
    GRANT,
    REVOKE,
    STEWARD,
    change,
    data,
    grant,
    own_hub,
    rule,
)
from tests.integration.test_leaks import sensitive

EVENTS = """query Trail($filter: AuditEventFilter) {
  auditEvents(filter: $filter, first: 100) {
    nodes { position principal department outcome status code policyVersion kind
            operation { name } action { name target reason detail edits } }
  }
}"""
HEALTH_STEWARD_REASON = "health's own rule, none of civil affairs' business"


@pytest.fixture(scope="module")
def hub(demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    yield from own_hub(demo_workspace, tmp_path_factory.mktemp("audit-admin"))


def admin_events(hub: Hub, caller: str, **wanted: Any) -> list[dict[str, Any]]:
    answer = hub.as_caller(caller).query(EVENTS, {"filter": {"kind": "admin", **wanted}})
    return list(data(answer)["auditEvents"]["nodes"])


def edits(event: dict[str, Any]) -> list[dict[str, Any]]:
    return orjson.loads(event["action"]["edits"])  # type: ignore[no-any-return]


def test_an_applied_policy_change_is_an_admin_event_with_who_what_and_why(hub: Hub) -> None:
    added = rule("auditor", "health", "health.Visit", "read")
    answer = data(change(hub, ADMIN, [{"op": "ADD_RULE", "rule": added}], HEALTH_STEWARD_REASON))
    version = answer["changePolicy"]["version"]
    found = [e for e in admin_events(hub, "auditor", action="policy.change") if e["policyVersion"] == str(version)]
    assert len(found) == 1
    (event,) = found
    assert (event["principal"], event["department"], event["kind"]) == (ADMIN, "platform", "admin")
    assert (event["outcome"], event["status"], event["code"]) == ("applied", 200, None)
    assert event["operation"]["name"] == "policy.change"
    assert event["action"]["reason"] == HEALTH_STEWARD_REASON and event["action"]["target"] == "policy"
    assert edits(event) == [{"op": "add_rule", "rule": {**added}}]


def test_a_stewards_grant_and_its_revocation_are_two_admin_events_the_steward_reads(hub: Hub) -> None:
    given = grant("trail-grant", "health", CASES, "health_care", "caseId")
    granted = data(hub.as_caller(STEWARD).query(GRANT, {"grant": given, "reason": "a joint case review"}))
    assert granted["grantAccess"]["applied"]
    revoked = data(hub.as_caller(STEWARD).query(REVOKE, {"id": "trail-grant", "reason": "the review is over"}))
    assert revoked["revokeGrant"]["applied"]
    seen = admin_events(hub, STEWARD, action="policy.change", principal=STEWARD)
    ops = [(edits(e)[0]["op"], e["action"]["reason"]) for e in seen if e["outcome"] == "applied"]
    # Newest first: the revocation, then the grant.
    assert ops[:2] == [("revoke", "the review is over"), ("grant", "a joint case review")]
    granted_edit = edits(next(e for e in seen if edits(e)[0]["op"] == "grant"))[0]
    assert granted_edit["grant"]["id"] == "trail-grant" and granted_edit["grant"]["department"] == "health"


def test_a_refused_change_is_an_admin_event_saying_why_it_was_refused(hub: Hub) -> None:
    attempt = [{"op": "ADD_RULE", "rule": rule("data_steward", "*", "L4", "read")}]
    refused = change(hub, STEWARD, attempt, "let me read everything")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    (event,) = [e for e in admin_events(hub, "auditor", outcome="refused") if e["principal"] == STEWARD][:1]
    assert (event["outcome"], event["status"], event["code"]) == ("refused", 403, "FORBIDDEN")
    assert event["action"]["reason"] == "let me read everything" and event["action"]["detail"]
    assert edits(event)[0]["op"] == "add_rule"


def test_a_role_assignment_is_an_admin_event_naming_the_app(hub: Hub) -> None:
    answer = hub.as_caller(ADMIN).query(
        ASSIGN, {"app": "health-app", "roles": ["department_app"], "reason": "confirming its role"}
    )
    assert "errors" not in answer, answer
    (event,) = admin_events(hub, "auditor", action="roles.assign")[:1]
    assert event["action"]["target"] == "health-app" and event["action"]["reason"] == "confirming its role"
    assert edits(event) == [{"op": "assign_roles", "app": "health-app", "roles": ["department_app"]}]


def test_a_steward_cannot_read_another_departments_admin_events(hub: Hub) -> None:
    private = rule("department_app", "health", "health.Visit", "read")
    data(change(hub, ADMIN, [{"op": "ADD_RULE", "rule": private}], "health only"))
    everything = admin_events(hub, "auditor")
    health_only = [e for e in everything if e["action"]["reason"] == "health only"]
    assert len(health_only) == 1
    seen = admin_events(hub, STEWARD)
    assert seen, "the steward reads its department's admin events"
    assert all(e["action"]["reason"] != "health only" for e in seen)
    # Asking for it by name does not help: the scope is a condition on every statement.
    assert not [
        e
        for e in admin_events(hub, STEWARD, principal=ADMIN, action="policy.change")
        if e["action"]["reason"] == "health only"
    ]
    # A department app reads only its own events: no admin event of anyone else's.
    assert admin_events(hub, "health-app") == []


def test_no_identifier_typed_into_a_reason_or_an_edit_reaches_the_trail(hub: Hub) -> None:
    id_number, mobile = "110105198502025670", "13912345678"  # a valid check character
    typed = f"asked by {id_number}, call {mobile}"
    attempt = [{"op": "ADD_ROW_RULE", "rowRule": {"role": "auditor", "entity": CASES, "filter": {"note": typed}}}]
    change(hub, STEWARD, attempt, typed)
    answer = hub.as_caller("auditor").query(EVENTS, {"filter": {"kind": "admin", "principal": STEWARD}})
    text = orjson.dumps(answer).decode()
    assert "[redacted]" in text
    assert id_number not in text and mobile not in text and not sensitive(text)


def test_filters_by_kind_and_action_are_checked(hub: Hub) -> None:
    for wanted in ({"kind": "gossip"}, {"action": "drop.tables"}):
        answer = hub.as_caller("auditor").query(EVENTS, {"filter": wanted})
        assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "drop.tables" not in str(answer) or "one of" in answer["errors"][0]["message"]
