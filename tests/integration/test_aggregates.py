"""Aggregate fields over the demo: the numbers are right, the access is a list's, small groups
of persons are suppressed, and a refused aggregate runs no SQL.

What to expect is worked out here from the generator's data (hub.demo.generate), never by
asking the hub another way.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from sqlalchemy import event

from hub.demo.generate import generate
from hub.services import Services
from tests.conftest import Hub

DATA = generate()
DELIVERIES = DATA["civil_affairs"]["ca_service_delivery"]
EXPENDITURES = DATA["finance"]["fin_expenditure"]
OFFICE_DISTRICT = "330102"

BY_DISTRICT_AND_MONTH = """
{ civilAffairsServiceDeliveriesAggregate(groupBy: [DISTRICT_CODE], bucket: {field: DELIVERED_AT, period: MONTH},
    first: 10000) {
    count sum { amount } avg { amount } countDistinct { recipientIdNumber }
    groups { key { districtCode bucket } count sum { amount } suppressed }
    pageInfo { hasNextPage }
} }
"""


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def error_codes(result: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(e["extensions"]["code"], e["extensions"].get("field")) for e in result.get("errors", [])]


@pytest.fixture
def statements(demo_services: Services) -> Iterator[list[str]]:
    """The statements every department's connector sends while the test runs."""
    seen: list[str] = []
    listeners: list[tuple[Any, Any]] = []
    for connector in demo_services.connectors.values():
        engine = connector.engine.sync_engine  # type: ignore[attr-defined]

        def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", listen)
        listeners.append((engine, listen))
    yield seen
    for engine, listen in listeners:
        event.remove(engine, "before_cursor_execute", listen)


def test_deliveries_by_district_and_month_match_the_generated_data(demo_hub: Hub) -> None:
    result = demo_hub.query(BY_DISTRICT_AND_MONTH)
    assert "errors" not in result
    answer = result["data"]["civilAffairsServiceDeliveriesAggregate"]
    counts: Counter[tuple[str, str]] = Counter()
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in DELIVERIES:
        key = (row["district_code"], row["delivered_at"].date().replace(day=1).isoformat())
        counts[key] += 1
        sums[key] += row["amount"] if row["amount"] is not None else 0
    got = {(g["key"]["districtCode"], g["key"]["bucket"]): (g["count"], g["sum"]["amount"]) for g in answer["groups"]}
    assert got == {key: (counts[key], str(sums[key])) for key in counts}
    amounts = [row["amount"] for row in DELIVERIES if row["amount"] is not None]
    assert answer["count"] == len(DELIVERIES)
    assert answer["sum"]["amount"] == str(sum(amounts))
    assert answer["avg"]["amount"] == str(_cents(sum(amounts) / len(amounts)))
    assert answer["countDistinct"]["recipientIdNumber"] == len({row["recipient_id_number"] for row in DELIVERIES})
    # The group keys order the groups when nothing else does.
    keys = [(g["key"]["districtCode"], g["key"]["bucket"]) for g in answer["groups"]]
    assert keys == sorted(keys)
    assert not any(g["suppressed"] for g in answer["groups"])


def test_expenditures_by_budget_line_match_the_generated_data(demo_hub: Hub) -> None:
    result = demo_hub.as_caller("auditor").query(
        "{ financeExpendituresAggregate(groupBy: [BUDGET_LINE_ID], orderBy: [{by: SUM, field: AMOUNT, descending: true}],"
        " first: 3) { groups { key { budgetLineId } count sum { amount } max { paidAt } } pageInfo { hasNextPage } } }"
    )
    assert "errors" not in result
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for row in EXPENDITURES:
        sums[row["budget_line_id"]] += row["amount"]
    top = sorted(sums.items(), key=lambda item: (-item[1], item[0]))[:3]
    answer = result["data"]["financeExpendituresAggregate"]
    assert [(g["key"]["budgetLineId"], g["sum"]["amount"]) for g in answer["groups"]] == [(k, str(v)) for k, v in top]
    assert answer["pageInfo"]["hasNextPage"] is (len(sums) > 3)


