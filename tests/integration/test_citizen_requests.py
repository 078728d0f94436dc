"""`citizenRequests` over the demo: a citizen-facing app shows one person what came of each
request they made, checked against the generator's data; and what it must refuse: every other
caller, another purpose, guessing past the lookup quota; and what it never releases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hub.demo.generate import generate
from hub.demo.workspace import Workspace
from tests.integration.test_lookup_quota import QuotaHub, guesses, serve

PORTAL, SERVICE = "citizen-portal", "citizen_service"
PERSON = "330106198806144246"  # the README's example person
DATA = generate()
TABLES = {"civil_affairs": "ca_service_delivery", "human_resources": "hr_service_delivery"}
TABLES["education"] = "edu_service_delivery"
OUTCOMES = """query Outcomes($id: String!) {
  citizenRequests(idNumber: $id) {
    requestId category receivedAt status deadline closedAt answered overdue
    services { department serviceType deliveredAt budgetLineId programme }
    feedback { satisfaction submittedAt }
  }
}"""


@pytest.fixture(scope="module")
def portal(demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuotaHub]:
    yield from serve(demo_workspace, tmp_path_factory.mktemp("citizen"), {"citizen_portal": 4})


def outcomes(hub: QuotaHub, id_number: str, caller: str = PORTAL, purpose: str | None = SERVICE) -> dict[str, Any]:
    return hub.query(OUTCOMES, {"id": id_number}, caller=caller, purpose=purpose).json()  # type: ignore[no-any-return]


def _busiest_answered_caller() -> str:
    answered = {r["request_id"] for t in TABLES.items() for r in DATA[t[0]][t[1]] if r["request_id"]}
    callers = [r["caller_id_number"] for r in DATA["hotline"]["hl_request"] if r["request_id"] in answered]
    return max(sorted(set(callers)), key=callers.count)


def test_a_citizen_sees_each_request_with_the_service_the_department_and_the_budget_line(portal: QuotaHub) -> None:
    person = _busiest_answered_caller()
    answer = outcomes(portal, person)
    assert "errors" not in answer, answer["errors"]
    got = answer["data"]["citizenRequests"]
    mine = [r for r in DATA["hotline"]["hl_request"] if r["caller_id_number"] == person]
    assert [r["requestId"] for r in got] == sorted((r["request_id"] for r in mine), reverse=True)
    lines = {e["expenditure_id"]: e["budget_line_id"] for e in DATA["finance"]["fin_expenditure"]}
    for item in got:
        want = sorted(
            (department, row["service_type"], lines.get(row["expenditure_id"]))
            for department, table in TABLES.items()
            for row in DATA[department][table]
            if row["request_id"] == item["requestId"]
        )
        assert sorted((s["department"], s["serviceType"], s["budgetLineId"]) for s in item["services"]) == want
        assert item["answered"] == bool(want)
        scores = [f["satisfaction"] for f in DATA["hotline"]["hl_feedback"] if f["request_id"] == item["requestId"]]
        assert [f["satisfaction"] for f in item["feedback"]] == scores
    assert any(s["programme"] for item in got for s in item["services"])


def test_the_readme_person_sees_their_two_requests(portal: QuotaHub) -> None:
    answer = outcomes(portal, PERSON)
    assert [r["requestId"] for r in answer["data"]["citizenRequests"]] == ["HL202602010012", "HL202501030004"]


def test_no_identifier_name_text_or_amount_is_released(portal: QuotaHub) -> None:
    answer = outcomes(portal, PERSON)
    text = str(answer)
    mine = next(r for r in DATA["hotline"]["hl_request"] if r["caller_id_number"] == PERSON)
    for secret in (PERSON, mine["caller_name"], mine["caller_mobile"], mine["content"]):
        assert secret not in text


def test_only_the_citizen_portal_stating_citizen_service_may_ask(portal: QuotaHub) -> None:
    for caller, purpose in (
        ("auditor", SERVICE),
        ("auditor", "audit"),
        ("civil-affairs-app", SERVICE),
        ("platform-admin", SERVICE),
        (PORTAL, "hotline_service"),
        (PORTAL, None),
    ):
        answer = outcomes(portal, PERSON, caller, purpose)
        assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN", (caller, purpose, answer)
        assert answer["data"] is None


def test_each_person_looked_up_counts_and_guessing_past_the_quota_is_refused(portal: QuotaHub) -> None:
    before = portal.used(PORTAL)
    answer = outcomes(portal, guesses(1)[0])
    assert answer["data"]["citizenRequests"] == []
    assert portal.used(PORTAL) == before + 1
    codes = [
        a["errors"][0]["extensions"]["code"] if "errors" in a else None
        for a in map(lambda g: outcomes(portal, g), guesses(6))
    ]
    assert codes[-1] == "LIMIT_EXCEEDED"


def test_a_malformed_number_is_refused_before_any_lookup(portal: QuotaHub) -> None:
    answer = outcomes(portal, "x" * 100)
    assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
