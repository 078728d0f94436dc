"""Tiered access on the demo, as department apps see it over HTTP: plain, masked or withheld
fields, district row rules in SQL, equality lookups on blind-indexed fields."""

from __future__ import annotations

import re

from tests.conftest import Hub

PERSONS = "{ populationPersons(first: 20) { totalCount nodes { idNumber name birthDate mobile address } } }"


def test_other_department_sees_personal_data_masked(demo_hub: Hub) -> None:
    health = demo_hub.as_caller("health-app")
    result = health.query(PERSONS)
    assert "errors" not in result
    for node in result["data"]["populationPersons"]["nodes"]:
        assert re.fullmatch(r"\d{3}\*{15}", node["idNumber"])
        assert node["mobile"] is None or re.fullmatch(r"\d{3}\*{4}\d{4}", node["mobile"])
        assert re.fullmatch(r"\d{4}", node["birthDate"])
        assert node["name"][0] != "*" and set(node["name"][1:]) <= {"*"}
        assert node["address"] is None
    masked = result["extensions"]["access"]["masked"]
    assert "populationPersons/nodes/*/idNumber" in masked
    assert "populationPersons/nodes/*/address" in masked


def test_grant_releases_personal_data_plain_for_its_purpose_only(demo_hub: Hub) -> None:
    granted = demo_hub.as_caller("civil-affairs-app", "social_assistance").query(PERSONS)
    ids = [n["idNumber"] for n in granted["data"]["populationPersons"]["nodes"]]
    assert all(re.fullmatch(r"\d{17}[\dX]", i) for i in ids)
    other_purpose = demo_hub.as_caller("civil-affairs-app", "statistics").query(PERSONS)
    assert all("*" in n["idNumber"] for n in other_purpose["data"]["populationPersons"]["nodes"])


