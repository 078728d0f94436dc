"""`auditEvents` over the demo, as auditors, stewards and department apps use it, and the abuse
each must not allow: a department app reading another's events, a steward reading events about
other departments' data, the person filter as an oracle of who exists (it counts against the
lookup quota; a refusal by the quota is in the trail as its alert), and any plain identifier in
an answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.demo.workspace import Workspace
from tests.integration.test_leaks import sensitive
from tests.integration.test_lookup_quota import QuotaHub, guesses, serve

PERSONS = "query Persons { populationPersons(first: 5) { nodes { idNumber name } } }"
VISITS = "query Visits { healthVisits(first: 5) { nodes { visitId } } }"
CASES = "query Cases { civilAffairsAssistanceCases(first: 3) { nodes { caseId } } }"
EVENTS = """query Trail($filter: AuditEventFilter, $first: Int, $after: String) {
  auditEvents(filter: $filter, first: $first, after: $after) {
    nodes { position at principal department purpose outcome status code policyVersion personsTouched limit
            operation { hash name documentId } fields { entity field level count } rows { entity count } }
    pageInfo { hasNextPage endCursor }
  }
}"""
CIVIL, HEALTH = "civil-affairs-app", "health-app"


@pytest.fixture(scope="module")
def trail(demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuotaHub]:
    """A demo hub where auditors may look up 3 identifier values an hour, and some traffic."""
    for hub in serve(demo_workspace, tmp_path_factory.mktemp("trail"), {"auditor": 3, "department_app": 1000}):
        assert hub.query(PERSONS, caller=CIVIL, purpose="social_assistance").status_code == 200
        assert hub.query(PERSONS, caller=HEALTH, purpose="health_care").status_code == 200
        assert hub.query(VISITS, caller=HEALTH, purpose="health_care").status_code == 200
        assert hub.query(CASES, caller=CIVIL, purpose="social_assistance").status_code == 200
        yield hub


@pytest.fixture
def tight(demo_workspace: Workspace, tmp_path: Path) -> Iterator[QuotaHub]:
    """A demo hub where auditors may look up 2 identifier values an hour."""
    yield from serve(demo_workspace, tmp_path, {"auditor": 2})


def events(hub: QuotaHub, caller: str, purpose: str | None = None, **variables: Any) -> dict[str, Any]:
    response = hub.query(EVENTS, variables, caller=caller, purpose=purpose)
    return response.json()  # type: ignore[no-any-return]


def nodes(answer: dict[str, Any]) -> list[dict[str, Any]]:
    assert "errors" not in answer, answer
    return answer["data"]["auditEvents"]["nodes"]  # type: ignore[no-any-return]


def code(answer: dict[str, Any]) -> str:
    return answer["errors"][0]["extensions"]["code"]  # type: ignore[no-any-return]


def test_an_auditor_reads_every_event_with_who_what_and_how_released(trail: QuotaHub) -> None:
    found = nodes(events(trail, "auditor", filter={"operation": "Persons"}))
    assert {e["principal"] for e in found} >= {CIVIL, HEALTH}
    civil = next(e for e in found if e["principal"] == CIVIL)
    assert civil["purpose"] == "social_assistance" and civil["outcome"] == "served"
    assert civil["operation"]["name"] == "Persons" and len(civil["operation"]["hash"]) == 64
    assert civil["rows"] == [{"entity": "population.Person", "count": 5}]
    assert {"entity": "population.Person", "field": "idNumber", "level": "PLAIN", "count": 5} in civil["fields"]
    health = next(e for e in found if e["principal"] == HEALTH)
    assert any(f["field"] == "idNumber" and f["level"] == "MASKED" for f in health["fields"])
    assert civil["personsTouched"] == 5 and civil["policyVersion"]
    # Newest first.
    positions = [e["position"] for e in found]
    assert positions == sorted(positions, reverse=True)


def test_filters_by_entity_field_and_decision_pick_the_entry_that_matches(trail: QuotaHub) -> None:
    masked = nodes(
        events(trail, "auditor", filter={"entity": "population.Person", "field": "idNumber", "decision": "MASKED"})
    )
    assert masked and {e["principal"] for e in masked} == {HEALTH}
    plain = nodes(events(trail, "auditor", filter={"entity": "population.Person", "decision": "PLAIN"}))
    assert CIVIL in {e["principal"] for e in plain}
    assert all(e["operation"]["name"] != "Visits" for e in plain)
    visits = nodes(events(trail, "auditor", filter={"entity": "health.Visit"}))
    assert {e["operation"]["name"] for e in visits} == {"Visits"}
    assert nodes(events(trail, "auditor", filter={"outcome": "refused", "principal": "nobody"})) == []
    assert code(events(trail, "auditor", filter={"entity": "nope.Nothing"})) == "BAD_USER_INPUT"
    assert code(events(trail, "auditor", filter={"decision": "LEAKED"})) == "BAD_USER_INPUT"


def test_a_department_app_reads_only_its_own_events(trail: QuotaHub) -> None:
    own = nodes(events(trail, HEALTH, "health_care"))
    assert own and {e["principal"] for e in own} == {HEALTH}
    # Asking for another app's events by name returns nothing, not theirs.
    assert nodes(events(trail, HEALTH, "health_care", filter={"principal": CIVIL})) == []


def test_a_steward_reads_events_about_its_departments_data_only(trail: QuotaHub) -> None:
    assert trail.query(VISITS, caller=HEALTH, purpose="health_care").status_code == 200
    seen = nodes(events(trail, "civil-affairs-steward"))
    assert "Cases" in {e["operation"]["name"] for e in seen}
    for event in seen:
        # About its department's data, or its own query of the trail.
        ours = any(f["entity"].startswith("civil_affairs.") for f in event["fields"])
        assert ours or event["principal"] == "civil-affairs-steward", event
    # Health's visits and the population registry's persons are other departments' data.
    assert nodes(events(trail, "civil-affairs-steward", filter={"entity": "health.Visit"})) == []
    assert nodes(events(trail, "civil-affairs-steward", filter={"operation": "Persons"})) == []


def test_callers_without_a_trail_role_are_refused(trail: QuotaHub) -> None:
    assert code(events(trail, "public")) == "FORBIDDEN"
    assert code(events(trail, "citizen-portal", "citizen_service")) == "FORBIDDEN"


def test_a_district_office_reads_its_own_events_as_a_department_app(trail: QuotaHub) -> None:
    events(trail, "district-office-app", "social_assistance")
    own = nodes(events(trail, "district-office-app", "social_assistance"))
    assert own and {e["principal"] for e in own} == {"district-office-app"}


def test_pages_are_bounded_and_follow_an_opaque_cursor(trail: QuotaHub) -> None:
    first = events(trail, "auditor", first=2)["data"]["auditEvents"]
    assert len(first["nodes"]) == 2 and first["pageInfo"]["hasNextPage"]
    cursor = first["pageInfo"]["endCursor"]
    assert str(first["nodes"][1]["position"]) not in cursor
    second = nodes(events(trail, "auditor", first=2, after=cursor))
    assert second[0]["position"] < first["nodes"][1]["position"]
    assert code(events(trail, "auditor", first=1001)) == "BAD_USER_INPUT"
    # A cursor issued to another caller does not page this one.
    other = events(trail, HEALTH, "health_care", first=1)["data"]["auditEvents"]["pageInfo"]["endCursor"]
    assert code(events(trail, "auditor", first=1, after=other)) == "BAD_USER_INPUT"


def test_every_query_of_the_trail_is_itself_an_event(trail: QuotaHub) -> None:
    events(trail, "auditor", filter={"outcome": "failed"})
    newest = nodes(events(trail, "auditor", first=2))
    assert newest[1]["principal"] == "auditor" and newest[1]["operation"]["name"] == "Trail"


def test_the_person_filter_finds_a_persons_events_and_counts_against_the_quota(trail: QuotaHub) -> None:
    number = trail.query(PERSONS, caller=CIVIL, purpose="social_assistance").json()["data"]["populationPersons"]
    id_number = number["nodes"][0]["idNumber"]
    before = trail.used("auditor")
    found = nodes(events(trail, "auditor", filter={"idNumber": id_number}))
    assert found and all(e["personsTouched"] >= 1 for e in found)
    assert CIVIL in {e["principal"] for e in found}
    assert trail.used("auditor") == before + 1
    # A number of nobody: an empty page, and still one lookup counted.
    assert nodes(events(trail, "auditor", filter={"idNumber": guesses(1)[0]})) == []
    assert trail.used("auditor") == before + 2


def test_the_person_filter_is_no_oracle_past_the_quota(tight: QuotaHub) -> None:
    hub = tight
    for guess in guesses(2):
        assert "errors" not in events(hub, "auditor", filter={"idNumber": guess})
    refused = events(hub, "auditor", filter={"idNumber": guesses(1)[0]})
    assert code(refused) == "LIMIT_EXCEEDED" and refused["data"] is None


def test_the_person_filter_refused_by_the_quota_is_in_the_trail_as_the_quotas_alert(tight: QuotaHub) -> None:
    hub = tight
    for guess in guesses(2):
        assert "errors" not in events(hub, "auditor", filter={"idNumber": guess})
    refused = events(hub, "auditor", filter={"idNumber": guesses(1)[0]})
    assert refused["errors"][0]["extensions"]["scope"] == "lookup_quota"
    newest, *earlier = nodes(events(hub, "auditor", first=3))
    assert (newest["outcome"], newest["code"], newest["limit"]) == ("refused", "LIMIT_EXCEEDED", "lookup_quota")
    assert [e["limit"] for e in earlier] == [None, None]


def test_no_answer_holds_a_plain_identifier(trail: QuotaHub) -> None:
    persons = trail.query(PERSONS, caller=CIVIL, purpose="social_assistance").json()["data"]["populationPersons"]
    id_number = persons["nodes"][0]["idNumber"]
    response = trail.query(EVENTS, {"filter": {"idNumber": id_number}, "first": 1000}, caller="auditor")
    assert id_number not in response.text
    assert not sensitive(response.text), sensitive(response.text)
