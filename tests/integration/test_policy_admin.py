"""Policy administration over HTTP, as the admin, the civil affairs data steward and department
apps use it: escalation refused and recorded, edits live on the next request, previews that
change nothing, all-or-nothing changes, purposes, explanations, the change history, and a
second hub instance following the first.

Every test runs on a hub database of its own (see `policy_fixtures`), so its edits never reach
the session's shared demo hub."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.demo.workspace import Workspace
from tests.conftest import Hub
from tests.integration.policy_fixtures import (
    ADMIN,
    ASSIGN,
    CASES,
    GRANT,
    REVOKE,
    ROLES,
    STEWARD,
    change,
    data,
    error,
    fresh_hub_database,
    grant,
    history,
    hub_services,
    own_hub,
    policy,
    rule,
    serving,
    version,
)

HEALTH, CIVIL, DISTRICT = "health-app", "civil-affairs-app", "district-office-app"
# Ten cases in a fixed order, with an internal (L2) field and two sensitive (L3) ones.
CASE_LIST = (
    "{ civilAffairsAssistanceCases(first: 10, orderBy: [CASE_ID_ASC]) "
    "{ nodes { caseId assistanceType recipientName recipientIdNumber } } }"
)
NODES = ("civilAffairsAssistanceCases", "nodes", "*")
PERSONS = "{ populationPersons(first: 5) { nodes { idNumber } } }"
EXPLAIN = """
query($entity: String!, $field: String, $subject: String, $purpose: String) {
  explain(entity: $entity, field: $field, subject: $subject, purpose: $purpose) {
    subject decision reason rules grants { id purpose } rowRules
  }
}"""
ID_NUMBER = re.compile(r"\d{17}[\dX]")
MASKED_ID_NUMBER = re.compile(r"\d{3}\*{15}")


@pytest.fixture
def hub(demo_workspace: Workspace, tmp_path: Path) -> Iterator[Hub]:
    yield from own_hub(demo_workspace, tmp_path)


def cases(hub: Hub, caller: str, purpose: str | None = None) -> dict[str, Any]:
    """The case list as `caller` gets it, the whole response."""
    result: dict[str, Any] = hub.as_caller(caller, purpose).query(CASE_LIST)
    return result


def nodes(result: dict[str, Any]) -> list[dict[str, Any]]:
    return list(result["data"]["civilAffairsAssistanceCases"]["nodes"])


def column(result: dict[str, Any], name: str) -> list[Any]:
    return [node[name] for node in nodes(result)]


def clean_column(result: dict[str, Any], name: str) -> list[Any]:
    """A column of a response that must have no errors."""
    data(result)
    return column(result, name)


def plain_cases(hub: Hub) -> dict[str, Any]:
    """The cases as civil affairs' own app reads them: every field plain."""
    result = cases(hub, CIVIL)
    data(result)
    return result


def assert_masked_names(names: list[Any], plain: list[Any]) -> None:
    assert all(n is not None for n in plain)
    assert names == [p[0] + "*" * (len(p) - 1) for p in plain]


# --- escalation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    caller: str
    query: str
    variables: dict[str, Any]
    refusal: str  # what the error message must say
    prepare: list[dict[str, Any]] = field(default_factory=list)  # edits the admin applies first

    def now(self) -> dict[str, Any]:
        """The variables with every grant's window moved to start a minute before now, as it
        did when the attempt was written (at collection, which may be minutes before it runs)."""
        moved: dict[str, Any] = _moved(self.variables)
        return moved


def _moved(value: Any) -> Any:
    if isinstance(value, list):
        return [_moved(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _moved(v) for k, v in value.items()}
    if "validFrom" in out and "validUntil" in out:
        start = datetime.fromisoformat(out["validFrom"])
        shift = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1) - start
        out["validFrom"] = (start + shift).isoformat()
        out["validUntil"] = (datetime.fromisoformat(out["validUntil"]) + shift).isoformat()
    return out


def steward_grant(**overrides: Any) -> dict[str, Any]:
    """A grant the steward may give (own data, another department, 30 days, a field they read
    plain), with one thing changed."""
    values: dict[str, Any] = {
        "grant_id": "escalation",
        "department": "health",
        "entity": CASES,
        "purpose": "health_care",
        "field": "recipientName",
    }
    values.update(overrides)
    return grant(**values)