def test_groups_page_with_their_cursor_and_pages_join_up(demo_hub: Hub) -> None:
    query = """query($after: String) { civilAffairsServiceDeliveriesAggregate(groupBy: [SERVICE_TYPE, DISTRICT_CODE],
        orderBy: [{by: COUNT, descending: true}], first: 7, after: $after) {
        groups { key { serviceType districtCode } count } pageInfo { hasNextPage endCursor } } }"""
    seen: list[Any] = []
    after = None
    while True:
        answer = demo_hub.query(query, {"after": after})["data"]["civilAffairsServiceDeliveriesAggregate"]
        seen.extend(answer["groups"])
        if not answer["pageInfo"]["hasNextPage"]:
            break
        after = answer["pageInfo"]["endCursor"]
    expected = Counter((row["service_type"], row["district_code"]) for row in DELIVERIES)
    assert {(g["key"]["serviceType"], g["key"]["districtCode"]): g["count"] for g in seen} == dict(expected)
    assert [g["count"] for g in seen] == sorted((g["count"] for g in seen), reverse=True)


def test_district_office_counts_cover_its_district_only(demo_hub: Hub) -> None:
    result = demo_hub.as_caller("district-office-app").query(BY_DISTRICT_AND_MONTH)
    assert "errors" not in result
    answer = result["data"]["civilAffairsServiceDeliveriesAggregate"]
    own = [row for row in DELIVERIES if row["district_code"] == OFFICE_DISTRICT]
    assert answer["count"] == len(own)
    assert {g["key"]["districtCode"] for g in answer["groups"]} == {OFFICE_DISTRICT}
    assert sum(g["count"] for g in answer["groups"]) == len(own)


@pytest.mark.parametrize(
    ("selection", "field"),
    [
        ("sum { amount }", "CivilAffairsServiceDelivery.amount"),
        ("avg { amount }", "CivilAffairsServiceDelivery.amount"),
        ("min { amount }", "CivilAffairsServiceDelivery.amount"),
        ("groups { max { amount } }", "CivilAffairsServiceDelivery.amount"),
        ("countDistinct { recipientIdNumber }", "CivilAffairsServiceDelivery.recipientIdNumber"),
    ],
)
def test_a_measure_of_a_field_not_released_plain_is_forbidden_naming_it(
    demo_hub: Hub, statements: list[str], selection: str, field: str
) -> None:
    # Without a purpose (so without its audit grant) the auditor gets amounts and ID numbers masked.
    result = demo_hub.as_caller("auditor").query(f"{{ civilAffairsServiceDeliveriesAggregate {{ {selection} }} }}")
    assert error_codes(result) == [("FORBIDDEN", field)]
    assert result["data"]["civilAffairsServiceDeliveriesAggregate"] is None
    assert statements == []


def test_a_group_key_or_order_over_a_masked_field_is_forbidden_before_any_sql(
    demo_hub: Hub, statements: list[str]
) -> None:
    auditor = demo_hub.as_caller("auditor")
    grouped = auditor.query("{ civilAffairsAssistanceCasesAggregate(groupBy: [MONTHLY_AMOUNT]) { groups { count } } }")
    assert error_codes(grouped) == [("FORBIDDEN", "CivilAffairsAssistanceCase.monthlyAmount")]
    ordered = auditor.query(
        "{ civilAffairsServiceDeliveriesAggregate(groupBy: [DISTRICT_CODE], orderBy: [{by: SUM, field: AMOUNT}])"
        " { groups { count } } }"
    )
    assert error_codes(ordered) == [("FORBIDDEN", "CivilAffairsServiceDelivery.amount")]
    filtered = auditor.query('{ civilAffairsServiceDeliveriesAggregate(filter: {amount: {gt: "1000"}}) { count } }')
    assert error_codes(filtered) == [("FORBIDDEN", "CivilAffairsServiceDelivery.amount")]
    assert statements == []


def test_encrypted_fields_may_only_be_counted(demo_hub: Hub, statements: list[str]) -> None:
    # Civil affairs reads its recipients' ID numbers and names plain, but they are encrypted.
    grouped = demo_hub.query("{ civilAffairsServiceDeliveriesAggregate(groupBy: [RECIPIENT_ID_NUMBER]) { count } }")
    assert error_codes(grouped) == [("BAD_USER_INPUT", None)]
    unindexed = demo_hub.query("{ civilAffairsServiceDeliveriesAggregate { countDistinct { recipientName } } }")
    assert error_codes(unindexed) == [("BAD_USER_INPUT", None)]
    assert "blind index" in unindexed["errors"][0]["message"]
    assert statements == []
    indexed = demo_hub.query("{ civilAffairsServiceDeliveriesAggregate { countDistinct { recipientIdNumber } } }")
    persons = len({row["recipient_id_number"] for row in DELIVERIES})
    assert indexed["data"]["civilAffairsServiceDeliveriesAggregate"]["countDistinct"]["recipientIdNumber"] == persons


