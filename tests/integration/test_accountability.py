"""The accountability reports over the demo, checked against counts worked out here from the
generator's own data (hub.demo.generate), never by asking the hub another way."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from statistics import median
from typing import Any

import pytest

from hub.demo.generate import generate
from hub.demo.timeline import NOW
from tests.conftest import Hub

DATA = generate()
AS_OF = "2026-06-30T18:00:00+08:00"
DELIVERING = {
    "civil_affairs": "ca_service_delivery",
    "human_resources": "hr_service_delivery",
    "education": "edu_service_delivery",
}
# The hotline manifest's demand mapping, as the generator's needs say it (hub/demo/needs.py).
ANSWERS = {
    "社会救助": {("civil_affairs", "临时救助金发放"), ("civil_affairs", "低保金发放")},
    "养老": {("civil_affairs", "居家养老服务")},
    "就业": {("human_resources", "职业技能培训补贴"), ("human_resources", "一次性创业补贴")},
    "教育": {("education", "家庭经济困难学生临时补助")},
}
BASES = {"civil_affairs": "case_id", "education": "aid_id"}
DELIVERIES = [(d, row) for d, table in DELIVERING.items() for row in DATA[d][table]]
REQUESTS = DATA["hotline"]["hl_request"]
FEEDBACK = DATA["hotline"]["hl_feedback"]
EXPENDITURES = DATA["finance"]["fin_expenditure"]
ANSWERED_ANYWHERE = {row["request_id"] for _, row in DELIVERIES if row["request_id"] is not None}

LINES = """
query Lines($filter: BudgetLineFilter) {
  budgetLineAccountability(filter: $filter, first: 1000) {
    totalCount
    nodes {
      lineId department fiscalYear programme allocated spent expenditures servicesDelivered
      services { department serviceType deliveries amount }
      districts requestsAnswered requestsUnanswered feedbackCount meanSatisfaction
      costPerAnsweredRequest medianResponseHours p90ResponseHours
      gaps { spendWithoutService serviceWithoutBasis overdueUnanswered }
      suppressed withheld
    }
  }
}
"""

GAPS = """
query Gaps($kind: GapKind!, $filter: GapsFilter) {
  accountabilityGaps(kind: $kind, filter: $filter, first: 10000) {
    totalCount
    nodes { kind ref group { department serviceType category districtCode } figures { name value } }
  }
}
"""


def _types(department: str) -> set[str]:
    return {s for pairs in ANSWERS.values() for d, s in pairs if d == department}


def _without_basis(department: str, row: dict[str, Any]) -> bool:
    basis = BASES.get(department)
    return (
        row["request_id"] is None
        and row["service_type"] in _types(department)
        and (basis is None or row[basis] is None)
    )


def _open_unanswered(row: dict[str, Any]) -> bool:
    return row["closed_at"] is None and row["request_id"] not in ANSWERED_ANYWHERE


def expected_line(line_id: str, department: str, year: int) -> dict[str, Any]:
    spent = [e for e in EXPENDITURES if e["budget_line_id"] == line_id]
    ids = {e["expenditure_id"] for e in spent}
    paid = [(d, r) for d, r in DELIVERIES if r["expenditure_id"] in ids]
    first: dict[str, datetime] = {}
    for _, row in paid:
        if row["request_id"] is not None:
            at = row["delivered_at"]
            first[row["request_id"]] = min(first.get(row["request_id"], at), at)
    received = {r["request_id"]: r["received_at"] for r in REQUESTS}
    hours = sorted((first[r] - received[r]).total_seconds() / 3600 for r in first)
    districts = {r["district_code"] for _, r in paid}
    categories = {c for c, pairs in ANSWERS.items() for d, r in paid if (d, r["service_type"]) in pairs}
    scope = [
        r
        for r in REQUESTS
        if r["category"] in categories and r["district_code"] in districts and r["received_at"].year == year
    ]
    rated = [f["satisfaction"] for f in FEEDBACK if f["request_id"] in first]
    funded = {r["expenditure_id"] for _, r in paid}
    return {
        "expenditures": len(spent),
        "spent": str(sum((e["amount"] for e in spent), Decimal(0))) if spent else None,
        "servicesDelivered": len(paid),
        "requestsAnswered": len(first),
        "requestsUnanswered": sum(1 for r in scope if _open_unanswered(r)),
        "overdueUnanswered": sum(1 for r in scope if _open_unanswered(r) and r["deadline"] < NOW),
        "feedbackCount": len(rated),
        "meanSatisfaction": sum(rated) / len(rated) if rated else None,
        "medianResponseHours": median(hours) if hours else None,
        "serviceWithoutBasis": sum(1 for d, r in paid if _without_basis(d, r)),
        "spendWithoutService": len(ids - funded) if department in DELIVERING else 0,
    }


def test_every_budget_line_s_figures_match_the_generated_data(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    result = auditor.query(LINES, {"filter": {"asOf": AS_OF}})
    assert "errors" not in result, result["errors"]
    nodes = result["data"]["budgetLineAccountability"]["nodes"]
    assert len(nodes) == len(DATA["finance"]["fin_budget_line"])
    for node in nodes:
        want = expected_line(node["lineId"], node["department"], node["fiscalYear"])
        got = {
            "expenditures": node["expenditures"],
            "spent": node["spent"],
            "servicesDelivered": node["servicesDelivered"],
            "requestsAnswered": node["requestsAnswered"],
            "requestsUnanswered": node["requestsUnanswered"],
            "overdueUnanswered": node["gaps"]["overdueUnanswered"],
            "feedbackCount": node["feedbackCount"],
            "meanSatisfaction": node["meanSatisfaction"],
            "medianResponseHours": node["medianResponseHours"],
            "serviceWithoutBasis": node["gaps"]["serviceWithoutBasis"],
            "spendWithoutService": node["gaps"]["spendWithoutService"],
        }
        for name in ("meanSatisfaction", "medianResponseHours"):
            if want[name] is not None:
                assert got[name] == pytest.approx(want[name]), (node["lineId"], name)
                got[name] = want[name]
        assert got == want, node["lineId"]
        assert node["suppressed"] == [] and node["withheld"] == []


def test_the_readme_budget_line_answered_requests_at_a_cost(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    result = auditor.query(LINES, {"filter": {"fiscalYear": 2026, "department": "civil_affairs", "asOf": AS_OF}})
    line = next(n for n in result["data"]["budgetLineAccountability"]["nodes"] if n["lineId"] == "BL2026-CA-03")
    assert line["requestsAnswered"] > 0 and line["costPerAnsweredRequest"] is not None
    assert Decimal(line["costPerAnsweredRequest"]) == (Decimal(line["spent"]) / line["requestsAnswered"]).quantize(
        Decimal("0.01")
    )
    assert line["p90ResponseHours"] >= line["medianResponseHours"] > 0


def expected_gaps() -> dict[str, int]:
    spending = {e["expenditure_id"] for e in EXPENDITURES if e["department"] in DELIVERING}
    funded = {r["expenditure_id"] for _, r in DELIVERIES}
    return {
        "SPEND_WITHOUT_SERVICE": len(spending - funded),
        "SERVICE_WITHOUT_BASIS": sum(1 for d, r in DELIVERIES if _without_basis(d, r)),
        "OVERDUE_UNANSWERED": sum(1 for r in REQUESTS if _open_unanswered(r) and r["deadline"] < NOW),
    }


def test_gaps_of_each_record_kind_are_the_generated_numbers(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    for kind, count in expected_gaps().items():
        assert count > 0, kind
        result = auditor.query(GAPS, {"kind": kind, "filter": {"asOf": AS_OF}})
        assert "errors" not in result, result["errors"]
        answer = result["data"]["accountabilityGaps"]
        assert answer["totalCount"] == count, kind
        assert len({n["ref"] for n in answer["nodes"]}) == count


def _feedback_groups() -> tuple[dict[tuple[str, str, str], int], dict[tuple[str, str, str], float]]:
    rated: dict[str, list[int]] = defaultdict(list)
    for f in FEEDBACK:
        rated[f["request_id"]].append(f["satisfaction"])
    without: dict[tuple[str, str, str], int] = defaultdict(int)
    scores: dict[tuple[str, str, str], dict[str, list[int]]] = defaultdict(dict)
    for d, r in DELIVERIES:
        if r["request_id"] is None:
            continue
        key = (d, r["service_type"], r["district_code"])
        if r["request_id"] in rated:
            scores[key][r["request_id"]] = rated[r["request_id"]]
        else:
            without[key] += 1
    means = {}
    for key, per_request in scores.items():
        values = [v for vs in per_request.values() for v in vs]
        means[key] = sum(values) / len(values)
    return dict(without), means


def test_group_gaps_are_the_generated_numbers(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    without, means = _feedback_groups()
    result = auditor.query(GAPS, {"kind": "SERVICE_WITHOUT_FEEDBACK"})
    got = {
        (n["group"]["department"], n["group"]["serviceType"], n["group"]["districtCode"]): n["figures"][1]["value"]
        for n in result["data"]["accountabilityGaps"]["nodes"]
    }
    assert got == {k: float(v) for k, v in without.items()}
    result = auditor.query(GAPS, {"kind": "LOW_SATISFACTION"})
    low = {k for k, m in means.items() if m < 3.0}
    # The generator's badly run home care (hub.demo.hotline.POORLY_SERVED), and nothing else.
    assert low == {("civil_affairs", "居家养老服务", "330127")}
    got_low = {
        (n["group"]["department"], n["group"]["serviceType"], n["group"]["districtCode"])
        for n in result["data"]["accountabilityGaps"]["nodes"]
    }
    assert got_low == low
    requests: dict[tuple[str, str], int] = defaultdict(int)
    for r in REQUESTS:
        requests[(r["category"], r["district_code"])] += 1
    paid = {(d, r["service_type"], r["district_code"]) for d, r in DELIVERIES if r["expenditure_id"] is not None}
    want = {
        key
        for key, n in requests.items()
        if n >= 20 and not any((d, s, key[1]) in paid for d, s in ANSWERS.get(key[0], ()))
    }
    result = auditor.query(GAPS, {"kind": "DEMAND_WITHOUT_BUDGET"})
    got_demand = {
        (n["group"]["category"], n["group"]["districtCode"]) for n in result["data"]["accountabilityGaps"]["nodes"]
    }
    assert want and got_demand == want


def _line(hub: Hub, line_id: str) -> dict[str, Any]:
    result = hub.query(LINES, {"filter": {"fiscalYear": int(line_id[2:6]), "asOf": AS_OF}})
    assert "errors" not in result, result["errors"]
    return next(n for n in result["data"]["budgetLineAccountability"]["nodes"] if n["lineId"] == line_id)


def test_a_department_app_asking_the_same_gets_small_cells_suppressed(demo_hub: Hub) -> None:
    auditor = _line(demo_hub.as_caller("auditor", "audit"), "BL2026-HR-02")
    app = _line(demo_hub.as_caller("civil-affairs-app", "social_assistance"), "BL2026-HR-02")
    assert auditor["requestsAnswered"] > 0 and auditor["suppressed"] == []
    # Each answered request is one person: a cell of one, below the app's k = 5.
    assert app["requestsAnswered"] is None and app["medianResponseHours"] is None
    assert {"requestsAnswered", "responseHours"} <= set(app["suppressed"])


def test_amounts_masked_to_a_department_app_are_not_summed(demo_hub: Hub) -> None:
    app = _line(demo_hub.as_caller("civil-affairs-app", "social_assistance"), "BL2026-HR-02")
    # Human resources' delivery amounts reach civil affairs rounded (L3 masked): never summed plain.
    assert all(s["amount"] is None for s in app["services"])
    assert "services.amount" in app["withheld"]
    # Finance's spending is internal (L2): plain, and summed.
    assert app["spent"] == _line(demo_hub.as_caller("auditor", "audit"), "BL2026-HR-02")["spent"]


def test_a_district_office_s_report_covers_its_district_only(demo_hub: Hub) -> None:
    office = demo_hub.as_caller("district-office-app", "social_assistance")
    result = office.query(LINES, {"filter": {"fiscalYear": 2026, "department": "civil_affairs", "asOf": AS_OF}})
    assert "errors" not in result, result["errors"]
    for node in result["data"]["budgetLineAccountability"]["nodes"]:
        assert set(node["districts"]) <= {"330102"}


def test_the_public_cannot_read_the_report_s_person_data(demo_hub: Hub) -> None:
    result = demo_hub.as_caller("public").query(LINES, {"filter": {"asOf": AS_OF}})
    assert result["data"] is None or result["data"]["budgetLineAccountability"] is None
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_the_auditor_sees_hr_amounts_plain_and_names_masked(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    result = auditor.query(
        "{ humanResourcesServiceDeliveries(first: 3) { nodes { amount recipientName idNumber } }"
        " educationStudentAids(first: 3) { nodes { amount studentName studentIdNumber } } }"
    )
    access = result["extensions"]["access"]
    masked = set(access.get("masked", []))
    for path in ("humanResourcesServiceDeliveries/nodes/*/recipientName", "educationStudentAids/nodes/*/studentName"):
        assert path in masked
    assert not any(p.endswith("/amount") for p in masked)
    assert result["data"]["humanResourcesServiceDeliveries"]["nodes"][0]["amount"] is not None


def test_unknown_gap_kind_and_oversized_page_are_refused(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    result = auditor.query("{ accountabilityGaps(kind: EVERYTHING) { totalCount } }")
    assert result["errors"]
    result = auditor.query("{ budgetLineAccountability(first: 100000) { totalCount } }")
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


DRILL = """
query Drill($line: String!, $open: HotlineRequestFilter!) {
  financeExpenditures(filter: { budgetLineId: { eq: $line } }) { totalCount }
  civilAffairsServiceDeliveries(filter: { expenditure: { some: { budgetLineId: { eq: $line } } } }) { totalCount }
  hotlineRequests(
    filter: { civilAffairsDeliveries: { some: { expenditure: { some: { budgetLineId: { eq: $line } } } } } }
  ) { totalCount }
  hotlineFeedbacks(
    filter: { request: { some: { civilAffairsDeliveries: { some: { expenditure: { some: { budgetLineId: { eq: $line } } } } } } } }
  ) { totalCount }
  unanswered: hotlineRequests(filter: $open) { totalCount }
}
"""


def test_each_figure_of_a_line_is_the_total_of_its_documented_list_query(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    line = _line(auditor, "BL2026-CA-03")
    categories = ["社会救助"]  # what 临时救助金发放 answers, in the hotline's demand mapping
    none = {"none": {"requestId": {"isNull": False}}}
    open_filter = {
        "closedAt": {"isNull": True},
        "category": {"in": categories},
        "districtCode": {"in": line["districts"]},
        "receivedAt": {"gte": "2026-01-01T00:00:00+08:00", "lt": "2027-01-01T00:00:00+08:00"},
        "civilAffairsDeliveries": none,
        "humanResourcesDeliveries": none,
        "educationDeliveries": none,
    }
    result = auditor.query(DRILL, {"line": "BL2026-CA-03", "open": open_filter})
    assert "errors" not in result, result["errors"]
    data = result["data"]
    assert data["financeExpenditures"]["totalCount"] == line["expenditures"]
    assert data["civilAffairsServiceDeliveries"]["totalCount"] == line["servicesDelivered"]
    assert data["hotlineRequests"]["totalCount"] == line["requestsAnswered"]
    assert data["hotlineFeedbacks"]["totalCount"] == line["feedbackCount"]
    assert data["unanswered"]["totalCount"] == line["requestsUnanswered"]


def test_a_gap_carries_its_record_through_the_auditor_s_plan_names_masked(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    query = """query($filter: GapsFilter) { accountabilityGaps(kind: OVERDUE_UNANSWERED, filter: $filter, first: 3) {
      nodes { ref record { ... on HotlineRequest { requestId callerName content deadline } } } } }"""
    result = auditor.query(query, {"filter": {"asOf": AS_OF, "district": "330106"}})
    nodes = result["data"]["accountabilityGaps"]["nodes"]
    assert len(nodes) == 3
    requests = {r["request_id"]: r for r in REQUESTS}
    for node in nodes:
        record = node["record"]
        assert node["ref"] == f"hotline:Request:{record['requestId']}"
        plain = requests[record["requestId"]]
        assert record["callerName"] != plain["caller_name"] and record["callerName"][0] == plain["caller_name"][0]
        assert record["content"] is None
    assert any(e["extensions"]["code"] == "FORBIDDEN" for e in result["errors"])  # the request text, withheld
    result = auditor.query(
        GAPS.replace("figures { name value }", "figures { name value } record { __typename }"),
        {"kind": "LOW_SATISFACTION", "filter": {"asOf": AS_OF}},
    )
    assert all(n["record"] is None for n in result["data"]["accountabilityGaps"]["nodes"])