def granting(caller: str, refusal: str, prepare: list[dict[str, Any]] | None = None, **overrides: Any) -> Attempt:
    variables = {"grant": steward_grant(**overrides), "reason": "trying my luck"}
    return Attempt(caller, GRANT, variables, refusal, prepare or [])


def changing(caller: str, refusal: str, edits: list[dict[str, Any]]) -> Attempt:
    return Attempt(caller, CHANGE_ONLY, {"edits": edits, "reason": "trying my luck"}, refusal)


CHANGE_ONLY = """
mutation($edits: [PolicyEditInput!]!, $reason: String!) { changePolicy(edits: $edits, reason: $reason) { version } }
"""
DENY_TO_STEWARDS = [
    {"op": "ADD_RULE", "rule": rule("data_steward", "*", f"{CASES}.monthlyAmount", "read", "deny")},
]
ATTEMPTS = {
    "steward_grants_on_another_departments_data": granting(
        STEWARD,
        "a steward may only grant on their own department's data (civil_affairs)",
        entity="population.Person",
        field="idNumber",
    ),
    "steward_grants_a_field_they_do_not_read_plain": granting(
        STEWARD,
        f"{CASES}.monthlyAmount is not something you read plain yourself",
        DENY_TO_STEWARDS,
        field="monthlyAmount",
    ),
    "steward_grants_a_whole_entity_with_a_field_they_do_not_read_plain": granting(
        STEWARD,
        f"{CASES}.monthlyAmount is not something you read plain yourself",
        DENY_TO_STEWARDS,
        field=None,
    ),
    "steward_grants_to_their_own_department": granting(
        STEWARD,
        "a steward may not grant to their own department",
        department="civil_affairs",
        purpose="social_assistance",
    ),
    "steward_grants_beyond_the_maximum_duration": granting(
        STEWARD, "a steward may grant from now for at most 90 days", days=90.1
    ),
    "steward_grants_in_the_admins_name": granting(
        STEWARD, "a grant is recorded as granted by its author (civil-affairs-steward)", grantedBy=ADMIN
    ),
    "steward_promotes_themselves_to_admin": Attempt(
        STEWARD, ASSIGN, {"app": STEWARD, "roles": ["admin"], "reason": "trying my luck"}, "only admins assign roles"
    ),
    "steward_makes_their_role_inherit_admin": changing(
        STEWARD,
        "edit 1 (add_inheritance): a data steward may only grant, revoke and set group sizes; rules and roles are for admins",
        [{"op": "ADD_INHERITANCE", "inheritance": {"role": "data_steward", "inherits": "admin"}}],
    ),
    "steward_adds_a_rule": changing(
        STEWARD,
        "edit 1 (add_rule): a data steward may only grant, revoke and set group sizes; rules and roles are for admins",
        [{"op": "ADD_RULE", "rule": rule("data_steward", "*", "L4", "read")}],
    ),
    "steward_hides_a_rule_removal_behind_a_valid_grant": changing(
        STEWARD,
        "edit 2 (remove_rule): a data steward may only grant, revoke and set group sizes",
        [
            {"op": "GRANT", "grant": steward_grant()},
            {"op": "REMOVE_RULE", "rule": rule("department_app", "*", "hotline.Request.content", "mask", "deny")},
        ],
    ),
    "steward_revokes_another_departments_grant": Attempt(
        STEWARD,
        REVOKE,
        {"id": "seed-2", "reason": "trying my luck"},
        "a steward may only revoke grants on their own department's data",
    ),
    # Finding 1 of the attack: a steward publishing personal data, or reaching past its remit.
    "steward_grants_recipients_id_numbers_to_the_public": granting(
        STEWARD,
        "a steward may not grant to public, a public department",
        department="public",
        entity="civil_affairs.ServiceDelivery",
        field="recipientIdNumber",
        purpose="statistics",
    ),
    "steward_grants_a_key_to_the_public": granting(
        STEWARD,
        "a steward may not grant to public, a public department",
        department="public",
        entity="civil_affairs.ServiceDelivery",
        field="deliveryId",
        purpose="statistics",
    ),
    "steward_revokes_the_admins_seed_grant_on_its_own_data": Attempt(
        STEWARD,
        REVOKE,
        {"id": "seed-1", "reason": "trying my luck"},
        "grant seed-1 was made by an admin; only an admin revokes it",
    ),
    "department_app_grants": granting(CIVIL, "only admins and data stewards may change the access policy"),
    "department_app_adds_a_rule": changing(
        CIVIL,
        "only admins and data stewards may change the access policy",
        [{"op": "ADD_RULE", "rule": rule("department_app", "*", "L4", "read")}],
    ),
    "department_app_makes_itself_admin": Attempt(
        CIVIL, ASSIGN, {"app": CIVIL, "roles": ["admin"], "reason": "trying my luck"}, "only admins assign roles"
    ),
}


