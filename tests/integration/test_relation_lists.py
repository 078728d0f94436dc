"""A relation's list takes a filter, an order and a page (`first`) as a root list does, kept per
parent in one statement per relation and level, on SQLite, PostgreSQL and MariaDB and on a hub
whose departments are spread over the three; and none of them reaches past what the caller may
filter, order by or see.

What each list should hold is worked out here from the root list of the related rows.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import Hub
from tests.integration.test_relation_filters import DISTRICT, data

BACKENDS = ["demo_hub", "postgres_hub", "mariadb_hub", "mixed_hub"]


@pytest.fixture(params=BACKENDS)
def hub(request: pytest.FixtureRequest) -> Hub:
    found: Hub = request.getfixturevalue(request.param)
    return found


def expenditures(hub: Hub) -> dict[str, list[dict[str, Any]]]:
    """Every expenditure by budget line, from the root list."""
    query = "{ financeExpenditures(first: 10000) { nodes { expenditureId budgetLineId amount } } }"
    by_line: dict[str, list[dict[str, Any]]] = {}
    for row in data(hub, query)["financeExpenditures"]["nodes"]:
        by_line.setdefault(row["budgetLineId"], []).append(row)
    return by_line


def test_each_parent_keeps_its_first_matching_rows_in_the_order_asked(hub: Hub) -> None:
    auditor = hub.as_caller("auditor")
    by_line = expenditures(auditor)
    query = """{ financeBudgetLines(first: 100) { nodes { lineId
        expenditures(first: 3, orderBy: [AMOUNT_DESC], filter: {amount: {lt: "50000"}}) { expenditureId amount } } } }"""
    result = auditor.query(query)
    assert "errors" not in result, result
    lines = result["data"]["financeBudgetLines"]["nodes"]
    truncated = set()
    for index, line in enumerate(lines):
        matching = [row for row in by_line.get(line["lineId"], []) if Decimal(row["amount"]) < 50000]
        # Largest amount first, ties by key.
        matching.sort(key=lambda row: row["expenditureId"])
        matching.sort(key=lambda row: Decimal(row["amount"]), reverse=True)
        assert line["expenditures"] == [
            {"expenditureId": r["expenditureId"], "amount": r["amount"]} for r in matching[:3]
        ]
        if len(matching) > 3:
            truncated.add(("financeBudgetLines", "nodes", index, "expenditures"))
    assert truncated, "some line has more than three such expenditures"
    reported = {tuple(path) for path in result["extensions"]["access"]["truncated"]}
    assert reported == truncated


def test_a_relation_list_takes_its_arguments_from_variables_as_from_literals(hub: Hub) -> None:
    auditor = hub.as_caller("auditor")
    literal = """{ financeBudgetLines(first: 20) { nodes { lineId
        expenditures(first: 2, orderBy: [PAID_AT_ASC], filter: {amount: {gt: "10000"}}) { expenditureId } } } }"""
    variables = """query($n: Int, $o: [FinanceExpenditureOrderBy!], $f: FinanceExpenditureFilter) {
        financeBudgetLines(first: 20) { nodes { lineId expenditures(first: $n, orderBy: $o, filter: $f) { expenditureId } } } }"""
    given = {"n": 2, "o": ["PAID_AT_ASC"], "f": {"amount": {"gt": "10000"}}}
    assert data(auditor, literal) == auditor.query(variables, given)["data"]


def test_two_aliases_of_one_relation_keep_their_own_arguments(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor")
    query = """{ financeBudgetLines(first: 5) { nodes {
        big: expenditures(first: 1, orderBy: [AMOUNT_DESC]) { amount }
        small: expenditures(first: 1, orderBy: [AMOUNT_ASC]) { amount } } } }"""
    for line in data(auditor, query)["financeBudgetLines"]["nodes"]:
        if line["big"]:
            assert Decimal(line["big"][0]["amount"]) >= Decimal(line["small"][0]["amount"])


def test_a_relation_list_filters_on_related_records_of_its_own(hub: Hub) -> None:
    auditor = hub.as_caller("auditor")
    recent = '{deliveredAt: {gte: "2026-03-01T00:00:00+08:00"}, expenditureId: {isNull: false}}'
    deliveries = "{ civilAffairsServiceDeliveries(first: 10000, filter: " + recent + ") { nodes { expenditureId } } }"
    funded = {row["expenditureId"] for row in data(auditor, deliveries)["civilAffairsServiceDeliveries"]["nodes"]}
    query = (
        "{ financeBudgetLines(first: 100) { nodes { expenditures(first: 1000, filter: {civilAffairsDeliveries: "
        '{some: {deliveredAt: {gte: "2026-03-01T00:00:00+08:00"}}}}) { expenditureId } } } }'
    )
    listed = {
        e["expenditureId"] for line in data(auditor, query)["financeBudgetLines"]["nodes"] for e in line["expenditures"]
    }
    everyone = {row["expenditureId"] for rows in expenditures(auditor).values() for row in rows}
    assert listed and listed == funded & everyone


def test_the_default_and_largest_page_per_parent_hold(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor")
    result = auditor.query("{ populationDistricts { nodes { residents { districtCode } } } }")
    nodes = result["data"]["populationDistricts"]["nodes"]
    assert {len(n["residents"]) for n in nodes} == {100}  # each district has more residents
    assert result["extensions"]["access"]["truncatedCount"] == len(nodes)
    larger = data(auditor, "{ populationDistricts { nodes { residents(first: 1000) { districtCode } } } }")
    assert max(len(n["residents"]) for n in larger["populationDistricts"]["nodes"]) > 100
    for first, code in ((1001, "LIMIT_EXCEEDED"), (0, "BAD_USER_INPUT")):
        query = "{ financeBudgetLines(first: 1) { nodes { expenditures(first: " + str(first) + ") { amount } } } }"
        result = auditor.query(query)
        assert result["data"]["financeBudgetLines"]["nodes"] == [{"expenditures": None}]
        assert [e["extensions"]["code"] for e in result["errors"]] == [code]


# --- abuse ------------------------------------------------------------------------------------


def test_a_relation_list_cannot_filter_or_order_by_a_field_hidden_from_the_caller(demo_hub: Hub) -> None:
    # Civil affairs' delivery amounts are masked to the health app.
    health = demo_hub.as_caller("health-app", "health_care")
    for arguments in ('filter: {amount: {gt: "100"}}', "orderBy: [AMOUNT_DESC]"):
        query = "{ hotlineRequests(first: 50) { nodes { civilAffairsDeliveries(" + arguments + ") { deliveryId } } } }"
        result = health.query(query)
        codes = {e["extensions"]["code"] for e in result["errors"]}
        fields = {e["extensions"].get("field") for e in result["errors"]}
        assert codes == {"FORBIDDEN"}
        assert fields == {"CivilAffairsServiceDelivery.amount"}


def test_a_district_office_lists_only_related_rows_of_its_district_whatever_the_filter(demo_hub: Hub) -> None:
    office = demo_hub.as_caller("district-office-app")
    query = (
        "{ financeExpenditures(first: 2000) { nodes { civilAffairsDeliveries(first: 1000, filter: "
        '{districtCode: {ne: "'
        + DISTRICT
        + '"}}) { deliveryId } inDistrict: civilAffairsDeliveries { districtCode } } } }'
    )
    nodes = data(office, query)["financeExpenditures"]["nodes"]
    assert all(n["civilAffairsDeliveries"] == [] for n in nodes)
    assert {d["districtCode"] for n in nodes for d in n["inDistrict"]} == {DISTRICT}


def test_a_relation_list_the_caller_may_not_follow_stays_null_whatever_its_arguments(demo_hub: Hub) -> None:
    public = demo_hub.as_caller("public")
    result = public.query("{ financeBudgetLines(first: 3) { nodes { lineId expenditures(first: 5) { amount } } } }")
    assert all(n["expenditures"] is None for n in result["data"]["financeBudgetLines"]["nodes"])
    assert {e["extensions"]["code"] for e in result["errors"]} == {"FORBIDDEN"}
