"""Relation fields inside shaped lists are loaded and shaped per list, not per row.

Each test runs one query in process (`schema.execute`, no HTTP) on both paths over a registry of
30 persons with 0, 1 or 2 welfare cases each, counts what a relation costs per list with spies,
and checks that the fast path answers as the normal path does.
"""

from __future__ import annotations

import gc
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from graphql import ExecutionResult
from sqlalchemy.engine import URL
from strawberry.dataloader import DataLoader

import schema.execution.relations
import schema.resolvers
from connectors.base import Page, Query, UnavailableError
from connectors.memory import MemoryConnector
from hub.access.plan import Decision, Verdict
from hub.access.read import Reader
from hub.auth.principal import Principal
from hub.catalog import load_catalog
from hub.config import load_settings
from hub.errors import Internal
from hub.migrate import upgrade
from hub.services import Services, build_services
from schema import build_schema
from schema.context import RequestContext
from schema.execution.shaper import Shaper
from tests.conftest import FIXTURES, TEST_MASTER_KEY
from tests.unit.schema.execution.test_fast_path_differential import Policy

PERSONS = 30
DENIED = Verdict(Decision.DENIED, "not for tests")


def person_id(index: int) -> str:
    return f"1101051990{index:08d}"


def tables() -> dict[str, dict[str, list[dict[str, Any]]]]:
    persons = [{"id_number": person_id(i), "name": f"居民{i}", "children": i % 4} for i in range(PERSONS)]
    # Person i has i % 3 cases: lists of none, one and two rows.
    cases = [
        {"case_id": f"C{i:02d}{n}", "recipient_id_number": person_id(i), "amount": Decimal(i), "status": "open"}
        for i in range(PERSONS)
        for n in range(i % 3)
    ]
    return {"registry": {"person": persons}, "welfare": {"welfare_case": cases}}


class Downable(MemoryConnector):
    """A memory connector whose database can be taken down."""

    down = False

    async def fetch(self, query: Query) -> Page:
        if self.down:
            raise UnavailableError("the department database is unavailable")
        return await super().fetch(query)


@dataclass
class Answer:
    result: ExecutionResult
    context: RequestContext
    # What the relations cost, as the spies of the `calls` fixture counted it.
    calls: Counter[str]

    @property
    def data(self) -> Any:
        assert self.result.data is not None, self.result.errors
        return self.result.data


@dataclass
class Hub:
    services: Services
    policy: Policy
    connectors: dict[str, Downable]
    calls: Counter[str]

    async def answer(self, query: str, fast: bool) -> Answer:
        built = build_schema(self.services.catalog, self.services.settings, fast_path=fast)
        principal = Principal("tests", "tests", ("department_app",))
        services = self.services
        context = RequestContext(
            principal, None, services.reader, services.planner, built.entity_types, built.root_fields, None
        )
        self.calls.clear()
        result = await built.schema.execute(query, context_value=context)
        return Answer(result, context, Counter(self.calls))

    async def both(self, query: str) -> tuple[Answer, Answer]:
        """The fast path's answer and the normal path's, checked alike."""
        fast, normal = await self.answer(query, True), await self.answer(query, False)
        assert fast.result.data == normal.result.data
        assert sorted(map(_error, fast.result.errors or [])) == sorted(map(_error, normal.result.errors or []))
        assert list(fast.context.withheld.items()) == list(normal.context.withheld.items())
        assert {path: failed.count for path, failed in fast.context.failed_relations.items()} == {
            path: failed.count for path, failed in normal.context.failed_relations.items()
        }
        return fast, normal


def _error(error: Any) -> tuple[str, str]:
    return (repr(error.path), error.message)


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory: pytest.TempPathFactory) -> URL:
    url = URL.create("sqlite+aiosqlite", database=str(Path(tmp_path_factory.mktemp("hub")) / "hub.db"))
    upgrade(url)
    return url


