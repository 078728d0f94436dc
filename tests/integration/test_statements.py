"""No N+1: one statement per entity and nesting level, and only the selected columns, counted
on the demo's SQLite databases through the connectors' engines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from hub.services import Services
from tests.conftest import Hub


class Statements:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def by_department(self, department: str) -> list[str]:
        return [sql for d, sql in self.seen if d == department]


@pytest.fixture
def statements(demo_services: Services) -> Iterator[Statements]:
    recorder = Statements()
    listeners: list[tuple[Any, Any]] = []
    for department, connector in demo_services.connectors.items():
        engine = connector.engine.sync_engine  # type: ignore[attr-defined]

        def listen(conn: Any, cursor: Any, statement: str, *args: Any, department: str = department) -> None:
            recorder.seen.append((department, statement))

        event.listen(engine, "before_cursor_execute", listen)
        listeners.append((engine, listen))
    yield recorder
    for engine, listen in listeners:
        event.remove(engine, "before_cursor_execute", listen)


PERSONS_WITH_EVERYTHING = """
{ populationPersons(first: 500) {
    nodes { idNumber name
      assistanceCases { caseId assistanceType }
      pensionAccount { accountNo monthlyPension }
      hotlineRequests { requestId category }
    } } }
"""


def test_500_persons_with_cases_pensions_and_requests_take_four_statements(
    demo_hub: Hub, statements: Statements
) -> None:
    result = demo_hub.query(PERSONS_WITH_EVERYTHING)
    assert "errors" not in result
    nodes = result["data"]["populationPersons"]["nodes"]
    assert len(nodes) == 500
    assert any(n["assistanceCases"] for n in nodes)
    assert any(n["pensionAccount"] for n in nodes)
    assert any(n["hotlineRequests"] for n in nodes)
    assert len(statements.seen) == 4
    assert {d for d, _ in statements.seen} == {"population", "civil_affairs", "human_resources", "hotline"}


def test_deeper_nesting_adds_one_statement_per_level(demo_hub: Hub, statements: Statements) -> None:
    result = demo_hub.query(
        """{ hotlineRequests(first: 300) { nodes { requestId
               civilAffairsDeliveries { deliveryId expenditure { expenditureId budgetLine { lineId program } } }
               caller { name } } } }"""
    )
    assert "errors" not in result
    # requests, deliveries, expenditures, budget lines, callers
    assert len(statements.seen) == 5


def test_total_count_costs_one_statement_only_when_selected(demo_hub: Hub, statements: Statements) -> None:
    demo_hub.query("{ civilAffairsServiceDeliveries(first: 10) { nodes { deliveryId } } }")
    assert len(statements.seen) == 1
    demo_hub.query("{ civilAffairsServiceDeliveries(first: 10) { totalCount nodes { deliveryId } } }")
    assert len(statements.seen) == 3


def test_only_selected_columns_are_fetched(demo_hub: Hub, statements: Statements) -> None:
    demo_hub.query("{ populationPersons(first: 5) { nodes { name } } }")
    (sql,) = statements.by_department("population")
    select_list = sql.split("FROM")[0]
    assert "name" in select_list and "id_number" in select_list
    for column in ("address", "mobile", "birth_date", "household_id"):
        assert column not in select_list


def test_a_relation_list_with_a_filter_order_and_page_takes_one_statement(
    demo_hub: Hub, statements: Statements
) -> None:
    query = """{ financeBudgetLines(first: 50) { nodes { lineId
        expenditures(first: 2, orderBy: [AMOUNT_DESC], filter: {amount: {lt: "50000"}}) { expenditureId } } } }"""
    result = demo_hub.as_caller("auditor").query(query)
    assert "errors" not in result, result
    assert any(len(n["expenditures"]) == 2 for n in result["data"]["financeBudgetLines"]["nodes"])
    # One statement for the lines, one for every line's expenditures, in the same database.
    assert len(statements.by_department("finance")) == 2
    (window,) = [sql for sql in statements.by_department("finance") if "row_number" in sql.lower()]
    assert "amount" in window.lower()


def test_a_relation_filter_takes_one_statement_on_each_side(demo_hub: Hub, statements: Statements) -> None:
    query = "{ hotlineRequests(first: 5, filter: {civilAffairsDeliveries: {none: {}}}) { nodes { requestId } } }"
    result = demo_hub.as_caller("auditor").query(query)
    assert "errors" not in result, result
    assert len(statements.by_department("civil_affairs")) == 1
    assert len(statements.by_department("hotline")) == 1


def test_a_trace_takes_one_statement_per_entity_per_hop(demo_hub: Hub, statements: Statements) -> None:
    query = """{ trace(from: "finance:BudgetLine:BL2026-CA-01", direction: DOWNSTREAM, depth: 3, maxNodes: 5000) {
        truncated nodes { depth entity record { ... on FinanceExpenditure { amount } } } } }"""
    result = demo_hub.as_caller("auditor", "audit").query(query)
    assert "errors" not in result, result
    found = result["data"]["trace"]
    assert found["truncated"] is False
    by_hop: dict[int, set[str]] = {}
    for node in found["nodes"]:
        by_hop.setdefault(node["depth"], set()).add(node["entity"])
    # The start, then per hop one statement for each entity read (hop 3 reads what hop 2's
    # records point at, whether or not new records come back).
    assert by_hop[1] == {"FinanceExpenditure"} and by_hop[2] == {"CivilAffairsServiceDelivery"}
    assert by_hop[3] == {"HotlineRequest", "HotlineFeedback", "CivilAffairsAssistanceCase", "PopulationPerson"}
    assert len(statements.by_department("finance")) == 2  # the line, then its expenditures
    assert len(statements.by_department("civil_affairs")) == 2  # deliveries (hop 2), cases (hop 3)
    assert len(statements.by_department("hotline")) == 2  # requests and feedback (hop 3)
    assert len(statements.by_department("population")) == 1  # persons (hop 3)
    # Hop 2 also asks education's and human resources' deliveries (an expenditure may fund
    # any department's): one statement each, none answered.
    assert len(statements.by_department("education")) == len(statements.by_department("human_resources")) == 1
    assert len(statements.seen) == 9
    assert len(found["nodes"]) > 1800