def test_core_data_is_withheld_with_one_error_per_list(demo_hub: Hub) -> None:
    result = demo_hub.as_caller("civil-affairs-app", "social_assistance").query(
        "{ healthVisits(first: 30) { nodes { visitId diagnosis } } }"
    )
    nodes = result["data"]["healthVisits"]["nodes"]
    assert len(nodes) == 30 and all(n["diagnosis"] is None for n in nodes)
    (error,) = result["errors"]
    assert error["path"] == ["healthVisits", "nodes", "*", "diagnosis"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["count"] == 30
    own = demo_hub.as_caller("health-app").query("{ healthVisits(first: 3) { nodes { diagnosis } } }")
    assert all(n["diagnosis"] for n in own["data"]["healthVisits"]["nodes"])


def test_district_office_sees_only_its_district_with_right_counts(demo_hub: Hub) -> None:
    query = "{ civilAffairsServiceDeliveries(first: 5) { totalCount nodes { districtCode } pageInfo { hasNextPage } } }"
    everyone = demo_hub.as_caller("civil-affairs-app").query(query)["data"]["civilAffairsServiceDeliveries"]
    district = demo_hub.as_caller("district-office-app").query(query)["data"]["civilAffairsServiceDeliveries"]
    assert {n["districtCode"] for n in district["nodes"]} == {"330102"}
    in_district = demo_hub.as_caller("civil-affairs-app").query(
        '{ civilAffairsServiceDeliveries(filter: {districtCode: {eq: "330102"}}) { totalCount } }'
    )["data"]["civilAffairsServiceDeliveries"]["totalCount"]
    assert district["totalCount"] == in_district < everyone["totalCount"]


def test_public_caller_gets_public_data_only(demo_hub: Hub) -> None:
    result = demo_hub.as_caller("public").query(
        "{ populationDistricts { nodes { name type } } financeBudgetLines(first: 2) { nodes { program amount } } "
        "civilAffairsServiceDeliveries(first: 2) { nodes { serviceType recipientName } } }"
    )
    assert len(result["data"]["populationDistricts"]["nodes"]) == 8
    assert all(n["amount"] for n in result["data"]["financeBudgetLines"]["nodes"])
    # Deliveries are internal (L2) down to their key: not one row is released to the public.
    assert result["data"]["civilAffairsServiceDeliveries"] is None
    (error,) = result["errors"]
    assert error["path"] == ["civilAffairsServiceDeliveries"]
    assert error["extensions"]["code"] == "FORBIDDEN"


def test_equality_lookup_on_a_masked_blind_indexed_field_is_allowed(demo_hub: Hub) -> None:
    plain = demo_hub.as_caller("civil-affairs-app", "social_assistance").query(
        "{ populationPersons(first: 1) { nodes { idNumber } } }"
    )
    id_number = plain["data"]["populationPersons"]["nodes"][0]["idNumber"]
    health = demo_hub.as_caller("health-app")
    found = health.query(
        "query($id: String) { populationPersons(filter: {idNumber: {eq: $id}}) { nodes { idNumber } } }",
        {"id": id_number},
    )
    (node,) = found["data"]["populationPersons"]["nodes"]
    assert node["idNumber"] == id_number[:3] + "*" * 15
    # The ID number is encrypted at rest: a pattern or an order on it is refused for every
    # caller (BAD_USER_INPUT; its order is not even in the schema), an equality on the masked
    # name for this one (FORBIDDEN).
    for refused, code in (
        ('{ populationPersons(filter: {idNumber: {startsWith: "3301"}}) { totalCount } }', "BAD_USER_INPUT"),
        ("{ populationPersons(orderBy: [ID_NUMBER_ASC]) { totalCount } }", "BAD_USER_INPUT"),
        ('{ populationPersons(filter: {name: {eq: "王芳"}}) { totalCount } }', "FORBIDDEN"),
    ):
        result = health.query(refused)
        assert result["errors"][0]["extensions"]["code"] == code, refused
        assert not result.get("data") or result["data"]["populationPersons"] is None


def test_unknown_purpose_is_refused_with_400(demo_hub: Hub) -> None:
    response = demo_hub.client.post(
        "/graphql",
        json={"query": "{ populationDistricts { totalCount } }"},
        headers={"Authorization": f"Bearer {demo_hub.token}", "X-Hub-Purpose": "curiosity"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_PURPOSE"


def test_lookup_by_key_needs_the_key_plain_or_searchable(demo_hub: Hub) -> None:
    plain = demo_hub.as_caller("civil-affairs-app", "social_assistance").query(
        "{ populationPersons(first: 1) { nodes { idNumber } } }"
    )
    id_number = plain["data"]["populationPersons"]["nodes"][0]["idNumber"]
    query = f'{{ populationPerson(key: "{id_number}") {{ gender }} }}'
    # The auditor sees ID numbers masked and may not search them: guessing keys is refused.
    refused = demo_hub.as_caller("auditor").query(query)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert refused["data"] == {"populationPerson": None}
    # The health app sees them masked but may look one up by equality.
    found = demo_hub.as_caller("health-app").query(query)
    assert found["data"]["populationPerson"]["gender"]


def test_searching_a_masked_field_needs_a_single_equality(demo_hub: Hub) -> None:
    health = demo_hub.as_caller("health-app")
    for refused in (
        '{ populationPersons(filter: {mobile: {in: ["13800000000", "13900000000"]}}) { totalCount } }',
        '{ populationPersons(filter: {or: [{mobile: {eq: "13800000000"}}, {gender: {eq: "男"}}]}) { totalCount } }',
        '{ populationPersons(filter: {not: {mobile: {eq: "13800000000"}}}) { totalCount } }',
    ):
        result = health.query(refused)
        assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN", refused


def test_a_relation_is_not_followed_through_a_withheld_join_field(demo_hub: Hub) -> None:
    result = demo_hub.as_caller("auditor").query(
        "{ populationPersons(first: 3) { nodes { gender assistanceCases { caseId } } } }"
    )
    # The auditor sees ID numbers masked and may not search them, so it may not join on them.
    assert [n["assistanceCases"] for n in result["data"]["populationPersons"]["nodes"]] == [None] * 3
    (error,) = [e for e in result["errors"] if e["path"][-1] == "assistanceCases"]
    assert error["extensions"] == {
        "code": "FORBIDDEN",
        "reason": "following assistanceCases needs idNumber released plain to you",
        "count": 3,
    }


def test_rows_whose_key_is_withheld_cannot_be_listed(demo_hub: Hub) -> None:
    result = demo_hub.as_caller("public").query("{ populationPersons(first: 2) { nodes { gender } } }")
    assert result["data"] == {"populationPersons": None}
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_a_caller_without_a_purpose_is_told_which_of_its_purposes_would_release_the_masked_fields(
    demo_hub: Hub,
) -> None:
    result = demo_hub.as_caller("civil-affairs-app").query(PERSONS)
    assert all("*" in n["idNumber"] for n in result["data"]["populationPersons"]["nodes"])
    assert result["extensions"]["access"]["purposesThatRelease"] == ["social_assistance"]


def test_the_purpose_hint_never_names_another_department_s_grants(demo_hub: Hub) -> None:
    # Health holds no grant on population.Person: the fields stay masked and no purpose is named,
    # not even civil affairs' social_assistance.
    result = demo_hub.as_caller("health-app").query(PERSONS)
    assert "populationPersons/nodes/*/idNumber" in result["extensions"]["access"]["masked"]
    assert "purposesThatRelease" not in result["extensions"]["access"]


def test_no_purpose_hint_once_a_purpose_is_stated_or_nothing_is_hidden(demo_hub: Hub) -> None:
    stated = demo_hub.as_caller("civil-affairs-app", "statistics").query(PERSONS)
    assert "purposesThatRelease" not in stated["extensions"]["access"]
    public = demo_hub.as_caller("civil-affairs-app").query("{ populationDistricts { totalCount } }")
    assert "purposesThatRelease" not in public["extensions"]["access"]