@pytest.fixture
async def hub(hub_url: URL, calls: Counter[str]) -> AsyncIterator[Hub]:
    manifests = FIXTURES / "manifests"
    settings = load_settings(
        {}, database_url=hub_url.render_as_string(), manifests_dir=manifests, master_key=TEST_MASTER_KEY
    )
    connectors = {department: Downable(named) for department, named in tables().items()}
    policy = Policy()
    services = build_services(settings, catalog=load_catalog(manifests), connectors=connectors, policy=policy)
    await services.start()
    try:
        yield Hub(services, policy, connectors, calls)
    finally:
        await services.close()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts of what a relation costs: its selection worked out per row by the resolver or per
    list by the fast path, the loader asked, the reader's batched reads, related rows shaped."""
    counted: Counter[str] = Counter()

    def count(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def spy(*args: Any, **kwargs: Any) -> Any:
            counted[name] += 1
            return function(*args, **kwargs)

        return spy

    monkeypatch.setattr(schema.resolvers, "relation_load", count("per row", schema.resolvers.relation_load))
    monkeypatch.setattr(
        schema.execution.relations, "relation_load", count("per list", schema.execution.relations.relation_load)
    )
    monkeypatch.setattr(DataLoader, "load", count("load", DataLoader.load))
    monkeypatch.setattr(Reader, "related", count("related", Reader.related))
    monkeypatch.setattr(Shaper, "objects", count("objects", Shaper.objects))
    return counted


async def test_a_list_of_rows_works_out_its_relation_once_not_once_per_row(hub: Hub) -> None:
    fast, normal = await hub.both("{ registryPersons { nodes { name cases { caseId amount } } } }")
    # The normal path calls the resolver per person: a selection worked out and a load asked
    # per row, batched into one read.
    assert normal.calls == {"per row": PERSONS, "load": PERSONS, "related": 1}
    # The fast path: one selection, one ask per join value (each person's ID), one read, and one
    # shaping of every person's cases together (besides one of the persons).
    assert fast.calls == {"per list": 1, "load": PERSONS, "related": 1, "objects": 2}
    nodes = fast.data["registryPersons"]["nodes"]
    assert [len(node["cases"]) for node in nodes] == [i % 3 for i in range(PERSONS)]


async def test_a_to_one_relation_asks_the_loader_once_per_distinct_join_value(hub: Hub) -> None:
    fast, normal = await hub.both("{ welfareCases(first: 100) { nodes { caseId recipient { name } } } }")
    # 30 cases of 20 persons: the normal path asks per case, the fast path per person.
    assert len(fast.data["welfareCases"]["nodes"]) == PERSONS
    assert (normal.calls["per row"], normal.calls["load"]) == (PERSONS, PERSONS)
    assert fast.calls == {"per list": 1, "load": 20, "related": 1, "objects": 2}


async def test_nested_relations_are_loaded_and_shaped_once_per_level(hub: Hub) -> None:
    fast, normal = await hub.both(
        "{ registryPersons { nodes { cases { caseId recipient { name cases { status } } } } } }"
    )
    # Three levels of relations: one selection, one read and one shaping each.
    assert (normal.calls["related"], normal.calls["per row"]) == (3, PERSONS + 2 * 30)
    assert (fast.calls["per row"], fast.calls["per list"], fast.calls["related"], fast.calls["objects"]) == (0, 3, 3, 4)
    second = fast.data["registryPersons"]["nodes"][2]["cases"]
    assert [case["recipient"]["name"] for case in second] == ["居民2", "居民2"]
    assert [len(case["recipient"]["cases"]) for case in second] == [2, 2]


async def test_a_withheld_relation_is_one_error_counting_every_row_and_reads_nothing(hub: Hub) -> None:
    hub.policy.relations = {"cases": DENIED}
    fast, _ = await hub.both("{ registryPersons { nodes { name cases { caseId } } } }")
    assert all(node["cases"] is None for node in fast.data["registryPersons"]["nodes"])
    [withheld] = fast.context.withheld.values()
    assert (withheld.path, withheld.count) == (("registryPersons", "nodes", "*", "cases"), PERSONS)
    assert fast.calls["related"] == 0


async def test_a_department_down_nulls_every_rows_relation_with_one_error_counting_them(hub: Hub) -> None:
    hub.connectors["welfare"].down = True
    fast, normal = await hub.both("{ registryPersons { nodes { name cases { caseId } } } }")
    for ran in (fast, normal):
        assert all(node["cases"] is None for node in ran.data["registryPersons"]["nodes"])
        [failed] = ran.context.failed_relations.items()
        path, entry = failed
        assert (path, entry.count, entry.error.code) == (
            ("registryPersons", "nodes", "*", "cases"),
            PERSONS,
            "DEPARTMENT_UNAVAILABLE",
        )
        assert not ran.result.errors  # no error of its own for any row


async def test_a_department_down_gives_the_list_an_error_that_holds_no_frames(hub: Hub) -> None:
    # Raised through strawberry's batch, the error's traceback held that frame, whose batch held
    # the futures that held the error: every list reading a department that is down was left
    # to the cyclic collector, with its request's context (bench/README.md, "Load").
    hub.connectors["welfare"].down = True
    fast, normal = await hub.both("{ registryPersons { nodes { name cases { caseId } } } }")
    for ran in (fast, normal):
        [failed] = ran.context.failed_relations.values()
        error = failed.error
        assert error.__traceback__ is None and error.__context__ is None
        # What the caller is told: the code, the department, a message naming no server.
        assert error.message == "the welfare department's database is unavailable; try again later"
        assert error.extensions == {"department": "welfare"}


async def test_a_relation_failing_inside_the_hub_keeps_its_traceback_for_the_log(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An INTERNAL error is logged with its traceback (HubSchema.process_errors): not detached.
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise Internal("a fault of the hub's")

    monkeypatch.setattr(Reader, "related", broken)
    fast = await hub.answer("{ registryPersons { nodes { name cases { caseId } } } }", True)
    errors = fast.result.errors or []
    assert len(errors) == PERSONS
    assert all(e.original_error is not None and e.original_error.__traceback__ is not None for e in errors)


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "normal path"])
@pytest.mark.parametrize("down", [False, True], ids=["up", "down"])
async def test_a_released_request_is_freed_without_the_cyclic_collector(hub: Hub, down: bool, fast: bool) -> None:
    # Its loaders close over the context and the executor's run holds the executor: cycles
    # that left every request with a relation to the cyclic collector (bench/README.md, "Load").
    hub.connectors["welfare"].down = down
    query = "{ registryPersons { nodes { name cases { caseId } } } }"
    gc.collect()
    gc.disable()
    try:
        answer = await hub.answer(query, fast)
        assert bool(answer.context.failed_relations) is down
        context = weakref.ref(answer.context)
        answer.context.release()
        del answer
        assert context() is None, "the request's context is still held: a reference cycle"
    finally:
        gc.enable()