def test_count_needs_only_a_readable_entity(demo_hub: Hub, statements: list[str]) -> None:
    auditor = demo_hub.as_caller("auditor")
    counted = auditor.query("{ financeExpendituresAggregate { count } }")
    assert counted["data"]["financeExpendituresAggregate"]["count"] == len(EXPENDITURES)
    statements.clear()
    # The public reads no civil affairs rows at all.
    refused = demo_hub.as_caller("public").query("{ civilAffairsServiceDeliveriesAggregate { count } }")
    assert [code for code, _ in error_codes(refused)] == ["FORBIDDEN"]
    assert statements == []


def test_an_aggregate_is_one_statement_per_selected_part(demo_hub: Hub, statements: list[str]) -> None:
    demo_hub.query(
        "{ civilAffairsServiceDeliveriesAggregate(groupBy: [DISTRICT_CODE], bucket: {field: DELIVERED_AT, period: WEEK})"
        " { groups { count sum { amount } } } }"
    )
    assert len(statements) == 1
    assert "GROUP BY" in statements[0].upper()


def test_the_total_and_the_groups_together_are_one_statement(demo_hub: Hub, statements: list[str]) -> None:
    result = demo_hub.query(BY_DISTRICT_AND_MONTH)
    assert len(statements) == 1
    answer = result["data"]["civilAffairsServiceDeliveriesAggregate"]
    assert answer["count"] == len(DELIVERIES) == sum(g["count"] for g in answer["groups"])
    statements.clear()
    # The auditor's answer adds the persons counted for suppression: still one statement.
    counts = """{ civilAffairsServiceDeliveriesAggregate(groupBy: [DISTRICT_CODE], first: 10000) {
        count groups { key { districtCode } count suppressed } } }"""
    audited = demo_hub.as_caller("auditor").query(counts)
    assert "errors" not in audited
    assert len(statements) == 1
    assert audited["data"]["civilAffairsServiceDeliveriesAggregate"]["count"] == len(DELIVERIES)


def test_small_groups_of_persons_are_suppressed_for_callers_without_the_persons_plain(demo_hub: Hub) -> None:
    # Deliveries per district and day: the auditor does not read recipients' ID numbers plain.
    query = """{ civilAffairsServiceDeliveriesAggregate(groupBy: [DISTRICT_CODE],
        bucket: {field: DELIVERED_AT, period: DAY}, first: 10000) {
        count groups { key { districtCode bucket } count suppressed } } }"""
    result = demo_hub.as_caller("auditor").query(query)
    assert "errors" not in result
    answer = result["data"]["civilAffairsServiceDeliveriesAggregate"]
    persons: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in DELIVERIES:
        persons[(row["district_code"], row["delivered_at"].date().isoformat())].add(row["recipient_id_number"])
    small = {key for key, who in persons.items() if len(who) < 5}
    assert small, "the demo has days with fewer than five recipients in a district"
    groups = {(g["key"]["districtCode"], g["key"]["bucket"]): g for g in answer["groups"]}
    assert {key for key, g in groups.items() if g["suppressed"]} >= small
    assert all(g["count"] is None for g in groups.values() if g["suppressed"])
    assert all(g["count"] is not None for key, g in groups.items() if not g["suppressed"])
    # Suppressed groups come last, so an order cannot place them among the others.
    flags = [g["suppressed"] for g in answer["groups"]]
    assert flags == sorted(flags)
    assert result["extensions"]["access"]["suppressedGroups"] == sum(flags)
    # The civil affairs app reads the ID numbers plain: nothing is suppressed for it.
    plain = demo_hub.query(query)["data"]["civilAffairsServiceDeliveriesAggregate"]
    assert not any(g["suppressed"] for g in plain["groups"])


def test_extensions_and_access_record_name_the_fields_aggregated(demo_hub: Hub) -> None:
    result = demo_hub.query(BY_DISTRICT_AND_MONTH)
    access = result["extensions"]["access"]
    assert access["aggregated"] == [
        "civil_affairs.ServiceDelivery.amount",
        "civil_affairs.ServiceDelivery.deliveredAt",
        "civil_affairs.ServiceDelivery.districtCode",
        "civil_affairs.ServiceDelivery.recipientIdNumber",
    ]
    assert access["suppressedGroups"] == 0
    listed = demo_hub.query("{ financeExpenditures(first: 1) { nodes { amount } } }")
    assert "aggregated" not in listed["extensions"]["access"]