@pytest.mark.parametrize("attempt", ATTEMPTS.values(), ids=ATTEMPTS.keys())
def test_escalation_is_refused_with_a_clear_error_and_recorded(hub: Hub, attempt: Attempt) -> None:
    if attempt.prepare:
        assert data(change(hub, ADMIN, attempt.prepare, "stewards lose plain monthly amounts"))
    before, roles_before = policy(hub), data(hub.query(ROLES))
    departments = {a["app"]: a["department"] for a in roles_before["roleAssignments"]}

    refused = error(hub.as_caller(attempt.caller).query(attempt.query, attempt.now()))

    assert refused["extensions"]["code"] == "FORBIDDEN"
    assert attempt.refusal in refused["message"]
    assert policy(hub) == before  # same version, same grants
    assert data(hub.query(ROLES)) == roles_before
    newest = history(hub, 1)[0]
    assert newest["outcome"] == "refused"
    assert newest["actor"] == attempt.caller
    assert newest["actorDepartment"] == departments[attempt.caller]
    assert newest["detail"] == refused["message"]
    assert newest["reason"] == "trying my luck"
    assert newest["edits"]


def test_refused_changes_are_recorded_against_the_version_they_were_refused_on(hub: Hub) -> None:
    # The history's `version` of a refused change is the version it was made against.
    start = version(hub)
    for attempt in (ATTEMPTS["steward_adds_a_rule"], ATTEMPTS["steward_promotes_themselves_to_admin"]):
        error(hub.as_caller(attempt.caller).query(attempt.query, attempt.now()))
        newest = history(hub, 1)[0]
        assert (newest["outcome"], newest["version"]) == ("refused", start), newest


def test_refused_steward_grant_leaves_the_grantee_masked(hub: Hub) -> None:
    attempt = ATTEMPTS["steward_grants_beyond_the_maximum_duration"]
    error(hub.as_caller(STEWARD).query(attempt.query, attempt.now()))
    names = column(cases(hub, HEALTH, "health_care"), "recipientName")
    assert_masked_names(names, column(plain_cases(hub), "recipientName"))


# --- edits are live on the next request --------------------------------------------------------


def test_admin_deny_rule_withholds_a_field_on_the_next_request_and_removing_it_restores_it(hub: Hub) -> None:
    reference = plain_cases(hub)
    plain = column(reference, "assistanceType")
    assert clean_column(cases(hub, HEALTH), "assistanceType") == plain
    deny = rule("department_app", "*", f"{CASES}.assistanceType", "read", "deny")
    start = version(hub)

    added = data(change(hub, ADMIN, [{"op": "ADD_RULE", "rule": deny}], "assistance types are sensitive now"))
    withheld = cases(hub, HEALTH)

    assert added["changePolicy"] == {**added["changePolicy"], "applied": True, "version": start + 1}
    assert column(withheld, "assistanceType") == [None] * 10
    assert column(withheld, "caseId") == column(reference, "caseId")
    (refusal,) = withheld["errors"]
    assert refusal["path"] == [*NODES, "assistanceType"]
    assert refusal["extensions"]["code"] == "FORBIDDEN" and refusal["extensions"]["count"] == 10
    access = withheld["extensions"]["access"]
    assert access["withheld"] == ["civilAffairsAssistanceCases/nodes/*/assistanceType"]
    assert access["policyVersion"] == str(start + 1)

    data(change(hub, ADMIN, [{"op": "REMOVE_RULE", "rule": deny}], "they are not after all"))
    restored = cases(hub, HEALTH)
    assert clean_column(restored, "assistanceType") == plain


