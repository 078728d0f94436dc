"""The access plan is a real seam: made once per request before execution, obeyed by the
reader and the release step. A test policy stands in for the Casbin policy of the next issue."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.engine import URL
from starlette.testclient import TestClient

from connectors.base import Compare, Filter, Op, Page, Query, TableSpec
from connectors.memory import MemoryConnector
from hub.access.plan import PLAIN, Decision, Verdict
from hub.app import create_app
from hub.auth.principal import Principal
from hub.catalog import Catalog, EntityInfo, FieldInfo, RelationInfo
from hub.config import load_settings
from hub.services import build_services
from tests.conftest import FIXTURES, TEST_MASTER_KEY, Hub, memory_connectors, register


@dataclass
class RecordingPolicy:
    """Withholds `Person.income`, masks `Person.idNumber`, keeps Chaoyang rows only."""

    version: str = "test-1"
    field_calls: int = 0
    plans: list[str] = field(default_factory=list)

    def field(self, principal: Principal, purpose: str | None, entity: EntityInfo, item: FieldInfo) -> Verdict:
        self.field_calls += 1
        if item.name == "income":
            return Verdict(Decision.DENIED, "income is core data of the registry")
        if item.name == "idNumber" and entity.name == "Person":
            return Verdict(Decision.MASKED, "no grant for this purpose")
        return PLAIN

    def relation(self, principal: Principal, purpose: str | None, relation: RelationInfo) -> Verdict:
        return PLAIN

    def attributes_used(self, principal: Principal) -> tuple[tuple[str, str], ...]:
        return ()

    def next_change(self, after: datetime) -> datetime | None:
        return None

    def row_rule(self, principal: Principal, purpose: str | None, entity: EntityInfo) -> Filter | None:
        self.plans.append(entity.id)
        if entity.name == "Person":
            return Compare("district", Op.EQ, "Chaoyang")
        return None


class CountingConnector:
    """Wraps a memory connector and keeps every query `fetch` answers (batch reads by value
    pass to the memory connector as they are)."""

    def __init__(self, inner: MemoryConnector) -> None:
        self.inner = inner
        self.queries: list[Query] = []
        self.counts = 0

    async def fetch(self, query: Query) -> Page:
        self.queries.append(query)
        return await self.inner.fetch(query)

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        self.counts += 1
        return await self.inner.count(table, where)

    async def fetch_by(self, *args: Any, **options: Any) -> Page:
        return await self.inner.fetch_by(*args, **options)

    async def close(self) -> None:
        await self.inner.close()


@pytest.fixture
def guarded(hub_db: URL, small_catalog: Catalog) -> Iterator[tuple[Hub, RecordingPolicy, dict[str, CountingConnector]]]:
    policy = RecordingPolicy()
    connectors = {name: CountingConnector(c) for name, c in memory_connectors().items()}
    settings = load_settings(
        {}, database_url=hub_db.render_as_string(), manifests_dir=FIXTURES / "manifests", master_key=TEST_MASTER_KEY
    )
    services = build_services(settings, catalog=small_catalog, connectors=connectors, policy=policy)
    token = register(hub_db)
    with TestClient(create_app(services)) as client:
        yield Hub(client, token, hub_db), policy, connectors


def test_withheld_field_is_null_with_one_forbidden_error_per_list(guarded: Any) -> None:
    hub, _, _ = guarded
    result = hub.query("{ registryPersons { nodes { name income } } }")
    nodes = result["data"]["registryPersons"]["nodes"]
    assert len(nodes) == 2 and all(n["income"] is None for n in nodes)
    forbidden = [e for e in result["errors"] if e["extensions"]["code"] == "FORBIDDEN"]
    assert forbidden == [
        {
            "message": "income is withheld: income is core data of the registry",
            "path": ["registryPersons", "nodes", "*", "income"],
            "extensions": {"code": "FORBIDDEN", "reason": "income is core data of the registry", "count": 2},
        }
    ]
    assert result["extensions"]["access"] == {
        "policyVersion": "test-1",
        "masked": [],
        "withheld": ["registryPersons/nodes/*/income"],
        "truncated": [],
        "truncatedCount": 0,
    }


def test_withheld_column_is_never_fetched(guarded: Any) -> None:
    hub, _, connectors = guarded
    hub.query("{ registryPersons { nodes { name income } } }")
    assert connectors["registry"].queries[-1].columns == ("id_number", "name")


def test_masked_field_is_released_through_its_mask(guarded: Any) -> None:
    hub, _, _ = guarded
    result = hub.query("{ registryPersons(orderBy: [NAME_ASC]) { nodes { idNumber } } }")
    ids = [n["idNumber"] for n in result["data"]["registryPersons"]["nodes"]]
    assert sorted(ids) == ["110105********1234", "330102********0021"]
    assert result["extensions"]["access"]["masked"] == ["registryPersons/nodes/*/idNumber"]


def test_row_rule_is_pushed_into_the_query_so_counts_are_right(guarded: Any) -> None:
    hub, _, connectors = guarded
    result = hub.query("{ registryPersons(first: 1) { totalCount nodes { district } pageInfo { hasNextPage } } }")
    page = result["data"]["registryPersons"]
    assert page["totalCount"] == 2
    assert page["nodes"] == [{"district": "Chaoyang"}]
    assert page["pageInfo"]["hasNextPage"] is True
    assert Compare("district", Op.EQ, "Chaoyang") == connectors["registry"].queries[-1].where


def test_filtering_on_a_field_not_released_plain_is_refused_before_any_query(guarded: Any) -> None:
    hub, _, connectors = guarded
    result = hub.query('{ registryPersons(filter: {income: {gt: "10000"}}) { nodes { name } } }')
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert result["data"] == {"registryPersons": None}
    ordered = hub.query("{ registryPersons(orderBy: [ID_NUMBER_ASC]) { nodes { name } } }")
    assert ordered["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert connectors["registry"].queries == []


def test_decisions_are_made_once_not_per_row_and_cached_across_requests(guarded: Any) -> None:
    hub, policy, _ = guarded
    query = "{ registryPersons { nodes { name cases { caseId recipient { name } } } } }"
    hub.query(query)
    # Person and Case each decided once: one row rule each, one verdict per field.
    assert sorted(policy.plans) == ["registry.Person", "welfare.Case"]
    assert policy.field_calls == 8 + 4
    hub.query(query)
    assert policy.field_calls == 8 + 4


def test_related_rows_pass_their_own_row_rule(guarded: Any) -> None:
    hub, _, _ = guarded
    # 李华 lives in Haidian: the case list reaches persons only through the Person row rule.
    result = hub.query("{ welfareCases { nodes { caseId recipient { name } } } }")
    recipients = {n["caseId"]: n["recipient"] for n in result["data"]["welfareCases"]["nodes"]}
    assert recipients["C1"] == {"name": "王小明"}
    assert recipients["C3"] == {"name": "张伟"}


def test_access_record_counts_released_values_and_persons(hub_db: URL, small_catalog: Catalog) -> None:
    from hub.access.plan import Planner, ReleaseEverything, Selection
    from hub.access.record import AccessRecord
    from hub.access.release import Releaser
    from hub.crypto.blind_index import BlindIndex
    from hub.crypto.keyring import Keyring

    entity = small_catalog.entity("registry.Person")
    principal = Principal("app", "welfare")
    plan = Planner(small_catalog, ReleaseEverything).plan(
        principal, None, Selection({"registry.Person": frozenset({"idNumber", "name"})}, {})
    )
    record = AccessRecord("app", "welfare", None, plan.policy_version)
    rows = [
        {"id_number": "11010519850202567x", "name": "李华"},
        {"id_number": "110105199001011234", "name": "王小明"},
    ]
    keyring = Keyring({}, {"resident_id": b"i" * 32}, b"m" * 32)
    released = Releaser(lambda: keyring).release(plan, record, entity, rows, ["idNumber", "name"])
    assert released.rows == [
        {"idNumber": "11010519850202567x", "name": "李华"},
        {"idNumber": "110105199001011234", "name": "王小明"},
    ]
    # Persons are recorded by the blind index of the normalised number (upper-case X), never plain.
    index = BlindIndex("resident_id", b"i" * 32)
    assert record.persons == {index.hex("11010519850202567X"), index.hex("110105199001011234")}
    assert record.released[("registry.Person", "name", Decision.PLAIN)] == 2
    assert record.summary()["personsTouched"] == 2
