"""Finding 6 of the security review: one request could take the hub's memory. As the auditor,
`populationDistricts(first: 2) { nodes { residents { district { residents ... } } } }` listed
every resident of two districts under each of their residents (150 MB, +1.46 GB of hub memory).

Relation lists now stop at 100 rows per parent, in the department's SQL, and say where they were
cut; nesting that multiplies them past the cost limit is refused before it runs, and an answer
that would pass the value budget (one million values) is refused whole. Run on the demo over
SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Hub

FINDING = "{ populationDistricts(first: 2) { nodes { residents { district { residents { districtCode } } } } } }"


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def auditor(request: pytest.FixtureRequest) -> Hub:
    fixture = {"sqlite": "demo_hub", "postgresql": "postgres_hub", "mariadb": "mariadb_hub"}[request.param]
    found: Hub = request.getfixturevalue(fixture)
    return found.as_caller("auditor", "audit")


def access(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = body["extensions"]["access"]
    return found


def test_the_findings_query_lists_at_most_100_residents_under_each_parent(auditor: Hub) -> None:
    body = auditor.query(FINDING)
    assert "errors" not in body, body.get("errors")
    districts = body["data"]["populationDistricts"]["nodes"]
    assert [len(district["residents"]) for district in districts] == [100, 100]
    for district in districts:
        codes = {resident["district"]["residents"][0]["districtCode"] for resident in district["residents"]}
        assert len(codes) == 1
        assert all(len(resident["district"]["residents"]) == 100 for resident in district["residents"])
    # Every district has more than 100 residents: both lists at the top and the 200 below are cut.
    assert access(body)["truncatedCount"] == 2 + 200
    listed = access(body)["truncated"]
    assert len(listed) == 100
    assert listed[0] == ["populationDistricts", "nodes", 0, "residents"]
    assert listed[1] == ["populationDistricts", "nodes", 0, "residents", 0, "district", "residents"]


def test_a_list_inside_a_list_is_cut_under_each_parent_and_aliases_each_count(auditor: Hub) -> None:
    body = auditor.query(
        "{ populationDistricts(first: 1) { nodes { a: residents { idNumber } b: residents { householdMembers { idNumber } } } } }"
    )
    assert "errors" not in body, body.get("errors")
    node = body["data"]["populationDistricts"]["nodes"][0]
    assert len(node["a"]) == len(node["b"]) == 100
    listed = access(body)["truncated"]
    assert ["populationDistricts", "nodes", 0, "a"] in listed
    assert ["populationDistricts", "nodes", 0, "b"] in listed
    # Households are small: none of the lists inside `b` reaches the bound.
    assert access(body)["truncatedCount"] == 2


def test_nesting_past_the_value_budget_is_refused_for_its_cost_before_it_runs(auditor: Hub) -> None:
    # 100 districts (the default page) x 100 residents x 100 residents x 100 residents, priced
    # before anything runs (it would read fifteen million rows: there are 15 districts).
    deeper = (
        "{ populationDistricts { nodes { residents { district { residents { district { residents "
        "{ districtCode } } } } } } } }"
    )
    body = auditor.query(deeper)
    assert body["data"] is None
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["extensions"] == {"code": "LIMIT_EXCEEDED", "limit": "cost", "value": 102_020_102, "max": 10_000_000}


def test_aliases_multiplying_one_relation_are_refused_for_their_cost(auditor: Hub) -> None:
    inner = "district { residents { districtCode idNumber } }"
    aliases = " ".join(f"r{n}: residents {{ {inner} }}" for n in range(30))
    body = auditor.query(f"{{ populationDistricts {{ nodes {{ {aliases} }} }} }}")
    assert body["data"] is None
    assert [(e["extensions"]["code"], e["extensions"]["limit"]) for e in body["errors"]] == [("LIMIT_EXCEEDED", "cost")]


def test_a_request_within_its_cost_but_past_the_value_budget_is_refused_whole(auditor: Hub) -> None:
    # Nine lists of 10,000 rows x 12 fields: 1,080,000 values, priced at 1,080,018, within the
    # cost limit; the value budget stops it while it reads.
    fields = "deliveryId caseId serviceType deliveredAt amount districtCode status requestId expenditureId"
    fields += " recipientName recipientIdNumber recipientMobile"
    lists = " ".join(f"l{n}: civilAffairsServiceDeliveries(first: 10000) {{ nodes {{ {fields} }} }}" for n in range(9))
    body = auditor.query("{ " + lists + " }")
    assert body["data"] is None
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["extensions"]["limit"] == 1_000_000
    assert error["extensions"]["value"] > 1_000_000