def test_admin_grant_releases_a_field_plain_at_once_and_revoking_masks_it_again(hub: Hub) -> None:
    plain = column(plain_cases(hub), "recipientIdNumber")
    assert all(ID_NUMBER.fullmatch(i) for i in plain)
    before = clean_column(cases(hub, HEALTH, "health_care"), "recipientIdNumber")
    assert before == [i[:3] + "*" * 15 for i in plain]

    given = grant("admin-ids", "health", CASES, "health_care", "recipientIdNumber")
    data(hub.query(GRANT, {"grant": given, "reason": "contact tracing of assistance recipients"}))
    assert clean_column(cases(hub, HEALTH, "health_care"), "recipientIdNumber") == plain

    data(hub.query(REVOKE, {"id": "admin-ids", "reason": "tracing finished"}))
    assert clean_column(cases(hub, HEALTH, "health_care"), "recipientIdNumber") == before


def test_steward_grant_on_own_data_releases_the_field_for_its_purpose_only(hub: Hub) -> None:
    plain = plain_cases(hub)
    start = version(hub)
    given = grant("steward-names", "health", CASES, "health_care", "recipientName", days=90)

    result = data(hub.as_caller(STEWARD).query(GRANT, {"grant": given, "reason": "home visits by health workers"}))

    assert result["grantAccess"]["applied"] is True
    assert result["grantAccess"]["version"] == version(hub) == start + 1
    recorded = [g for g in policy(hub)["grants"] if g["id"] == "steward-names"]
    assert recorded == [
        {
            "id": "steward-names",
            "department": "health",
            "entity": CASES,
            "field": "recipientName",
            "purpose": "health_care",
            "grantedBy": STEWARD,
        }
    ]
    for_purpose = cases(hub, HEALTH, "health_care")
    data(for_purpose)
    assert column(for_purpose, "recipientName") == column(plain, "recipientName")
    assert all(MASKED_ID_NUMBER.fullmatch(i) for i in column(for_purpose, "recipientIdNumber"))
    for other in (
        cases(hub, HEALTH, "statistics"),
        cases(hub, HEALTH),
        cases(hub, "human-resources-app", "health_care"),
    ):
        assert_masked_names(clean_column(other, "recipientName"), column(plain, "recipientName"))
        assert f"{'/'.join(NODES)}/recipientName" in other["extensions"]["access"]["masked"]


# --- previews ---------------------------------------------------------------------------------


def test_dry_run_lists_who_gains_which_fields_and_changes_nothing(hub: Hub) -> None:
    start, changes = version(hub), history(hub)
    masked = clean_column(cases(hub, HEALTH, "health_care"), "recipientIdNumber")
    given = grant("preview", "health", CASES, "health_care", "recipientIdNumber")

    preview = data(hub.query(GRANT, {"grant": given, "reason": "what would it expose?", "dryRun": True}))

    assert preview["grantAccess"]["applied"] is False
    assert preview["grantAccess"]["exposures"] == [
        {
            "department": "health",
            "roles": ["department_app"],
            "purpose": "health_care",
            "field": f"{CASES}.recipientIdNumber",
            "before": "MASKED",
            "after": "PLAIN",
        }
    ]
    assert version(hub) == start
    assert [g["id"] for g in policy(hub)["grants"]] == [f"seed-{n}" for n in range(1, 7)]
    after = cases(hub, HEALTH, "health_care")
    assert clean_column(after, "recipientIdNumber") == masked
    assert after["extensions"]["access"]["policyVersion"] == str(start)
    assert history(hub) == changes


