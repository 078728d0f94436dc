"""Filters on related records in another department's database (`some`, `none`, `every`), run
as key-set semi-joins, on SQLite, PostgreSQL and MariaDB, and on a hub whose departments are
spread over the three; and every way a caller might turn one into an oracle, refused.

What each filter should select is worked out here from plain lists the caller could read
anyway, never from the hub's relation filters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hub.config import load_settings
from hub.demo.workspace import Workspace
from hub.services import build_services
from tests.conftest import Hub
from tests.integration.conftest import _serve, _tokens

BACKENDS = ("demo_hub", "postgres_hub", "mariadb_hub", "mixed_hub")
DISTRICT = "330102"


@pytest.fixture(scope="module")
def bounded_hub(demo_workspace: Workspace) -> Iterator[Hub]:
    """The SQLite demo with small bounds: 50 related rows per key set, a cost of 50,000."""
    settings = load_settings(
        {"HUB_MAX_SEMIJOIN_KEYS": "50", "HUB_MAX_COST": "50000"},
        database_url=demo_workspace.hub_database.render_as_string(),
        manifests_dir=demo_workspace.manifests,
        master_key_file=demo_workspace.master_key_file,
    )
    yield from _serve(build_services(settings), _tokens(demo_workspace))


@pytest.fixture(params=BACKENDS)
def hub(request: pytest.FixtureRequest) -> Hub:
    found: Hub = request.getfixturevalue(request.param)
    return found


def data(hub: Hub, query: str) -> dict[str, Any]:
    result = hub.query(query)
    assert "errors" not in result, result["errors"]
    return result["data"]


def refusal(hub: Hub, query: str) -> dict[str, Any]:
    """The one error of a refused list, whose data is null."""
    result = hub.query(query)
    assert result.get("data") is None or all(v is None for v in result["data"].values()), result
    (error,) = result["errors"]
    return error


def ids(hub: Hub, field: str, key: str, condition: str = "{}") -> set[str]:
    rows = data(hub, "{ " + field + "(first: 10000, filter: " + condition + ") { nodes { " + key + " } } }")
    return {row[key] for row in rows[field]["nodes"]}


def column(hub: Hub, field: str, key: str, value: str, condition: str = "{}") -> list[tuple[str, Any]]:
    query = "{ " + field + "(first: 10000, filter: " + condition + ") { nodes { " + key + " " + value + " } } }"
    return [(row[key], row[value]) for row in data(hub, query)[field]["nodes"]]


def test_requests_nobody_answered_have_no_civil_affairs_delivery(hub: Hub) -> None:
    auditor = hub.as_caller("auditor")
    with_request = "{requestId: {isNull: false}}"
    answered = {r for _, r in column(auditor, "civilAffairsServiceDeliveries", "deliveryId", "requestId", with_request)}
    everyone = ids(auditor, "hotlineRequests", "requestId")
    unanswered = ids(auditor, "hotlineRequests", "requestId", "{civilAffairsDeliveries: {none: {}}}")
    some = ids(auditor, "hotlineRequests", "requestId", "{civilAffairsDeliveries: {some: {}}}")
    assert answered and unanswered
    assert some == answered & everyone
    assert unanswered == everyone - answered


def test_budget_lines_with_an_expenditure_over_10000_are_those_finance_paid_over_10000(hub: Hub) -> None:
    auditor = hub.as_caller("auditor")
    paid = column(auditor, "financeExpenditures", "expenditureId", "budgetLineId", '{amount: {gt: "10000"}}')
    found = ids(auditor, "financeBudgetLines", "lineId", '{expenditures: {some: {amount: {gt: "10000"}}}}')
    assert found == {line for _, line in paid}
    assert found != ids(auditor, "financeBudgetLines", "lineId")


def test_every_keeps_lines_whose_every_expenditure_is_over_10000_and_lines_without_any(hub: Hub) -> None:
    auditor = hub.as_caller("auditor")
    amounts: dict[str, list[float]] = {}
    for line, amount in column(auditor, "financeExpenditures", "budgetLineId", "amount"):
        amounts.setdefault(line, []).append(float(amount))
    lines = ids(auditor, "financeBudgetLines", "lineId")
    expected = {line for line in lines if all(a > 10000 for a in amounts.get(line, []))}
    found = ids(auditor, "financeBudgetLines", "lineId", '{expenditures: {every: {amount: {gt: "10000"}}}}')
    assert found == expected
    assert lines - set(amounts) <= found  # no expenditure at all: every one of none holds
    assert found != lines


def test_relation_filters_nest_across_three_departments_and_combine_with_fields(hub: Hub) -> None:
    auditor = hub.as_caller("auditor")
    large = ids(auditor, "financeExpenditures", "expenditureId", '{amount: {gt: "50000"}}')
    deliveries = column(
        auditor, "civilAffairsServiceDeliveries", "expenditureId", "requestId", "{requestId: {isNull: false}}"
    )
    expected = {request for spent, request in deliveries if spent in large and request is not None}
    overdue = ids(auditor, "hotlineRequests", "requestId", '{status: {eq: "超期"}}')
    condition = (
        '{status: {eq: "超期"}, and: [{civilAffairsDeliveries: '
        '{some: {expenditure: {some: {amount: {gt: "50000"}}}}}}]}'
    )
    assert ids(auditor, "hotlineRequests", "requestId", condition) == expected & overdue


def test_totals_count_the_rows_a_relation_filter_selects(hub: Hub) -> None:
    auditor = hub.as_caller("auditor")
    query = (
        "{ hotlineRequests(first: 3, filter: {civilAffairsDeliveries: {%s: {}}}) { totalCount nodes { requestId } } }"
    )
    some, none = (data(auditor, query % q)["hotlineRequests"]["totalCount"] for q in ("some", "none"))
    everyone = data(auditor, "{ hotlineRequests { totalCount } }")["hotlineRequests"]["totalCount"]
    assert some > 0 and none > 0 and some + none == everyone


# --- abuse ------------------------------------------------------------------------------------


def test_a_field_hidden_from_the_caller_cannot_be_filtered_inside_a_relation_filter(demo_hub: Hub) -> None:
    # Civil affairs' delivery amounts are masked to the health app.
    health = demo_hub.as_caller("health-app", "health_care")
    for quantifier in ("some", "none", "every"):
        condition = "{civilAffairsDeliveries: {" + quantifier + ': {amount: {gt: "100"}}}}'
        error = refusal(health, "{ hotlineRequests(filter: " + condition + ") { totalCount } }")
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["extensions"]["field"] == "CivilAffairsServiceDelivery.amount"


def test_a_masked_identifier_may_be_looked_up_in_some_but_not_searched_under_every(demo_hub: Hub) -> None:
    health = demo_hub.as_caller("health-app", "health_care")
    some = '{civilAffairsDeliveries: {some: {recipientIdNumber: {eq: "330102198001011234"}}}}'
    assert data(health, "{ hotlineRequests(filter: " + some + ") { totalCount } }")["hotlineRequests"] is not None
    # `every` negates the condition: "every delivery is to X" is "none is to anyone else".
    every = '{civilAffairsDeliveries: {every: {recipientIdNumber: {eq: "330102198001011234"}}}}'
    error = refusal(health, "{ hotlineRequests(filter: " + every + ") { totalCount } }")
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["field"] == "CivilAffairsServiceDelivery.recipientIdNumber"


def test_a_relation_the_caller_may_not_follow_cannot_be_filtered_on(demo_hub: Hub) -> None:
    # The public caller reads budget lines (L1) but no expenditure (L2).
    public = demo_hub.as_caller("public")
    assert data(public, "{ financeBudgetLines(first: 1) { nodes { lineId } } }")
    for quantifier in ("some", "none", "every"):
        condition = "{expenditures: {" + quantifier + ": {}}}"
        error = refusal(public, "{ financeBudgetLines(filter: " + condition + ") { totalCount } }")
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["extensions"]["field"] == "FinanceBudgetLine.expenditures"


@pytest.mark.parametrize("backend", ["demo_hub", "postgres_hub", "mariadb_hub"])
def test_a_district_office_filters_over_the_deliveries_of_its_district_only(
    request: pytest.FixtureRequest, backend: str
) -> None:
    hub: Hub = request.getfixturevalue(backend)
    office = hub.as_caller("district-office-app")
    in_district = {
        spent
        for spent, _ in column(
            hub,
            "civilAffairsServiceDeliveries",
            "expenditureId",
            "deliveryId",
            f'{{districtCode: {{eq: "{DISTRICT}"}}}}',
        )
        if spent is not None
    }
    everywhere = {spent for spent, _ in column(hub, "civilAffairsServiceDeliveries", "expenditureId", "deliveryId")}
    assert everywhere - in_district, "the demo funds deliveries outside the district"
    expenditures = ids(office, "financeExpenditures", "expenditureId")
    some = ids(office, "financeExpenditures", "expenditureId", "{civilAffairsDeliveries: {some: {}}}")
    none = ids(office, "financeExpenditures", "expenditureId", "{civilAffairsDeliveries: {none: {}}}")
    assert some == in_district & expenditures
    # An expenditure that funded deliveries elsewhere only has none the office may see.
    assert none == expenditures - in_district
    # Naming another district inside the filter finds nothing: the row rule still holds there.
    elsewhere = f'{{civilAffairsDeliveries: {{some: {{districtCode: {{ne: "{DISTRICT}"}}}}}}}}'
    assert ids(office, "financeExpenditures", "expenditureId", elsewhere) == set()


def test_past_the_key_set_bound_a_relation_filter_is_refused_not_cut(bounded_hub: Hub) -> None:
    auditor = bounded_hub.as_caller("auditor")
    error = refusal(auditor, "{ financeBudgetLines(filter: {expenditures: {some: {}}}) { nodes { lineId } } }")
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["extensions"]["limit"] == 50
    # Under the bound it runs: three lines' expenditures are fewer than 50.
    small = '{expenditures: {some: {budgetLineId: {in: ["BL2025-CA-08", "BL2025-CA-09"]}}}}'
    assert ids(auditor, "financeBudgetLines", "lineId", small) == {"BL2025-CA-08", "BL2025-CA-09"}


def test_a_relation_filter_is_priced_in_the_operations_cost(bounded_hub: Hub) -> None:
    auditor = bounded_hub.as_caller("auditor")
    one = "{ financeBudgetLines(first: 1, filter: {expenditures: {some: {}}}) { totalCount } }"
    assert refusal(auditor, one)["extensions"]["code"] == "LIMIT_EXCEEDED"  # not the cost
    # Each condition on related records may read the key-set bound (50 here) more rows.
    many = ", ".join(f'{{expenditures: {{some: {{payee: {{eq: "{i}"}}}}}}}}' for i in range(1000))
    result = auditor.query("{ financeBudgetLines(first: 1, filter: {and: [" + many + "]}) { totalCount } }")
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["extensions"]["limit"] == "cost"
    assert error["extensions"]["value"] > 50_000


def test_relation_filters_nest_at_most_three_relations_deep(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor")
    three = "{civilAffairsDeliveries: {some: {expenditure: {some: {budgetLine: {some: {}}}}}}}"
    assert data(auditor, "{ hotlineRequests(filter: " + three + ") { totalCount } }")["hotlineRequests"]["totalCount"]
    four = "{civilAffairsDeliveries: {some: {expenditure: {some: {budgetLine: {some: {expenditures: {some: {}}}}}}}}}"
    error = refusal(auditor, "{ hotlineRequests(filter: " + four + ") { totalCount } }")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "at most 3 relations" in error["message"]


def test_a_filter_holds_at_most_ten_conditions_on_related_records(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor")
    conditions = ", ".join(f'{{expenditures: {{some: {{payee: {{eq: "{i}"}}}}}}}}' for i in range(11))
    error = refusal(auditor, "{ financeBudgetLines(filter: {and: [" + conditions + "]}) { totalCount } }")
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"


def test_a_condition_on_related_records_may_not_stand_under_or(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor")
    condition = '{or: [{program: {eq: "x"}}, {expenditures: {some: {}}}]}'
    error = refusal(auditor, "{ financeBudgetLines(filter: " + condition + ") { totalCount } }")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


def test_every_may_not_hold_conditions_on_further_relations(demo_hub: Hub) -> None:
    auditor = demo_hub.as_caller("auditor")
    condition = "{expenditures: {every: {civilAffairsDeliveries: {some: {}}}}}"
    error = refusal(auditor, "{ financeBudgetLines(filter: " + condition + ") { totalCount } }")
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
