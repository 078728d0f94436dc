"""Bounded answers: relation lists stop at their bound per parent (and say so), and a request
whose answer would pass the value budget answers no data and one LIMIT_EXCEEDED.

The small fixture, by key: 11010519850202567X has no case, 110105199001011234 has two (C1 and
C2), 330102200512120021 has one (C3). Each hub runs on the
fast path and on graphql-core's normal path, which must answer alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

import hub.app
from connectors.base import BATCH_CHUNK, Filter, Page, Query, TableSpec
from connectors.batch import fetch_in_chunks
from connectors.memory import MemoryConnector
from connectors.values import load_zone
from hub.access.plan import ReleaseEverything
from hub.catalog import Catalog
from hub.config import SettingsError, load_settings
from hub.services import build_services
from schema import build_schema
from tests.conftest import CASES, FIXTURES, PEOPLE, TEST_MASTER_KEY, Hub, register

# The memory connectors' zone (their default).
ZONE = load_zone("Asia/Shanghai")


class Recording:
    """A memory connector that keeps the queries it was asked, and the options of each batch
    read by value (a relation's rows)."""

    def __init__(self, inner: MemoryConnector) -> None:
        self.inner = inner
        self.queries: list[Query] = []
        self.batches: list[dict[str, Any]] = []

    async def fetch(self, query: Query) -> Page:
        self.queries.append(query)
        return await self.inner.fetch(query)

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        return await self.inner.count(table, where)

    async def fetch_by(self, *args: Any, **options: Any) -> Page:
        # Chunked over this connector's own `fetch`, as every connector's is, so that each
        # chunk's statement is kept too.
        self.batches.append(options)
        return await fetch_in_chunks(self.fetch, ZONE, *args, **options)

    async def close(self) -> None:
        await self.inner.close()


def _people(many: int) -> list[dict[str, Any]]:
    """The fixture's people, and `many` more with two cases each."""
    extra = [{**PEOPLE[0], "id_number": f"5000000000{n:08d}"} for n in range(many)]
    return [dict(row) for row in PEOPLE] + extra


def _cases(many: int) -> list[dict[str, Any]]:
    extra = [
        {**CASES[0], "case_id": f"X{n:05d}{side}", "recipient_id_number": f"5000000000{n:08d}"}
        for n in range(many)
        for side in "ab"
    ]
    return [dict(row) for row in CASES] + extra


@pytest.fixture(params=["fast", "normal"])
def serve(
    request: pytest.FixtureRequest, hub_db: URL, small_catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """`serve(more_people=0, **settings)`: a hub over the fixture (plus people with two cases
    each), and its connectors, on the fast or the normal path."""
    if request.param == "normal":
        monkeypatch.setattr(hub.app, "build_schema", partial(build_schema, fast_path=False))
    token = register(hub_db)
    clients: list[TestClient] = []

    def start(more_people: int = 0, **limits: Any) -> tuple[Hub, dict[str, Recording]]:
        settings = load_settings(
            {},
            database_url=hub_db.render_as_string(),
            manifests_dir=FIXTURES / "manifests",
            master_key=TEST_MASTER_KEY,
            **limits,
        )
        connectors = {
            "registry": Recording(MemoryConnector({"person": _people(more_people)})),
            "welfare": Recording(MemoryConnector({"welfare_case": _cases(more_people)})),
        }
        services = build_services(settings, catalog=small_catalog, connectors=connectors, policy=ReleaseEverything())
        client = TestClient(hub.app.create_app(services))
        client.__enter__()
        clients.append(client)
        return Hub(client, token, hub_db), connectors

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def access(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = body["extensions"]["access"]
    return found


def test_a_relation_list_past_its_bound_is_cut_and_its_path_named(serve: Any) -> None:
    hub, _ = serve(relation_page_size=1)
    body = hub.query("{ registryPersons { nodes { idNumber cases { caseId } } } }")
    assert "errors" not in body
    nodes = body["data"]["registryPersons"]["nodes"]
    assert [node["cases"] for node in nodes] == [[], [{"caseId": "C1"}], [{"caseId": "C3"}]]
    assert access(body)["truncated"] == [["registryPersons", "nodes", 1, "cases"]]
    assert access(body)["truncatedCount"] == 1


def test_a_list_within_its_bound_is_complete_and_not_named(serve: Any) -> None:
    hub, _ = serve(relation_page_size=2)
    body = hub.query("{ registryPersons { nodes { cases { caseId } } } }")
    assert [len(node["cases"]) for node in body["data"]["registryPersons"]["nodes"]] == [0, 2, 1]
    assert access(body)["truncated"] == []
    assert access(body)["truncatedCount"] == 0


def test_the_default_bound_is_100_rows_per_parent(serve: Any) -> None:
    hub, connectors = serve()
    hub.query("{ registryPersons { nodes { cases { caseId } } } }")
    (related,) = connectors["welfare"].batches
    assert related["per_value"] == 100


def test_aliases_of_one_relation_are_each_cut_under_their_response_key(serve: Any) -> None:
    hub, _ = serve(relation_page_size=1)
    body = hub.query("{ people: registryPersons { nodes { a: cases { caseId } b: cases { amount } } } }")
    assert access(body)["truncated"] == [["people", "nodes", 1, "a"], ["people", "nodes", 1, "b"]]


def test_lists_are_cut_at_every_depth_of_nesting(serve: Any) -> None:
    hub, _ = serve(relation_page_size=1)
    body = hub.query(
        "{ registryPersons(first: 2) { nodes { cases { recipient { cases { recipient { cases { caseId } } } } } } } }"
    )
    base = ["registryPersons", "nodes", 1, "cases"]
    assert access(body)["truncated"] == [
        base,
        [*base, 0, "recipient", "cases"],
        [*base, 0, "recipient", "cases", 0, "recipient", "cases"],
    ]


def test_a_to_one_relation_reads_one_row_and_is_never_named_truncated(serve: Any) -> None:
    hub, connectors = serve(relation_page_size=1)
    body = hub.query("{ welfareCases { nodes { caseId recipient { idNumber } } } }")
    assert "errors" not in body
    assert access(body)["truncatedCount"] == 0
    (related,) = connectors["registry"].batches
    assert related["per_value"] == 1


def test_the_truncated_list_is_bounded_and_counts_the_rest(serve: Any) -> None:
    hub, _ = serve(more_people=150, relation_page_size=1)
    body = hub.query("{ registryPersons(first: 1000) { nodes { cases { caseId } } } }")
    listed = access(body)["truncated"]
    assert access(body)["truncatedCount"] == 151
    assert len(listed) == 100
    # The first hundred in path order, whichever order the lists completed in.
    assert listed == sorted(listed)
    assert listed[0] == ["registryPersons", "nodes", 1, "cases"]


def test_a_relation_over_more_parents_than_a_chunk_is_one_statement_per_chunk_and_cut_alike(serve: Any) -> None:
    hub, connectors = serve(more_people=BATCH_CHUNK, relation_page_size=1)
    body = hub.query(f"{{ registryPersons(first: {BATCH_CHUNK + 3}) {{ nodes {{ idNumber cases {{ caseId }} }} }} }}")
    assert "errors" not in body
    cases = {node["idNumber"]: node["cases"] for node in body["data"]["registryPersons"]["nodes"]}
    assert len(cases) == BATCH_CHUNK + 3
    assert cases["110105199001011234"] == [{"caseId": "C1"}]
    assert cases["330102200512120021"] == [{"caseId": "C3"}]
    assert all(cases[f"5000000000{n:08d}"] == [{"caseId": f"X{n:05d}a"}] for n in range(BATCH_CHUNK))
    # The fixture's person with two cases, and every added person: each list cut at one.
    assert access(body)["truncatedCount"] == BATCH_CHUNK + 1
    assert len(connectors["welfare"].batches) == 1
    assert len([q for q in connectors["welfare"].queries if q.per_group is not None]) == 2


def test_a_relation_refused_in_its_first_chunk_sends_no_second_statement(serve: Any) -> None:
    # The list costs one value a row (the join value), BATCH_CHUNK + 3 of them; 3,000 more
    # leave the relation a read capped at 3,000 rows, which its first chunk passes.
    hub, connectors = serve(more_people=BATCH_CHUNK, max_values=BATCH_CHUNK + 3 + 3000)
    body = hub.query(f"{{ registryPersons(first: {BATCH_CHUNK + 3}) {{ nodes {{ cases {{ caseId }} }} }} }}")
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["LIMIT_EXCEEDED"]
    (related,) = [q for q in connectors["welfare"].queries if q.per_group is not None]
    assert related.limit == 3000


def test_an_answer_past_the_value_budget_is_refused_with_no_data(serve: Any) -> None:
    hub, _ = serve(max_values=10)
    body = hub.query("{ registryPersons { nodes { idNumber name cases { caseId amount } } } }")
    assert body["data"] is None
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
    assert error["extensions"]["limit"] == 10
    assert error["extensions"]["value"] > 10
    assert "path" not in error


def test_an_answer_exactly_at_the_budget_is_answered(serve: Any) -> None:
    # Three people, two fields each: six values.
    hub, _ = serve(max_values=6)
    body = hub.query("{ registryPersons { nodes { idNumber name } } }")
    assert "errors" not in body
    assert len(body["data"]["registryPersons"]["nodes"]) == 3
    hub, _ = serve(max_values=5)
    body = hub.query("{ registryPersons { nodes { idNumber name } } }")
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["LIMIT_EXCEEDED"]


def test_a_read_asks_the_department_for_no_more_rows_than_the_budget_has_left(serve: Any) -> None:
    hub, connectors = serve(max_values=10)
    body = hub.query("{ registryPersons(first: 500) { nodes { idNumber name } pageInfo { hasNextPage } } }")
    assert body["data"]["registryPersons"]["pageInfo"]["hasNextPage"] is False
    # Ten values left, two per row: five rows, not the five hundred the page asked for.
    assert [q.limit for q in connectors["registry"].queries] == [5]


def test_a_page_cut_by_the_budget_is_refused_not_paged(serve: Any) -> None:
    # Two rows fit; the page asks for three, and a third row exists: that is no next page.
    hub, _ = serve(max_values=4)
    body = hub.query("{ registryPersons(first: 3) { nodes { idNumber name } pageInfo { hasNextPage } } }")
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["LIMIT_EXCEEDED"]


def test_related_rows_count_once_per_parent_they_are_placed_under(serve: Any) -> None:
    # Every case's recipient, and that recipient's cases: C1 and C2 share a recipient whose
    # two cases are read once but placed under both. One value a row (a join value or caseId).
    # Read: 3 cases, 2 recipients, 3 cases; placed: 3 recipients, and 2 + 2 + 1 cases.
    query = "{ welfareCases { nodes { recipient { cases { caseId } } } } }"
    hub, _ = serve(max_values=3 + 2 + 3 + 3 + 5)
    assert "errors" not in hub.query(query)
    hub, _ = serve(max_values=3 + 2 + 3 + 3 + 5 - 1)
    assert hub.query(query)["data"] is None


def test_root_aliases_read_at_once_cannot_together_pass_the_budget(serve: Any) -> None:
    fields = "nodes { idNumber name }"
    hub, _ = serve(max_values=18)
    three = "{ " + " ".join(f"a{n}: registryPersons {{ {fields} }}" for n in range(3)) + " }"
    assert "errors" not in hub.query(three)
    four = "{ " + " ".join(f"a{n}: registryPersons {{ {fields} }}" for n in range(4)) + " }"
    body = hub.query(four)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["LIMIT_EXCEEDED"]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"HUB_RELATION_PAGE_SIZE": "0"}, "HUB_RELATION_PAGE_SIZE"),
        ({"HUB_RELATION_PAGE_SIZE": "1001"}, "HUB_RELATION_PAGE_SIZE"),
        ({"HUB_RELATION_PAGE_SIZE": "50", "HUB_MAX_RELATION_PAGE_SIZE": "40"}, "HUB_RELATION_PAGE_SIZE"),
        ({"HUB_MAX_VALUES": "0"}, "HUB_MAX_VALUES"),
        ({"HUB_MAX_VALUES": "lots"}, "HUB_MAX_VALUES"),
    ],
)
def test_bounds_out_of_range_are_refused_at_start(environ: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)


def test_bounds_are_read_from_the_environment() -> None:
    settings = load_settings(
        {"HUB_RELATION_PAGE_SIZE": "250", "HUB_MAX_RELATION_PAGE_SIZE": "500", "HUB_MAX_VALUES": "5000"}
    )
    assert (settings.relation_page_size, settings.max_relation_page_size, settings.max_values) == (250, 500, 5000)
    defaults = load_settings({})
    assert (defaults.relation_page_size, defaults.max_relation_page_size, defaults.max_values) == (100, 1000, 1_000_000)