def test_dry_run_of_a_revoke_lists_every_kind_of_caller_that_loses_fields(hub: Hub) -> None:
    start = version(hub)
    revoke = [{"op": "REVOKE", "grantId": "seed-2"}]

    exposures = data(change(hub, ADMIN, revoke, "what if means testing ended?", dry_run=True))["changePolicy"]

    losses = exposures["exposures"]
    assert {tuple(e["roles"]) for e in losses} == {("department_app",), ("district_office",), ("data_steward",)}
    assert {(e["department"], e["purpose"], e["before"]) for e in losses} == {
        ("civil_affairs", "social_assistance", "PLAIN")
    }
    assert {e["after"] for e in losses} <= {"MASKED", "DENIED"}
    assert {"population.Person.idNumber", "population.Person.mobile"} <= {e["field"] for e in losses}
    assert all(e["field"].startswith("population.Person.") for e in losses)
    assert version(hub) == start
    persons = data(hub.as_caller(CIVIL, "social_assistance").query(PERSONS))["populationPersons"]["nodes"]
    assert all(ID_NUMBER.fullmatch(p["idNumber"]) for p in persons)


# --- atomic changes ---------------------------------------------------------------------------


def test_revoke_plus_grant_is_one_change_that_bumps_the_version_once(hub: Hub) -> None:
    plain = plain_cases(hub)
    data(hub.query(GRANT, {"grant": grant("names", "health", CASES, "health_care", "recipientName"), "reason": "a"}))
    start = version(hub)
    move: list[dict[str, Any]] = [
        {"op": "REVOKE", "grantId": "names"},
        {"op": "GRANT", "grant": grant("ids", "health", CASES, "health_care", "recipientIdNumber")},
    ]

    moved = data(change(hub, ADMIN, move, "health needs the ID numbers, not the names"))["changePolicy"]

    assert moved["applied"] is True and moved["version"] == start + 1
    assert version(hub) == start + 1
    assert [g["id"] for g in policy(hub)["grants"]] == [*(f"seed-{n}" for n in range(1, 7)), "ids"]
    seen = cases(hub, HEALTH, "health_care")
    assert column(seen, "recipientIdNumber") == column(plain, "recipientIdNumber")
    assert_masked_names(column(seen, "recipientName"), column(plain, "recipientName"))
    newest = history(hub, 1)[0]
    assert newest["version"] == start + 1 and [e["op"] for e in newest["edits"]] == ["revoke", "grant"]


@pytest.mark.parametrize("position", [0, 1, 2], ids=["first", "middle", "last"])
def test_an_invalid_edit_anywhere_in_a_change_leaves_all_of_it_unapplied(hub: Hub, position: int) -> None:
    plain = plain_cases(hub)
    data(hub.query(GRANT, {"grant": grant("names", "health", CASES, "health_care", "recipientName"), "reason": "a"}))
    start, before = version(hub), policy(hub)
    edits: list[dict[str, Any]] = [
        {"op": "REVOKE", "grantId": "names"},
        {"op": "GRANT", "grant": grant("ids", "health", CASES, "health_care", "recipientIdNumber")},
    ]
    bad = {"op": "GRANT", "grant": grant("nowhere", "health", "civil_affairs.Nowhere", "health_care")}
    edits.insert(position, bad)

    refused = error(change(hub, ADMIN, edits, "a change with a typo"))

    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert "civil_affairs.Nowhere is not an entity" in refused["message"]
    assert version(hub) == start
    assert policy(hub) == before
    seen = cases(hub, HEALTH, "health_care")
    assert column(seen, "recipientName") == column(plain, "recipientName")
    assert all(MASKED_ID_NUMBER.fullmatch(i) for i in column(seen, "recipientIdNumber"))
    assert seen["extensions"]["access"]["policyVersion"] == str(start)
    assert history(hub, 1)[0]["outcome"] == "refused"


# --- purposes ---------------------------------------------------------------------------------


def test_unknown_purpose_gets_http_400_with_bad_purpose(hub: Hub) -> None:
    response = hub.client.post(
        "/graphql",
        json={"query": PERSONS},
        headers={"Authorization": f"Bearer {hub.tokens[CIVIL]}", "X-Hub-Purpose": "curiosity"},
    )
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    (refusal,) = body["errors"]
    assert refusal["extensions"]["code"] == "BAD_PURPOSE"
    assert "curiosity" in refusal["message"]


def test_without_a_purpose_header_grants_needing_a_purpose_do_not_apply(hub: Hub) -> None:
    stated = data(hub.as_caller(CIVIL, "social_assistance").query(PERSONS))["populationPersons"]["nodes"]
    assert all(ID_NUMBER.fullmatch(p["idNumber"]) for p in stated)

    unstated = hub.as_caller(CIVIL).query(PERSONS)

    ids = [p["idNumber"] for p in data(unstated)["populationPersons"]["nodes"]]
    assert ids == [p["idNumber"][:3] + "*" * 15 for p in stated]
    assert unstated["extensions"]["access"]["masked"] == ["populationPersons/nodes/*/idNumber"]