def test_paging_cannot_undo_a_suppression(demo_hub: Hub) -> None:
    query = """query($after: String, $first: Int) { civilAffairsServiceDeliveriesAggregate(groupBy: [DISTRICT_CODE],
        bucket: {field: DELIVERED_AT, period: DAY}, orderBy: [{by: COUNT}], first: $first, after: $after) {
        groups { key { districtCode bucket } count suppressed } pageInfo { hasNextPage endCursor } } }"""
    auditor = demo_hub.as_caller("auditor")
    whole = auditor.query(query, {"first": 10000})["data"]["civilAffairsServiceDeliveriesAggregate"]["groups"]
    paged: list[Any] = []
    after = None
    for _ in range(100):
        answer = auditor.query(query, {"first": 200, "after": after})["data"]["civilAffairsServiceDeliveriesAggregate"]
        paged.extend(answer["groups"])
        if not answer["pageInfo"]["hasNextPage"]:
            break
        after = answer["pageInfo"]["endCursor"]
    assert paged == whole
    assert any(g["suppressed"] for g in paged)


@pytest.mark.parametrize(
    "arguments",
    [
        "bucket: {field: DISTRICT_CODE, period: MONTH}",
        "orderBy: [{by: SUM}]",
        'after: "not-a-cursor"',
        "first: -1",
    ],
)
def test_malformed_aggregates_are_bad_input_before_any_sql(
    demo_hub: Hub, statements: list[str], arguments: str
) -> None:
    result = demo_hub.query(f"{{ civilAffairsServiceDeliveriesAggregate({arguments}) {{ groups {{ count }} }} }}")
    assert [code for code, _ in error_codes(result)] == ["BAD_USER_INPUT"]
    assert statements == []


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        # A measure the field does not have: no sum of an identifier, no average of a moment.
        ("orderBy: [{by: SUM, field: DISTRICT_CODE}]", "districtCode is of type ID: it has no sum to order by"),
        (
            "groupBy: [DISTRICT_CODE], orderBy: [{by: AVG, field: DELIVERED_AT}]",
            "deliveredAt is of type DateTime: it has no avg to order by",
        ),
        # An order step given twice, in the same direction or not.
        ("groupBy: [DISTRICT_CODE], orderBy: [{by: COUNT}, {by: COUNT, descending: true}]", "COUNT twice"),
        (
            "groupBy: [DISTRICT_CODE], orderBy: [{by: KEY, field: DISTRICT_CODE}, {by: COUNT},"
            " {by: KEY, field: DISTRICT_CODE, descending: true}]",
            "KEY districtCode twice",
        ),
        ("groupBy: [DISTRICT_CODE], orderBy: [{by: SUM, field: AMOUNT}, {by: SUM, field: AMOUNT}]", "SUM amount twice"),
        (
            "bucket: {field: DELIVERED_AT, period: MONTH}, orderBy: [{by: BUCKET}, {by: BUCKET}]",
            "BUCKET twice",
        ),
        # A group key given twice.
        ("groupBy: [DISTRICT_CODE, CASE_ID, DISTRICT_CODE]", "groupBy names districtCode twice"),
        # A field where the step takes none (it was silently ignored).
        ("groupBy: [DISTRICT_CODE], orderBy: [{by: COUNT, field: AMOUNT}]", "orderBy COUNT takes no field"),
        (
            "bucket: {field: DELIVERED_AT, period: MONTH}, orderBy: [{by: BUCKET, field: DELIVERED_AT}]",
            "orderBy BUCKET takes no field",
        ),
        # Steps that name what the aggregate does not group by.
        ("groupBy: [DISTRICT_CODE], orderBy: [{by: BUCKET}]", "orderBy names BUCKET, which this aggregate"),
        ("groupBy: [DISTRICT_CODE], orderBy: [{by: KEY, field: CASE_ID}]", "orderBy names KEY caseId, which"),
        ("groupBy: [DISTRICT_CODE], orderBy: [{by: MAX}]", "orderBy MAX needs a field"),
    ],
)
def test_a_malformed_order_or_grouping_is_bad_input_saying_why_before_any_sql(
    demo_hub: Hub, statements: list[str], arguments: str, message: str
) -> None:
    result = demo_hub.query(f"{{ civilAffairsServiceDeliveriesAggregate({arguments}) {{ count groups {{ count }} }} }}")
    assert [code for code, _ in error_codes(result)] == ["BAD_USER_INPUT"]
    assert message in result["errors"][0]["message"]
    assert result["data"]["civilAffairsServiceDeliveriesAggregate"] is None
    assert statements == []


