"""A caller's filter on related records, compiled against the access plan and run as key-set
semi-joins over in-memory departments: `some`, `none` and `every` select what their words say,
rows without a join value included, and nothing is read for a filter the plan refuses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from connectors.base import Page, Query
from connectors.memory import MemoryConnector
from hub.access.plan import AccessPlan, Decision, Planner, ReleaseEverything, Selection, Verdict
from hub.access.relation_filter import compile_checked
from hub.access.semijoin import KeySets
from hub.auth.principal import Principal
from hub.catalog import Catalog, EntityInfo, FieldInfo
from hub.errors import BadUserInput, Forbidden, LimitExceeded
from tests.conftest import CASES, PEOPLE

# A case with no recipient: it has no related person, so `none` holds for it.
ORPHAN = {"case_id": "C9", "recipient_id_number": None, "amount": None, "status": "open"}
PRINCIPAL = Principal("app", "welfare", ("department_app",))


def plan_for(catalog: Catalog, policy: Any = None) -> AccessPlan:
    planner = Planner(catalog, lambda: policy or ReleaseEverything())
    reached = Selection({"welfare.Case": frozenset(), "registry.Person": frozenset()}, {})
    return planner.plan(PRINCIPAL, None, reached)


def no_index(item: FieldInfo, value: str) -> Any:
    raise AssertionError("no encrypted field here")


class Departments:
    def __init__(self) -> None:
        self.connectors = {
            "registry": MemoryConnector({"person": PEOPLE}),
            "welfare": MemoryConnector({"welfare_case": [*CASES, ORPHAN]}),
        }
        self.reads: list[str] = []

    async def fetch(self, entity: EntityInfo, query: Query) -> Page:
        self.reads.append(entity.id)
        return await self.connectors[entity.department].fetch(query)

    async def keys(self, catalog: Catalog, entity_id: str, spec: Mapping[str, Any], plan: AccessPlan) -> list[Any]:
        entity = catalog.entity(entity_id)
        scope = compile_checked(catalog, plan, entity, spec, no_index)
        where = await KeySets(self.fetch).resolve(scope)
        page = await self.fetch(entity, Query(entity.table, (entity.table.key,), where))
        return sorted(page.column(entity.table.key))


async def test_some_none_and_every_select_what_they_say(small_catalog: Catalog) -> None:
    plan, departments = plan_for(small_catalog), Departments()
    people = "registry.Person"
    # 王小明 has C1 (open) and C2 (closed); 张伟 C3 (open); 李华 no case.
    assert await departments.keys(small_catalog, people, {"cases": {"some": {"status": {"eq": "closed"}}}}, plan) == [
        "110105199001011234"
    ]
    assert await departments.keys(small_catalog, people, {"cases": {"none": {}}}, plan) == ["11010519850202567X"]
    every_open = {"cases": {"every": {"status": {"eq": "open"}}}}
    assert await departments.keys(small_catalog, people, every_open, plan) == [
        "11010519850202567X",
        "330102200512120021",
    ]


async def test_none_keeps_rows_without_a_join_value(small_catalog: Catalog) -> None:
    plan, departments = plan_for(small_catalog), Departments()
    chaoyang = {"recipient": {"none": {"district": {"eq": "Chaoyang"}}}}
    # C1, C2 and C3 are Chaoyang residents'; C9 has no recipient at all.
    assert await departments.keys(small_catalog, "welfare.Case", chaoyang, plan) == ["C9"]
    anyone = {"recipient": {"some": {}}}
    assert await departments.keys(small_catalog, "welfare.Case", anyone, plan) == ["C1", "C2", "C3"]


class MaskedIncome(ReleaseEverything):
    """Every field plain but a person's income; following `cases` is denied."""

    def field(self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo) -> Verdict:
        return (
            Verdict(Decision.MASKED, "masked")
            if item.name == "income"
            else super().field(principal, purpose, entity, item)
        )

    def relation(self, principal: Principal, purpose: str | None, relation: Any) -> Verdict:
        return (
            Verdict(Decision.DENIED, "not yours")
            if relation.name == "cases"
            else super().relation(principal, purpose, relation)
        )


@pytest.mark.parametrize(
    ("entity_id", "spec", "refused", "names"),
    [
        ("welfare.Case", {"recipient": {"some": {"income": {"gt": 1000}}}}, Forbidden, "Person.income"),
        ("welfare.Case", {"recipient": {"every": {"income": {"gt": 1000}}}}, Forbidden, "Person.income"),
        ("registry.Person", {"cases": {"some": {}}}, Forbidden, "Person.cases"),
        ("welfare.Case", {"or": [{"recipient": {"some": {}}}, {"status": {"eq": "open"}}]}, BadUserInput, "under `or`"),
        ("welfare.Case", {"recipient": {"any": {}}}, BadUserInput, "some, none or every"),
        (
            "welfare.Case",
            {"and": [{"recipient": {"some": {"district": {"eq": str(i)}}}} for i in range(11)]},
            LimitExceeded,
            "at most 10",
        ),
    ],
)
async def test_a_refused_filter_reads_nothing(
    small_catalog: Catalog, entity_id: str, spec: dict[str, Any], refused: type[Exception], names: str
) -> None:
    departments = Departments()
    with pytest.raises(refused, match=names):
        await departments.keys(small_catalog, entity_id, spec, plan_for(small_catalog, MaskedIncome()))
    assert departments.reads == []


async def test_relation_filters_follow_at_most_three_relations(small_catalog: Catalog) -> None:
    plan, departments = plan_for(small_catalog), Departments()
    three: dict[str, Any] = {"recipient": {"some": {"cases": {"some": {"recipient": {"some": {}}}}}}}
    assert await departments.keys(small_catalog, "welfare.Case", three, plan) == ["C1", "C2", "C3"]
    four = {"cases": {"some": three}}
    with pytest.raises(BadUserInput, match="at most 3"):
        await departments.keys(small_catalog, "registry.Person", four, plan)
