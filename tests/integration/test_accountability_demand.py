"""The accountability reports cannot be used to stall the hub: demand control prices them at the
rows they may join, so a document asking too many is refused before any SQL; one request's
reports share a bound on those rows, past which it is refused with the bound and the value,
never answered with figures cut short. Under the bound the figures are the generator's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from hub.config import load_settings
from hub.demo.workspace import Workspace
from hub.services import Services, build_services
from tests.conftest import Hub
from tests.integration.conftest import _serve, _tokens
from tests.integration.test_accountability import AS_OF, LINES, expected_line

BOUND = 1_000
COUNT = 'budgetLineAccountability(filter: {asOf: "2026-06-30T18:00:00+08:00"}) { totalCount }'


@pytest.fixture(scope="module")
def bounded_services(demo_workspace: Workspace) -> Services:
    """The SQLite demo with the reports bounded at BOUND per-key rows a request."""
    settings = load_settings(
        {"HUB_MAX_REPORT_ROWS": str(BOUND)},
        database_url=demo_workspace.hub_database.render_as_string(),
        manifests_dir=demo_workspace.manifests,
        master_key_file=demo_workspace.master_key_file,
    )
    return build_services(settings)


@pytest.fixture(scope="module")
def bounded_hub(bounded_services: Services, demo_workspace: Workspace) -> Iterator[Hub]:
    yield from _serve(bounded_services, _tokens(demo_workspace))


def _listen(services: Services) -> Iterator[list[tuple[str, str]]]:
    """(department, statement) of every statement the departments' connectors send meanwhile."""
    seen: list[tuple[str, str]] = []
    listeners: list[tuple[Any, Any]] = []
    for department, connector in services.connectors.items():
        engine = connector.engine.sync_engine  # type: ignore[attr-defined]

        def listen(conn: Any, cursor: Any, statement: str, *args: Any, department: str = department) -> None:
            seen.append((department, statement))

        event.listen(engine, "before_cursor_execute", listen)
        listeners.append((engine, listen))
    yield seen
    for engine, listen in listeners:
        event.remove(engine, "before_cursor_execute", listen)


@pytest.fixture
def statements(demo_services: Services) -> Iterator[list[tuple[str, str]]]:
    yield from _listen(demo_services)


@pytest.fixture
def bounded_statements(bounded_services: Services) -> Iterator[list[tuple[str, str]]]:
    yield from _listen(bounded_services)


def _refusal(result: dict[str, Any]) -> dict[str, Any]:
    assert result["data"] is None or all(v is None for v in result["data"].values()), result["data"]
    (error,) = result["errors"]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED", error
    return dict(error["extensions"])


def test_thirty_aliases_of_the_report_are_refused_for_their_cost_before_any_sql(
    demo_hub: Hub, statements: list[tuple[str, str]]
) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    document = "{ " + " ".join(f"r{n}: {COUNT}" for n in range(30)) + " }"
    refused = _refusal(auditor.query(document))
    assert refused["limit"] == "cost" and refused["value"] > refused["max"]
    assert statements == []


def test_eleven_reports_of_each_kind_mixed_are_refused_for_their_cost(
    demo_hub: Hub, statements: list[tuple[str, str]]
) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    kinds = ("SPEND_WITHOUT_SERVICE", "SERVICE_WITHOUT_BASIS", "OVERDUE_UNANSWERED", "LOW_SATISFACTION")
    gaps = [f"g{n}: accountabilityGaps(kind: {kinds[n % 4]}) {{ totalCount }}" for n in range(10)]
    refused = _refusal(auditor.query("{ " + " ".join([f"r: {COUNT}", *gaps]) + " }"))
    assert refused["limit"] == "cost"
    assert statements == []


def test_the_report_spread_through_nested_fragments_is_refused_as_when_written_inline(
    demo_hub: Hub, statements: list[tuple[str, str]]
) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    inner = " ".join(f"a{n}: {COUNT}" for n in range(6))
    outer = " ".join(f"b{n}: {COUNT}" for n in range(6))
    document = f"""
        query {{ ...Outer }}
        fragment Outer on Query {{ ...Inner ... on Query {{ {outer} }} }}
        fragment Inner on Query {{ {inner} }}
    """
    inline = "{ " + inner + " " + outer + " }"
    nested, flat = _refusal(auditor.query(document)), _refusal(auditor.query(inline))
    assert nested["limit"] == flat["limit"] == "cost"
    assert nested["value"] == flat["value"]
    assert statements == []