def test_an_order_by_a_measure_not_selected_still_orders_the_groups(demo_hub: Hub) -> None:
    # Ordering by a measure the selection does not show is allowed: the read measures it.
    result = demo_hub.query(
        "{ financeExpendituresAggregate(groupBy: [BUDGET_LINE_ID], orderBy: [{by: SUM, field: AMOUNT, "
        "descending: true}], first: 10000) { groups { key { budgetLineId } } } }"
    )
    assert "errors" not in result
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for row in EXPENDITURES:
        sums[row["budget_line_id"]] += row["amount"] or 0
    got = [g["key"]["budgetLineId"] for g in result["data"]["financeExpendituresAggregate"]["groups"]]
    assert got == sorted(sums, key=lambda line: (-sums[line], line))


def test_a_page_past_the_largest_is_refused(demo_hub: Hub) -> None:
    result = demo_hub.query("{ civilAffairsServiceDeliveriesAggregate(first: 10001) { count } }")
    assert [code for code, _ in error_codes(result)] == ["LIMIT_EXCEEDED"]


# --- relation filters (issue 14): an aggregate's filter is a list's, conditions on related
# records included, under the same checks.

UNANSWERED = "{civilAffairsDeliveries: {none: {}}}"


@pytest.mark.parametrize("backend", ["demo_hub", "postgres_hub", "mariadb_hub"])
def test_an_aggregate_with_a_relation_filter_counts_what_the_list_totals(
    request: pytest.FixtureRequest, backend: str
) -> None:
    hub: Hub = request.getfixturevalue(backend)
    for condition in (UNANSWERED, "{civilAffairsDeliveries: {some: {}}}"):
        listed = hub.query(f"{{ hotlineRequests(filter: {condition}) {{ totalCount }} }}")
        counted = hub.query(f"{{ hotlineRequestsAggregate(filter: {condition}) {{ count }} }}")
        assert "errors" not in listed and "errors" not in counted, (listed, counted)
        total = listed["data"]["hotlineRequests"]["totalCount"]
        assert counted["data"]["hotlineRequestsAggregate"]["count"] == total
    # The condition selects: requests some delivery answered are not counted under `none`.
    answered = {row["request_id"] for row in DELIVERIES if row["request_id"] is not None}
    everything = hub.query("{ hotlineRequestsAggregate { count } }")["data"]["hotlineRequestsAggregate"]["count"]
    unanswered = hub.query(f"{{ hotlineRequestsAggregate(filter: {UNANSWERED}) {{ count }} }}")
    assert unanswered["data"]["hotlineRequestsAggregate"]["count"] == everything - len(answered)


def test_an_aggregate_relation_filter_on_a_field_not_read_plain_is_forbidden_before_any_sql(
    demo_hub: Hub, statements: list[str]
) -> None:
    # Civil affairs' delivery amounts are masked to the health app.
    health = demo_hub.as_caller("health-app", "health_care")
    for quantifier in ("some", "none", "every"):
        condition = "{civilAffairsDeliveries: {" + quantifier + ': {amount: {gt: "100"}}}}'
        result = health.query(f"{{ hotlineRequestsAggregate(filter: {condition}) {{ count }} }}")
        assert error_codes(result) == [("FORBIDDEN", "CivilAffairsServiceDelivery.amount")]
        assert result["data"]["hotlineRequestsAggregate"] is None
    assert statements == []


def test_a_district_office_aggregate_with_a_relation_filter_counts_its_district_only(demo_hub: Hub) -> None:
    office = demo_hub.as_caller("district-office-app")
    listed = office.query("{ financeExpenditures(first: 10000) { nodes { expenditureId } } }")
    visible = {row["expenditureId"] for row in listed["data"]["financeExpenditures"]["nodes"]}
    funded = {row["expenditure_id"] for row in DELIVERIES if row["expenditure_id"] is not None}
    in_district = {
        row["expenditure_id"]
        for row in DELIVERIES
        if row["expenditure_id"] is not None and row["district_code"] == OFFICE_DISTRICT
    }
    assert (funded - in_district) & visible, "the office sees expenditures that funded deliveries elsewhere only"

    def count(condition: str) -> Any:
        result = office.query(f"{{ financeExpendituresAggregate(filter: {condition}) {{ count }} }}")
        assert "errors" not in result, result
        return result["data"]["financeExpendituresAggregate"]["count"]

    assert count("{civilAffairsDeliveries: {some: {}}}") == len(in_district & visible)
    assert count("{civilAffairsDeliveries: {none: {}}}") == len(visible - in_district)
    # Naming another district inside the filter counts nothing: the row rule still holds there.
    assert count(f'{{civilAffairsDeliveries: {{some: {{districtCode: {{ne: "{OFFICE_DISTRICT}"}}}}}}}}') == 0
