"""Lists longer than a slice (connectors/pacing.py) are shaped, and their relations gathered and
placed, a slice at a time with turns for the event loop between: the answer is still the
normal path's, byte for byte, including where a list is refused and completed the normal way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from typing import Any

import pytest

import schema.execution.shaper
from connectors.pacing import SLICE_ROWS
from hub.access.plan import Decision, Verdict
from hub.catalog import load_catalog
from hub.encoding import EncodedList
from tests.conftest import FIXTURES
from tests.unit.schema.execution.test_fast_path_differential import Pair, _serve, hub_database

PEOPLE = 2 * SLICE_ROWS + SLICE_ROWS // 2
CASES = 3 * SLICE_ROWS


def people() -> list[dict[str, Any]]:
    return [
        {
            "id_number": f"110105{n:012d}",
            "name": f"居民{n}",
            "birth_date": None,
            "district": "Chaoyang" if n % 3 else None,
            "income": Decimal(n) / 100,
            "registered_at": None,
            "children": n % 4,
            "active": n % 2 == 0,
        }
        for n in range(PEOPLE)
    ]


def cases() -> list[dict[str, Any]]:
    # Most people have one case, some two, the last ones none.
    return [
        {
            "case_id": f"C{n:05d}",
            "recipient_id_number": f"110105{n % (PEOPLE - 200):012d}",
            "amount": Decimal(n),
            "status": "open" if n % 2 else "closed",
        }
        for n in range(CASES)
    ]


@pytest.fixture(scope="module")
def long(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    catalog = load_catalog(FIXTURES / "manifests")
    tables = {"registry": {"person": people()}, "welfare": {"welfare_case": cases()}}
    with ExitStack() as stack:
        url = hub_database(tmp_path_factory.mktemp("long"))
        yield _serve(stack, url, catalog, FIXTURES / "manifests", tables, max_values=10**6)


def test_a_long_list_with_a_to_many_relation_answers_as_the_normal_path(long: Pair) -> None:
    query = f"{{ registryPersons(first: {PEOPLE}) {{ nodes {{ idNumber name income active cases {{ caseId amount }} }} }} }}"
    body = long.assert_same(query, {})
    nodes = body["data"]["registryPersons"]["nodes"]
    assert len(nodes) == PEOPLE
    assert sum(len(node["cases"]) for node in nodes) == CASES
    assert nodes[-1]["cases"] == []


def test_a_long_list_with_a_to_one_relation_answers_as_the_normal_path(long: Pair) -> None:
    query = f"{{ welfareCases(first: {CASES}) {{ nodes {{ caseId status recipient {{ idNumber district }} }} }} }}"
    body = long.assert_same(query, {})
    nodes = body["data"]["welfareCases"]["nodes"]
    assert len(nodes) == CASES
    assert all(node["recipient"] is not None for node in nodes)


def test_a_long_list_refused_by_its_shaper_is_completed_the_normal_way_alike(long: Pair) -> None:
    # A key masked to null is a null in a non-null field: the shaper refuses the list and the
    # normal path completes it, nulling the list with one error.
    # A new policy version: plans are cached by it.
    long.policy.fields, long.policy.version = {"caseId": Verdict(Decision.MASKED, "no grant")}, "masked"
    try:
        body = long.assert_same(f"{{ welfareCases(first: {CASES}) {{ nodes {{ caseId status }} }} }}", {})
    finally:
        long.policy.fields, long.policy.version = {}, "plain"
    assert body["data"]["welfareCases"] is None
    assert [error["extensions"]["code"] for error in body["errors"]] == ["INTERNAL"]


def test_a_long_list_without_relations_is_encoded_a_slice_at_a_time_as_the_normal_path_answers(
    long: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[EncodedList] = []

    def recorded(pieces: list[bytes], values: int) -> EncodedList:
        made.append(EncodedList(pieces, values))
        return made[-1]

    monkeypatch.setattr(schema.execution.shaper, "EncodedList", recorded)
    query = f"{{ registryPersons(first: {PEOPLE}) {{ nodes {{ idNumber name income active district }} }} }}"
    body = long.assert_same(query, {})
    nodes = body["data"]["registryPersons"]["nodes"]
    assert [node["idNumber"] for node in nodes] == [f"110105{n:012d}" for n in range(PEOPLE)]
    # The fast path's list came encoded, one piece per slice of rows: no list of objects.
    assert [len(encoded.pieces) for encoded in made] == [3]
