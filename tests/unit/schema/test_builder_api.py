"""The GraphQL API over a small two-department catalog held in memory: shape, filters, order,
pages, relations, values and error codes, as a department app sees them over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Hub

PEOPLE_QUERY = """
query($filter: RegistryPersonFilter, $order: [RegistryPersonOrderBy!], $first: Int, $after: String) {
  registryPersons(filter: $filter, orderBy: $order, first: $first, after: $after) {
    totalCount
    nodes { idNumber name }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def people(hub: Hub, **variables: Any) -> dict[str, Any]:
    result = hub.query(PEOPLE_QUERY, variables)
    assert "errors" not in result, result
    return result["data"]["registryPersons"]


def names(page: dict[str, Any]) -> list[str]:
    return [node["name"] for node in page["nodes"]]


def test_list_gives_nodes_total_count_and_page_info(hub: Hub) -> None:
    page = people(hub, first=2)
    assert page["totalCount"] == 3
    assert len(page["nodes"]) == 2
    assert page["pageInfo"]["hasNextPage"] is True
    assert isinstance(page["pageInfo"]["endCursor"], str)


def test_order_by_name_sorts_by_code_point(hub: Hub) -> None:
    assert names(people(hub, order=["NAME_ASC"])) == sorted(["王小明", "李华", "张伟"])
    assert names(people(hub, order=["NAME_DESC"])) == sorted(["王小明", "李华", "张伟"], reverse=True)


def test_nulls_sort_last_ascending_and_first_descending(hub: Hub) -> None:
    query = "query($o: [RegistryPersonOrderBy!]) { registryPersons(orderBy: $o) { nodes { income } } }"
    ascending = hub.query(query, {"o": ["INCOME_ASC"]})["data"]["registryPersons"]["nodes"]
    descending = hub.query(query, {"o": ["INCOME_DESC"]})["data"]["registryPersons"]["nodes"]
    assert [n["income"] for n in ascending] == ["8800.00", "12345.67", None]
    assert [n["income"] for n in descending] == [None, "12345.67", "8800.00"]


def test_filters_combine_with_and_or_not(hub: Hub) -> None:
    chaoyang = people(hub, filter={"district": {"eq": "Chaoyang"}})
    assert sorted(names(chaoyang)) == sorted(["王小明", "张伟"])
    either = people(hub, filter={"or": [{"name": {"eq": "李华"}}, {"children": {"gte": 2}}]})
    assert sorted(names(either)) == sorted(["李华", "王小明"])
    negated = people(hub, filter={"not": {"district": {"in": ["Chaoyang"]}}})
    assert names(negated) == ["李华"]
    nulls = people(hub, filter={"income": {"isNull": True}})
    assert names(nulls) == ["张伟"]


def test_contains_treats_percent_and_underscore_literally(hub: Hub) -> None:
    assert people(hub, filter={"name": {"contains": "%"}})["nodes"] == []
    assert names(people(hub, filter={"idNumber": {"contains": "567X"}})) == ["李华"]


def test_pages_with_after_visit_every_row_once_in_order(hub: Hub) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = people(hub, first=1, after=after, order=["DISTRICT_ASC"])
        seen.extend(names(page))
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == names(people(hub, order=["DISTRICT_ASC"]))
    assert len(seen) == 3


def test_cursor_of_another_order_is_refused(hub: Hub) -> None:
    cursor = people(hub, first=1, order=["NAME_ASC"])["pageInfo"]["endCursor"]
    result = hub.query(PEOPLE_QUERY, {"first": 1, "after": cursor, "order": ["DISTRICT_ASC"]})
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_forged_cursor_is_bad_user_input(hub: Hub) -> None:
    result = hub.query(PEOPLE_QUERY, {"after": "not-a-cursor"})
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert result["errors"][0]["path"] == ["registryPersons"]


def test_page_size_above_the_maximum_is_limit_exceeded(hub: Hub) -> None:
    result = hub.query(PEOPLE_QUERY, {"first": 10_001})
    assert result["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


def test_after_and_offset_together_are_refused(hub: Hub) -> None:
    cursor = people(hub, first=1)["pageInfo"]["endCursor"]
    result = hub.query("query($a: String) { registryPersons(after: $a, offset: 1) { nodes { name } } }", {"a": cursor})
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_offset_skips_rows(hub: Hub) -> None:
    result = hub.query("{ registryPersons(orderBy: [NAME_ASC], offset: 1) { nodes { name } } }")
    assert [n["name"] for n in result["data"]["registryPersons"]["nodes"]] == sorted(["王小明", "李华", "张伟"])[1:]


def test_by_key_returns_the_row_or_null(hub: Hub) -> None:
    found = hub.query('{ registryPerson(key: "11010519850202567X") { name district } }')
    assert found["data"]["registryPerson"] == {"name": "李华", "district": "Haidian"}
    missing = hub.query('{ registryPerson(key: "000000000000000000") { name } }')
    assert missing == {"data": {"registryPerson": None}, "extensions": missing["extensions"]}


def test_relations_cross_departments_both_ways(hub: Hub) -> None:
    result = hub.query('{ registryPerson(key: "110105199001011234") { cases { caseId status recipient { name } } } }')
    cases = result["data"]["registryPerson"]["cases"]
    assert [c["caseId"] for c in cases] == ["C1", "C2"]
    assert all(c["recipient"]["name"] == "王小明" for c in cases)


def test_values_are_iso_dates_with_offset_and_money_as_strings(hub: Hub) -> None:
    result = hub.query(
        '{ registryPerson(key: "110105199001011234") { birthDate registeredAt income active children } }'
    )
    assert result["data"]["registryPerson"] == {
        "birthDate": "1990-01-01",
        "registeredAt": "2020-05-01T09:30:00+08:00",
        "income": "12345.67",
        "active": True,
        "children": 2,
    }


def test_datetime_filter_compares_moments_across_offsets(hub: Hub) -> None:
    # 2021-06-01T02:00Z is 10:00 in Shanghai: the moment 李华 registered.
    page = people(hub, filter={"registeredAt": {"eq": "2021-06-01T02:00:00+00:00"}})
    assert names(page) == ["李华"]


@pytest.mark.parametrize("moment", ["2021-06-01", "2021-06-01T10:00:00"])
def test_datetime_without_an_offset_is_refused_as_bad_user_input(hub: Hub, moment: str) -> None:
    # In a variable: read in no zone the caller named, it would cut at another hour.
    result = hub.query(PEOPLE_QUERY, {"filter": {"registeredAt": {"gte": moment}}})
    assert result["data"] is None
    [error] = result["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "needs an offset" in error["message"]
    # Written in the document itself.
    inline = hub.query(f'{{ registryPersons(filter: {{registeredAt: {{lt: "{moment}"}}}}) {{ nodes {{ name }} }} }}')
    assert [e["extensions"]["code"] for e in inline["errors"]] == ["BAD_USER_INPUT"]
    assert "needs an offset" in inline["errors"][0]["message"]


def test_datetime_with_z_or_an_offset_is_accepted(hub: Hub) -> None:
    assert names(people(hub, filter={"registeredAt": {"eq": "2021-06-01T02:00:00Z"}})) == ["李华"]


def test_aliases_and_fragments_select_fields(hub: Hub) -> None:
    result = hub.query(
        """
        fragment who on RegistryPerson { name }
        { a: registryPersons(filter: {district: {eq: "Haidian"}}) { nodes { ...who  id: idNumber } }
          b: registryPersons(first: 1, orderBy: [NAME_ASC]) { nodes { ... on RegistryPerson { name } } } }
        """
    )
    assert result["data"]["a"]["nodes"] == [{"name": "李华", "id": "11010519850202567X"}]
    assert result["data"]["b"]["nodes"] == [{"name": sorted(["王小明", "李华", "张伟"])[0]}]


def test_unknown_field_is_bad_user_input_with_status_400(hub: Hub) -> None:
    response = hub.client.post(
        "/graphql",
        json={"query": "{ registryPersons { nodes { salary } } }"},
        headers={"Authorization": f"Bearer {hub.token}"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_syntax_error_is_bad_user_input(hub: Hub) -> None:
    result = hub.query("{ registryPersons { nodes { name }")
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_too_deep_document_is_limit_exceeded(hub: Hub) -> None:
    inner = "caseId"
    for _ in range(6):
        inner = f"cases {{ recipient {{ {inner} }} }}".replace("recipient { caseId }", "caseId")
    deep = "{ registryPersons { nodes { " + inner + " } } }"
    assert hub.query(deep.replace(inner, "name"))["data"]  # the same shape, shallow, is fine
    result = hub.query(deep)
    assert result["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


def test_too_many_aliases_is_limit_exceeded(hub: Hub) -> None:
    aliases = " ".join(f"a{i}: registryPersons {{ totalCount }}" for i in range(31))
    result = hub.query("{ " + aliases + " }")
    assert result["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


def test_document_over_the_token_limit_is_limit_exceeded_before_it_is_parsed_whole(hub: Hub) -> None:
    # 20,000 tokens is the default limit; each `__typename` is one.
    long = "{ registryPersons { totalCount " + "__typename " * 20_000 + "} }"
    response = hub.client.post("/graphql", json={"query": long}, headers={"Authorization": f"Bearer {hub.token}"})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert "20000 tokens" in error["message"]


def test_filter_on_unknown_field_is_a_validation_error(hub: Hub) -> None:
    result = hub.query('{ registryPersons(filter: {salary: {eq: "1"}}) { totalCount } }')
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_malformed_body_is_bad_user_input(hub: Hub) -> None:
    response = hub.client.post(
        "/graphql",
        content=b"{not json",
        headers={"Authorization": f"Bearer {hub.token}", "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_get_with_query_runs_queries_only(hub: Hub) -> None:
    response = hub.client.get(
        "/graphql",
        params={"query": "{ registryPersons { totalCount } }"},
        headers={"Authorization": f"Bearer {hub.token}"},
    )
    assert response.json()["data"] == {"registryPersons": {"totalCount": 3}}


def test_cursor_is_sealed_and_reveals_nothing(hub: Hub) -> None:
    import base64

    cursor = people(hub, first=1, order=["NAME_ASC"])["pageInfo"]["endCursor"]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    first_name = sorted(["王小明", "李华", "张伟"])[0]
    assert first_name.encode() not in raw
    assert b"id_number" not in raw
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    result = hub.query(PEOPLE_QUERY, {"first": 1, "after": tampered, "order": ["NAME_ASC"]})
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_cursor_issued_to_another_caller_is_refused(hub: Hub) -> None:
    from tests.conftest import register

    cursor = people(hub, first=1, order=["NAME_ASC"])["pageInfo"]["endCursor"]
    other = register(hub.url, "other-app")
    result = hub.query(PEOPLE_QUERY, {"first": 1, "after": cursor, "order": ["NAME_ASC"]}, token=other)
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
