"""Traces on the demo, over HTTP: typed edges across departments, every record through the
caller's access plan, hidden records without their keys, bounds, truncation, PROV-JSON."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from prov.model import ProvDocument

from tests.conftest import Hub

LINE = "finance:BudgetLine:BL2026-CA-01"
TRACE = """query Trace($from: String!, $direction: TraceDirection!, $depth: Int!, $max: Int!, $kinds: [String!]) {
  trace(from: $from, direction: $direction, depth: $depth, maxNodes: $max, kinds: $kinds) {
    truncated frontier notFollowed
    nodes { id ref entity depth record { __typename
      ... on FinanceBudgetLine { lineId amount }
      ... on FinanceExpenditure { expenditureId amount }
      ... on CivilAffairsServiceDelivery { deliveryId recipientName recipientIdNumber amount }
      ... on PopulationPerson { idNumber name }
      ... on HotlineRequest { requestId category callerName content }
      ... on HotlineFeedback { satisfaction } } }
    edges { kind from to hidden recorded } } }"""


def trace(
    hub: Hub, start: str, direction: str = "DOWNSTREAM", depth: int = 4, max_nodes: int = 5000, **more: Any
) -> Any:
    return hub.query(TRACE, {"from": start, "direction": direction, "depth": depth, "max": max_nodes, **more})


def auditor(hub: Hub) -> Hub:
    return hub.as_caller("auditor", "audit")


def test_downstream_from_a_budget_line_reaches_spending_services_requests_feedback_and_persons(demo_hub: Hub) -> None:
    result = trace(auditor(demo_hub), LINE)
    # The only error: request texts, withheld from auditors.
    assert {tuple(e["path"]) for e in result["errors"]} == {("trace", "nodes", "*", "record", "content")}
    found = result["data"]["trace"]
    entities = Counter(node["entity"] for node in found["nodes"])
    assert entities["FinanceBudgetLine"] == 1 and entities["FinanceExpenditure"] > 10
    for reached in ("CivilAffairsServiceDelivery", "HotlineRequest", "HotlineFeedback", "PopulationPerson"):
        assert entities[reached] > 0, reached
    kinds = {edge["kind"] for edge in found["edges"] if not edge["hidden"]}
    assert {"allocated_from", "funded_by", "fulfils", "feedback_on", "about_person"} <= kinds
    by_id = {node["id"]: node for node in found["nodes"]}
    for edge in found["edges"]:
        if edge["kind"] == "allocated_from":
            # The data's orientation: the expenditure holds the reference to its line.
            assert by_id[edge["from"]]["entity"] == "FinanceExpenditure"
            assert by_id[edge["to"]]["ref"] == LINE
    assert len(by_id) == len(found["nodes"])  # no record twice


def test_auditor_sees_citizens_masked_and_request_texts_withheld_in_a_trace(demo_hub: Hub) -> None:
    result = trace(auditor(demo_hub), LINE)
    nodes = result["data"]["trace"]["nodes"]
    persons = [n for n in nodes if n["entity"] == "PopulationPerson"]
    assert persons and all("*" in p["record"]["idNumber"] and "*" in p["record"]["name"] for p in persons)
    # A person's reference is sealed for a caller who reads the ID number masked.
    assert all(":" not in p["ref"] for p in persons)
    masked = result["extensions"]["access"]["masked"]
    assert "trace/nodes/*/record/idNumber" in masked
    requests = [n for n in nodes if n["entity"] == "HotlineRequest"]
    assert requests and all(r["record"]["content"] is None for r in requests)
    withheld = [e for e in result["errors"] if e["path"][-1] == "content"]
    assert withheld and withheld[0]["extensions"]["code"] == "FORBIDDEN"


def test_upstream_from_a_request_reaches_the_services_that_answered_it_and_their_money(demo_hub: Hub) -> None:
    start = trace(auditor(demo_hub), LINE)["data"]["trace"]
    answered = next(n["ref"] for n in start["nodes"] if n["entity"] == "HotlineRequest")
    result = trace(auditor(demo_hub), answered, "UPSTREAM", 3)
    entities = Counter(node["entity"] for node in result["data"]["trace"]["nodes"])
    assert entities["CivilAffairsServiceDelivery"] >= 1
    assert entities["FinanceExpenditure"] >= 1 and entities["FinanceBudgetLine"] >= 1
    assert entities["HotlineFeedback"] == 0  # feedback lies downstream of a request


def test_kinds_limit_the_edges_followed(demo_hub: Hub) -> None:
    result = trace(auditor(demo_hub), LINE, kinds=["allocated_from"])
    found = result["data"]["trace"]
    assert {e["kind"] for e in found["edges"]} == {"allocated_from"}
    assert {n["entity"] for n in found["nodes"]} == {"FinanceBudgetLine", "FinanceExpenditure"}


def test_a_trace_stops_at_max_nodes_and_names_its_frontier(demo_hub: Hub) -> None:
    found = trace(auditor(demo_hub), LINE, max_nodes=20)["data"]["trace"]
    assert len(found["nodes"]) == 20 and found["truncated"] is True
    ids = {n["id"] for n in found["nodes"]}
    assert found["frontier"] and set(found["frontier"]) <= ids
    assert all(e["from"] in ids | {None} and e["to"] in ids | {None} for e in found["edges"])


def test_a_trace_both_ways_is_cycle_safe(demo_hub: Hub) -> None:
    found = trace(auditor(demo_hub), LINE, "BOTH", 8, 3000)["data"]["trace"]
    keys = [(n["entity"], n["ref"]) for n in found["nodes"] if ":" in (n["ref"] or "")]
    assert len(keys) == len(set(keys))


def test_depth_and_max_nodes_beyond_their_bounds_are_refused(demo_hub: Hub) -> None:
    for depth, max_nodes in ((9, 10), (0, 10), (2, 10_001), (2, 0)):
        result = trace(auditor(demo_hub), LINE, depth=depth, max_nodes=max_nodes)
        assert result["data"]["trace"] is None
        assert result["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
    unknown = trace(auditor(demo_hub), LINE, kinds=["paid_by"])
    assert unknown["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_trace_through_a_department_the_caller_cannot_read_stops_there(demo_hub: Hub) -> None:
    result = trace(demo_hub.as_caller("public"), LINE)
    found = result["data"]["trace"]
    assert [n["entity"] for n in found["nodes"]] == ["FinanceBudgetLine"]
    assert any("FinanceExpenditure" in reason for reason in found["notFollowed"])
    assert "EX0" not in json.dumps(result)


def test_a_sealed_reference_works_for_its_caller_only(demo_hub: Hub) -> None:
    persons = demo_hub.as_caller("health-app").query("{ populationPersons(first: 1) { nodes { ref } } }")
    sealed = persons["data"]["populationPersons"]["nodes"][0]["ref"]
    mine = trace(demo_hub.as_caller("health-app"), sealed, "UPSTREAM", 1)
    assert mine["data"]["trace"]["nodes"][0]["entity"] == "PopulationPerson"
    other = trace(auditor(demo_hub), sealed, "UPSTREAM", 1)
    assert other["data"]["trace"] is None
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    forged = trace(demo_hub.as_caller("health-app"), sealed[:-4] + "AAAA", "UPSTREAM", 1)
    assert forged["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_plain_reference_to_a_masked_key_is_refused(demo_hub: Hub) -> None:
    plain = demo_hub.as_caller("civil-affairs-app", "social_assistance").query(
        "{ populationPersons(first: 1) { nodes { ref idNumber } } }"
    )["data"]["populationPersons"]["nodes"][0]["ref"]
    assert plain.startswith("population:Person:")
    guessed = trace(demo_hub.as_caller("health-app"), plain, "UPSTREAM", 1)
    assert guessed["data"]["trace"] is None
    assert guessed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert plain.split(":")[2] not in json.dumps(guessed)


def test_a_missing_and_a_hidden_start_get_the_same_answer(demo_hub: Hub) -> None:
    office = demo_hub.as_caller("district-office-app")
    elsewhere = demo_hub.as_caller("civil-affairs-app").query(
        '{ civilAffairsServiceDeliveries(first: 1, filter: {districtCode: {ne: "330102"}}) { nodes { ref } } }'
    )["data"]["civilAffairsServiceDeliveries"]["nodes"][0]["ref"]
    hidden = trace(office, elsewhere, depth=1)
    missing = trace(office, "civil_affairs:ServiceDelivery:CASD999999", depth=1)
    assert hidden["errors"][0]["message"] == missing["errors"][0]["message"]
    assert hidden["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_prov_json_of_a_trace_reads_back_with_prov(demo_hub: Hub) -> None:
    result = auditor(demo_hub).query(
        "query P($from: String!) { trace(from: $from, depth: 1) { nodes { id } edges { kind } provJson } }",
        {"from": LINE},
    )
    found = result["data"]["trace"]
    document = ProvDocument.deserialize(content=found["provJson"], format="json")
    records = document.get_records()
    entities = [r for r in records if r.get_type().localpart == "Entity"]
    derivations = [r for r in records if r.get_type().localpart == "Derivation"]
    assert len(entities) == len(found["nodes"])
    assert len(derivations) == len(found["edges"])