# --- explain ----------------------------------------------------------------------------------


def explain(hub: Hub, caller: str, entity: str, item: str | None, **more: str) -> Any:
    return hub.as_caller(caller).query(EXPLAIN, {"entity": entity, "field": item, **more})


def test_caller_may_explain_itself_and_sees_the_deciding_grant_or_rule(hub: Hub) -> None:
    granted = data(explain(hub, CIVIL, "population.Person", "idNumber", purpose="social_assistance"))["explain"]
    assert granted["subject"] == CIVIL and granted["decision"] == "PLAIN"
    assert granted["grants"] == [{"id": "seed-2", "purpose": "social_assistance"}]

    unstated = data(explain(hub, CIVIL, "population.Person", "idNumber", subject=CIVIL))["explain"]
    assert unstated["decision"] == "MASKED"
    assert unstated["rules"] == [["department_app", "*", "L3", "mask", "allow"]]
    assert "stated purpose" in unstated["reason"]


def test_department_app_may_not_explain_another_app(hub: Hub) -> None:
    refused = error(explain(hub, CIVIL, CASES, "caseId", subject=HEALTH))
    assert refused["extensions"]["code"] == "FORBIDDEN"


def test_steward_may_explain_apps_of_their_department_only(hub: Hub) -> None:
    rows = data(explain(hub, STEWARD, CASES, None, subject=DISTRICT))["explain"]
    assert rows["subject"] == DISTRICT
    assert rows["rowRules"] == [
        {"role": "district_office", "entity": CASES, "filter": {"districtCode": {"eq": "$principal.district"}}}
    ]
    item = data(explain(hub, STEWARD, CASES, "caseId", subject=DISTRICT))["explain"]
    assert item["decision"] == "PLAIN" and item["rules"] == [["department_app", "*", "L2", "read", "allow"]]

    refused = error(explain(hub, STEWARD, CASES, "caseId", subject=HEALTH))
    assert refused["extensions"]["code"] == "FORBIDDEN"
    assert "stewards about their department's apps" in refused["message"]


def test_admin_may_explain_anyone_and_sees_the_deciding_line(hub: Hub) -> None:
    denied = data(explain(hub, ADMIN, "hotline.Request", "content", subject=HEALTH))["explain"]
    assert denied["decision"] == "DENIED"
    assert denied["rules"] == [["department_app", "*", "hotline.Request.content", "mask", "deny"]]

    audited = data(explain(hub, ADMIN, "civil_affairs.ServiceDelivery", "amount", subject="auditor", purpose="audit"))
    assert audited["explain"]["decision"] == "PLAIN"
    assert audited["explain"]["grants"] == [{"id": "seed-1", "purpose": "audit"}]


# --- history ----------------------------------------------------------------------------------


def test_history_lists_who_when_what_and_why_for_every_applied_change(hub: Hub) -> None:
    began = datetime.now(UTC) - timedelta(seconds=5)
    start = version(hub)
    given = grant("visits", "health", CASES, "health_care", "recipientName")
    data(hub.as_caller(STEWARD).query(GRANT, {"grant": given, "reason": "home visits"}))
    deny = rule("auditor", "*", f"{CASES}.monthlyAmount", "mask", "deny")
    data(change(hub, ADMIN, [{"op": "ADD_RULE", "rule": deny}], "auditors need no amounts"))
    data(hub.query(REVOKE, {"id": "visits", "reason": "visits done"}))
    data(hub.query(ASSIGN, {"app": HEALTH, "roles": ["department_app", "auditor"], "reason": "health audits too"}))

    changes = history(hub)

    listed = [(c["actor"], c["actorDepartment"], c["reason"], c["outcome"], c["version"]) for c in changes]
    assert listed == [
        (ADMIN, "platform", "health audits too", "applied", start + 4),
        (ADMIN, "platform", "visits done", "applied", start + 3),
        (ADMIN, "platform", "auditors need no amounts", "applied", start + 2),
        (STEWARD, "civil_affairs", "home visits", "applied", start + 1),
        ("hub", "platform", "seeded from policies/default.yaml", "applied", 1),
    ]
    assert changes[0]["edits"] == [{"op": "assign_roles", "app": HEALTH, "roles": ["auditor", "department_app"]}]
    assert changes[1]["edits"] == [{"op": "revoke", "grant_id": "visits"}]
    assert changes[2]["edits"] == [{"op": "add_rule", "rule": deny}]
    (granted,) = changes[3]["edits"]
    assert granted["op"] == "grant"
    assert {k: granted["grant"][k] for k in ("id", "department", "entity", "field", "purpose", "granted_by")} == {
        "id": "visits",
        "department": "health",
        "entity": CASES,
        "field": "recipientName",
        "purpose": "health_care",
        "granted_by": STEWARD,
    }
    ended = datetime.now(UTC) + timedelta(seconds=5)
    for recorded in changes[:4]:
        at = datetime.fromisoformat(recorded["at"])
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        assert began <= at <= ended