async def test_join_values_that_are_null_or_match_nothing_answer_as_the_normal_path(hub: Hub) -> None:
    cases = hub.connectors["welfare"]._tables["welfare_case"]
    cases.append({"case_id": "CX1", "recipient_id_number": None, "amount": None, "status": None})
    cases.append({"case_id": "CX2", "recipient_id_number": "0", "amount": None, "status": None})
    fast, _ = await hub.both(
        '{ a: welfareCase(key: "CX1") { recipient { name } } b: welfareCase(key: "CX2") { recipient { name } } }'
    )
    assert fast.data == {"a": {"recipient": None}, "b": {"recipient": None}}


async def test_related_rows_with_an_unreadable_value_are_reported_as_the_normal_path_does(hub: Hub) -> None:
    # No GraphQL Int holds 2**40: the connector reads it as unreadable, so that recipient's
    # `children` is null with one DATA_INTEGRITY count for the list, and its cases still load.
    hub.connectors["registry"]._tables["person"][1]["children"] = 2**40
    fast, normal = await hub.both("{ welfareCases(first: 100) { nodes { recipient { children cases { caseId } } } } }")
    assert not fast.result.errors
    path = ("welfareCases", "nodes", "*", "recipient", "children")
    assert fast.context.unreadable == normal.context.unreadable == {path: 1}


async def test_rows_with_a_null_key_are_left_out_with_one_count_per_list_on_both_paths(hub: Hub) -> None:
    # A key no row can be identified by: left out of the list and of a relation's lists, the
    # other rows standing, one DATA_INTEGRITY count per list (not per row).
    people = hub.connectors["registry"]._tables["person"]
    people[0]["id_number"] = None
    people[2]["id_number"] = None
    fast, normal = await hub.both("{ registryPersons { nodes { idNumber name } } }")
    assert fast.result.data is not None
    assert len(fast.result.data["registryPersons"]["nodes"]) == len(people) - 2
    assert fast.context.left_out == normal.context.left_out == {("registryPersons", "nodes"): 2}
    cases, _ = await hub.both("{ welfareCases(first: 100) { nodes { caseId recipient { idNumber } } } }")
    assert cases.result.data is not None
    assert all(node["caseId"] for node in cases.result.data["welfareCases"]["nodes"])