def test_a_huge_first_on_the_report_is_refused_before_any_sql(demo_hub: Hub, statements: list[tuple[str, str]]) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    for first in ("first: 100000000", "first: -1"):
        result = auditor.query("{ budgetLineAccountability(" + first + ") { nodes { lineId } } }")
        assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    result = auditor.query(
        "query($n: Int) { accountabilityGaps(kind: OVERDUE_UNANSWERED, first: $n) { totalCount } }",
        {"n": 2**31 - 1},
    )
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert statements == []


def test_four_wide_report_pages_are_refused_for_their_cost_before_any_sql(
    demo_hub: Hub, statements: list[tuple[str, str]]
) -> None:
    auditor = demo_hub.as_caller("auditor", "audit")
    # Each: its rows, and 10,000 lines of two fields and a list of 100 services of two.
    wide = "budgetLineAccountability(first: 10000) { nodes { lineId services { department amount } } }"
    refused = _refusal(auditor.query("{ " + " ".join(f"w{n}: {wide}" for n in range(4)) + " }"))
    assert refused["limit"] == "cost"
    assert statements == []


def test_a_report_past_the_row_bound_is_refused_with_bound_and_value_not_cut(
    bounded_hub: Hub, bounded_statements: list[tuple[str, str]]
) -> None:
    auditor = bounded_hub.as_caller("auditor", "audit")
    refused = _refusal(auditor.query(LINES, {"filter": {"asOf": AS_OF}}))
    assert refused["limit"] == BOUND and refused["value"] > BOUND
    # Refused once the expenditures were counted, before any other department was read.
    assert {department for department, _ in bounded_statements} == {"finance"}


def test_a_gap_kind_past_the_row_bound_is_refused_with_bound_and_value(bounded_hub: Hub) -> None:
    auditor = bounded_hub.as_caller("auditor", "audit")
    result = auditor.query(
        "query($f: GapsFilter) { accountabilityGaps(kind: SPEND_WITHOUT_SERVICE, filter: $f) { totalCount } }",
        {"f": {"asOf": AS_OF}},
    )
    refused = _refusal(result)
    assert refused["limit"] == BOUND and refused["value"] > BOUND


def test_under_the_row_bound_one_line_s_figures_are_the_generated_ones(bounded_hub: Hub) -> None:
    auditor = bounded_hub.as_caller("auditor", "audit")
    result = auditor.query(LINES, {"filter": {"lineId": "BL2026-CA-03", "asOf": AS_OF}})
    assert "errors" not in result, result["errors"]
    (line,) = result["data"]["budgetLineAccountability"]["nodes"]
    want = expected_line("BL2026-CA-03", line["department"], line["fiscalYear"])
    gaps = ("overdueUnanswered", "serviceWithoutBasis", "spendWithoutService")
    got = {name: line["gaps"][name] if name in gaps else line[name] for name in want}
    for name in ("meanSatisfaction", "medianResponseHours"):
        assert got.pop(name) == pytest.approx(want.pop(name))
    assert got == want
    assert line["requestsAnswered"] > 0 and line["suppressed"] == []


def test_aliases_of_the_report_share_one_row_bound(bounded_hub: Hub) -> None:
    auditor = bounded_hub.as_caller("auditor", "audit")
    one = 'line: budgetLineAccountability(filter: {lineId: "BL2026-CA-03", asOf: "AT"}) { totalCount }'
    assert "errors" not in auditor.query("{ " + one.replace("AT", AS_OF) + " }")
    # The same report asked for ten moments: each alone is within the bound, together past it.
    moments = [f"2026-06-{day:02d}T18:00:00+08:00" for day in range(11, 21)]
    document = "{ " + " ".join(one.replace("line:", f"l{n}:").replace("AT", at) for n, at in enumerate(moments)) + " }"
    refused = _refusal(auditor.query(document))
    assert refused["limit"] == BOUND and refused["value"] > BOUND


def test_one_statement_with_more_groups_than_rows_left_is_refused_with_the_bound(bounded_hub: Hub) -> None:
    auditor = bounded_hub.as_caller("auditor", "audit")
    # Deliveries per answered request, service type and district: more groups than the bound
    # in one statement, which asks for at most the rows left and is refused past them.
    result = auditor.query("{ accountabilityGaps(kind: SERVICE_WITHOUT_FEEDBACK) { totalCount } }")
    refused = _refusal(result)
    # The value counts what the department statements side by side had reached: past the bound.
    assert refused["limit"] == BOUND and refused["value"] > BOUND
    assert f"more than {BOUND} per-key rows" in result["errors"][0]["message"]