# --- several hub instances --------------------------------------------------------------------


def test_another_hub_instance_picks_up_a_change_within_its_poll_interval(
    demo_workspace: Workspace, tmp_path: Path
) -> None:
    url, tokens = fresh_hub_database(tmp_path)
    first, second = hub_services(demo_workspace, url), hub_services(demo_workspace, url)
    with serving(first, url, tokens) as one, serving(second, url, tokens) as other:
        assert clean_column(cases(other, HEALTH), "assistanceType") == column(plain_cases(other), "assistanceType")
        deny = rule("department_app", "*", f"{CASES}.assistanceType", "read", "deny")
        applied = data(change(one, ADMIN, [{"op": "ADD_RULE", "rule": deny}], "one instance edits"))
        new_version = str(applied["changePolicy"]["version"])
        changed_at = time.monotonic()

        seen = cases(other, HEALTH)
        while seen["extensions"]["access"]["policyVersion"] != new_version and time.monotonic() - changed_at < 3:
            time.sleep(0.05)
            seen = cases(other, HEALTH)

        assert seen["extensions"]["access"]["policyVersion"] == new_version
        assert time.monotonic() - changed_at < 2.5  # the poll interval is 1 s
        assert column(seen, "assistanceType") == [None] * 10
        assert seen["errors"][0]["path"] == [*NODES, "assistanceType"]


def test_role_change_on_an_instance_behind_the_latest_version_is_refused_clearly_or_applied(
    demo_workspace: Workspace, tmp_path: Path
) -> None:
    url, tokens = fresh_hub_database(tmp_path)
    first, second = hub_services(demo_workspace, url), hub_services(demo_workspace, url)
    with serving(first, url, tokens) as one, serving(second, url, tokens) as other:
        edits = [{"op": "ADD_RULE", "rule": rule("auditor", "*", f"{CASES}.monthlyAmount", "mask", "deny")}]
        caught_up = str(data(change(one, ADMIN, edits, "first change"))["changePolicy"]["version"])
        deadline = time.monotonic() + 3
        while cases(other, HEALTH)["extensions"]["access"]["policyVersion"] != caught_up:
            assert time.monotonic() < deadline, "the second instance never caught up"
            time.sleep(0.02)
        # The second instance has just polled: for about a second it will not see this change.
        undo = [{"op": "REMOVE_RULE", "rule": edits[0]["rule"]}]
        data(change(one, ADMIN, undo, "second change"))

        assigned = other.query(ASSIGN, {"app": HEALTH, "roles": ["auditor", "department_app"], "reason": "audits"})

        assert assigned["extensions"]["access"]["policyVersion"] == caught_up  # it really was behind
        roles = {a["app"]: a["roles"] for a in data(one.query(ROLES))["roleAssignments"]}
        if "errors" in assigned:
            refused = error(assigned)
            assert refused["extensions"]["code"] == "BAD_USER_INPUT", refused
            assert "changed meanwhile" in refused["message"]
            assert roles[HEALTH] == ["department_app"]
        else:
            assert assigned["data"]["assignRoles"] == ["auditor", "department_app"]
            assert roles[HEALTH] == ["auditor", "department_app"]
