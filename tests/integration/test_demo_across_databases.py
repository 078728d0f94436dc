"""The README's example queries run against the demo as written, and give the same answers
when the same data is served from PostgreSQL and MariaDB as from SQLite."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Hub

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_queries() -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(r"```graphql\n(.*?)```", text, flags=re.DOTALL)


QUERIES = readme_queries()

# Filters and order on every scalar kind, compared across the three databases.
SEMANTICS = [
    '{ populationPersons(orderBy: [NAME_ASC], first: 50, filter: {name: {startsWith: "王"}}) { totalCount nodes { idNumber name } } }',
    '{ populationPersons(orderBy: [BIRTH_DATE_DESC], first: 20, filter: {birthDate: {lt: "1950-01-01"}}) { nodes { idNumber birthDate } } }',
    '{ civilAffairsServiceDeliveries(orderBy: [AMOUNT_DESC, DELIVERED_AT_ASC], first: 25, filter: {amount: {gte: "100.00"}, requestId: {isNull: false}}) { totalCount nodes { deliveryId amount deliveredAt } } }',
    '{ hotlineRequests(orderBy: [SATISFACTION_ASC], first: 40, filter: {or: [{status: {eq: "超期"}}, {satisfaction: {lte: 2}}]}) { totalCount nodes { requestId satisfaction status closedAt } pageInfo { hasNextPage endCursor } } }',
    '{ hotlineRequests(first: 10, filter: {category: {contains: "救助"}, receivedAt: {gte: "2026-01-01T00:00:00+08:00"}}) { totalCount nodes { requestId receivedAt } } }',
    "{ financeBudgetLines(orderBy: [PROGRAM_ASC]) { nodes { lineId program amount expenditures { expenditureId amount } } } }",
    # Aggregates: buckets at midnight in the department's zone, averages, text bounds, order by a measure.
    "{ hotlineRequestsAggregate(groupBy: [CATEGORY, STATUS], bucket: {field: RECEIVED_AT, period: QUARTER}, first: 500) { count avg { satisfaction } groups { key { category status bucket } count avg { satisfaction } min { receivedAt } max { districtCode } } } }",
    "{ civilAffairsServiceDeliveriesAggregate(groupBy: [SERVICE_TYPE], bucket: {field: DELIVERED_AT, period: WEEK}, orderBy: [{by: AVG, field: AMOUNT, descending: true}], first: 50) { groups { key { serviceType bucket } count avg { amount } sum { amount } } } }",
    "{ civilAffairsAssistanceCasesAggregate(groupBy: [ASSISTANCE_TYPE], bucket: {field: START_DATE, period: YEAR}) { groups { key { assistanceType bucket } count sum { monthlyAmount householdSize } countDistinct { recipientIdNumber } } } }",
]


# A block may name its caller on its first line: `# as auditor, purpose audit`.
CALLER = re.compile(r"^# as ([a-z-]+), purpose ([a-z_]+)\n")


def run(hub: Hub, query: str) -> dict[str, Any]:
    named = CALLER.match(query)
    if named is not None:
        hub = hub.as_caller(named.group(1), named.group(2))
    result = hub.query(query)
    assert "errors" not in result, result["errors"]
    return result["data"]


def comparable(value: Any) -> Any:
    """Answers with sealed cursors (fresh nonces each time) replaced by whether one was given."""
    if isinstance(value, dict):
        return {k: (v is not None if k == "endCursor" else comparable(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def test_readme_has_example_queries() -> None:
    assert len(QUERIES) >= 3


def test_the_auditors_section_runs_as_the_auditor() -> None:
    audited = [q for q in QUERIES if q.startswith("# as auditor, purpose audit\n")]
    assert any("budgetLineAccountability" in q for q in audited)
    assert any("accountabilityGaps" in q for q in audited)


@pytest.mark.parametrize("query", QUERIES, ids=[f"readme-{i}" for i in range(len(QUERIES))])
def test_readme_query_answers_on_the_demo(demo_hub: Hub, query: str) -> None:
    data = run(demo_hub, query)
    assert all(value is not None for value in data.values())


def test_readme_person_query_joins_departments(demo_hub: Hub) -> None:
    joined = [q for q in QUERIES if "assistanceCases" in q and "pensionAccount" in q]
    assert joined, "the README shows a person with their cases, pension, aid, requests and deliveries"
    person = next(iter(run(demo_hub, joined[0]).values()))
    for relation in ("assistanceCases", "pensionAccount", "hotlineRequests", "civilAffairsDeliveries"):
        assert person[relation], f"the README's person has no {relation}"
    assert any(member["studentAids"] for member in person["householdMembers"])
    assert any(request["civilAffairsDeliveries"] for request in person["hotlineRequests"])


@pytest.mark.parametrize("query", QUERIES + SEMANTICS)
def test_postgresql_answers_like_sqlite(demo_hub: Hub, postgres_hub: Hub, query: str) -> None:
    assert comparable(run(postgres_hub, query)) == comparable(run(demo_hub, query))


@pytest.mark.parametrize("query", QUERIES + SEMANTICS)
def test_mariadb_answers_like_sqlite(demo_hub: Hub, mariadb_hub: Hub, query: str) -> None:
    assert comparable(run(mariadb_hub, query)) == comparable(run(demo_hub, query))


def test_paging_through_a_list_with_cursors_matches_one_read(demo_hub: Hub, postgres_hub: Hub) -> None:
    query = """query($after: String) { hotlineRequests(first: 700, after: $after, orderBy: [CATEGORY_ASC, CLOSED_AT_DESC]) {
        nodes { requestId } pageInfo { hasNextPage endCursor } } }"""
    for hub in (demo_hub, postgres_hub):
        seen: list[str] = []
        after = None
        while True:
            page = hub.query(query, {"after": after})["data"]["hotlineRequests"]
            seen.extend(n["requestId"] for n in page["nodes"])
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert len(seen) == len(set(seen))
        whole = hub.query(
            "{ hotlineRequests(first: 10000, orderBy: [CATEGORY_ASC, CLOSED_AT_DESC]) { totalCount nodes { requestId } } }"
        )["data"]["hotlineRequests"]
        assert seen == [n["requestId"] for n in whole["nodes"]]
        assert len(seen) == whole["totalCount"]
