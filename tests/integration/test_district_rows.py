"""The district office sees its own district's rows of every entity about persons, and no other,
however it asks: lists and their totals, reads by key, filters on a person's ID number, and
relations followed from other entities; on SQLite, PostgreSQL and MariaDB.

Which district a row belongs to is worked out here from the demo's data, not from the policy:
the row's own district column where it has one, else the district of the record its to-one
relation names (a visit's patient, a feedback's request). Rules that follow a relation are
key-set semi-joins, bounded: past the bound a request is refused, and an empty key set
answers no rows.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from starlette.testclient import TestClient

from hub.access.plan import Decision
from hub.app import create_app
from hub.auth.principal import Principal
from hub.auth.registry import register_app
from hub.catalog import Catalog, EntityInfo, RelationInfo
from hub.config import load_settings
from hub.db.engine import hub_engine, sessions
from hub.demo.callers import CALLERS
from hub.demo.catalog import demo_catalog
from hub.demo.generate import generate
from hub.demo.workspace import Workspace
from hub.policy.coverage import about_persons
from hub.policy.decisions import SnapshotPolicy
from hub.policy.snapshot import load_seed
from hub.services import Services, build_services
from tests.conftest import Hub

CATALOG = demo_catalog()
PERSONS = sorted(about_persons(CATALOG))
OFFICE = next(c for c in CALLERS if c.name == "district-office-app")
DISTRICT = OFFICE.attributes["district"]
PRINCIPAL = Principal(OFFICE.name, OFFICE.department, OFFICE.roles, OFFICE.attributes)
POLICY = SnapshotPolicy(load_seed(), CATALOG)
BACKENDS = ("demo_hub", "postgres_hub", "mariadb_hub")
# Relations list at most this many rows per parent by default; below it a list is compared whole.
PER_PARENT = 100
Row = dict[str, Any]


def plain(entity: EntityInfo, name: str) -> bool:
    return POLICY.field(PRINCIPAL, None, entity, entity.fields[name]).decision is Decision.PLAIN


class Districts:
    """The demo's rows by entity (by field name), and the district each row belongs to."""

    def __init__(self, catalog: Catalog) -> None:
        data = generate()
        self.catalog = catalog
        self.rows: dict[str, list[Row]] = {}
        for entity in catalog:
            names = {item.column: item.name for item in entity.fields.values()}
            table = data[entity.department][entity.table.name]
            self.rows[entity.id] = [{names[c]: v for c, v in raw.items() if c in names} for raw in table]
        self._index: dict[tuple[str, str], dict[Any, list[Row]]] = {}

    def matching(self, entity_id: str, name: str, value: Any) -> list[Row]:
        index = self._index.get((entity_id, name))
        if index is None:
            index = self._index[(entity_id, name)] = {}
            for row in self.rows[entity_id]:
                index.setdefault(row[name], []).append(row)
        return index.get(value, [])

    def district(self, entity: EntityInfo, row: Row) -> str | None:
        if "districtCode" in entity.fields:
            return str(row["districtCode"])
        # The registry first: it is where a person's district is kept.
        links = sorted(
            (r for r in entity.relations.values() if not r.many and r.target in PERSONS),
            key=lambda r: r.target != "population.Person",
        )
        for relation in links:
            target = self.catalog.entity(relation.target)
            found = self.matching(target.id, relation.target_field, row[relation.field])
            if found:
                return self.district(target, found[0])
        return None

    def inside(self, entity: EntityInfo) -> list[Row]:
        return [row for row in self.rows[entity.id] if self.district(entity, row) == DISTRICT]

    def outside(self, entity: EntityInfo) -> list[Row]:
        return [row for row in self.rows[entity.id] if self.district(entity, row) != DISTRICT]


@pytest.fixture(scope="module")
def truth() -> Districts:
    return Districts(CATALOG)


@pytest.fixture(params=BACKENDS)
def office(request: pytest.FixtureRequest) -> Hub:
    hub: Hub = request.getfixturevalue(request.param)
    return hub.as_caller(OFFICE.name)


def answer(hub: Hub, document: str) -> dict[str, Any]:
    body = hub.query(document)
    assert "errors" not in body, body.get("errors")
    data: dict[str, Any] = body["data"]
    return data


def literal(value: Any) -> str:
    return json.dumps(str(value), ensure_ascii=False)


@pytest.mark.parametrize("entity_id", PERSONS)
def test_district_office_lists_and_counts_only_its_districts_rows(
    office: Hub, truth: Districts, entity_id: str
) -> None:
    entity = CATALOG.entity(entity_id)
    inside = truth.inside(entity)
    assert inside and truth.outside(entity), f"the demo has {entity_id} rows on both sides"
    key = entity.key
    data = answer(office, f"{{ rows: {entity.list_field}(first: 10000) {{ totalCount nodes {{ {key} }} }} }}")
    assert data["rows"]["totalCount"] == len(inside)
    got = [node[key] for node in data["rows"]["nodes"]]
    if plain(entity, key):
        assert sorted(got) == sorted(str(row[key]) for row in inside)
    else:
        assert len(got) == len(inside)


@pytest.mark.parametrize("entity_id", PERSONS)
def test_district_office_reads_by_key_only_rows_of_its_district(office: Hub, truth: Districts, entity_id: str) -> None:
    entity = CATALOG.entity(entity_id)
    ours, theirs = truth.inside(entity)[0][entity.key], truth.outside(entity)[0][entity.key]
    # A document of reads by key only: the direct path, which applies the same rules.
    document = (
        f"{{ ours: {entity.key_field}(key: {literal(ours)}) {{ {entity.key} }} "
        f"theirs: {entity.key_field}(key: {literal(theirs)}) {{ {entity.key} }} }}"
    )
    data = answer(office, document)
    assert data["ours"] is not None
    assert data["theirs"] is None


def person_field(entity: EntityInfo) -> str:
    return next(name for name, item in entity.fields.items() if item.person)


@pytest.mark.parametrize("entity_id", [e for e in PERSONS if any(f.person for f in CATALOG.entity(e).fields.values())])
def test_filter_on_the_id_number_of_a_person_outside_the_district_counts_nothing(
    office: Hub, truth: Districts, entity_id: str
) -> None:
    entity = CATALOG.entity(entity_id)
    name = person_field(entity)
    theirs, ours = truth.outside(entity)[0][name], truth.inside(entity)[0][name]
    document = (
        f"{{ theirs: {entity.list_field}(filter: {{ {name}: {{ eq: {literal(theirs)} }} }}) {{ totalCount nodes {{ {entity.key} }} }} "
        f"ours: {entity.list_field}(filter: {{ {name}: {{ eq: {literal(ours)} }} }}) {{ totalCount }} }}"
    )
    data = answer(office, document)
    assert data["theirs"] == {"totalCount": 0, "nodes": []}
    expected = sum(1 for row in truth.matching(entity_id, name, ours) if truth.district(entity, row) == DISTRICT)
    assert data["ours"]["totalCount"] == expected > 0


def test_pension_account_of_a_person_outside_the_district_counts_zero(office: Hub, truth: Districts) -> None:
    # Finding 3 as reported: the count told whether a person outside the district had an account.
    accounts = CATALOG.entity("human_resources.PensionAccount")
    outsider = truth.outside(accounts)[0]["idNumber"]
    data = answer(
        office,
        f"{{ a: {accounts.list_field}(filter: {{ idNumber: {{ eq: {literal(outsider)} }} }}) {{ totalCount }} }}",
    )
    assert data["a"]["totalCount"] == 0


def relations_into_person_entities() -> Iterator[RelationInfo]:
    for entity in CATALOG:
        for relation in entity.relations.values():
            if relation.target in PERSONS:
                yield relation


@pytest.mark.parametrize("relation", list(relations_into_person_entities()), ids=lambda r: f"{r.source}.{r.name}")
def test_rows_reached_through_a_relation_are_only_of_the_district(
    truth: Districts, demo_hub: Hub, relation: RelationInfo
) -> None:
    office = demo_hub.as_caller(OFFICE.name)
    source, target = CATALOG.entity(relation.source), CATALOG.entity(relation.target)
    # What tells a related row apart: its district where released plain, else its key.
    shown = "districtCode" if "districtCode" in target.fields and plain(target, "districtCode") else target.key
    inside = truth.inside(target)
    allowed = {str(row[shown]) for row in inside}
    inside_ids = {id(row) for row in inside}
    # Every district (8 in the demo) is a parent once; other sources, their first rows.
    pages = [(1, offset) for offset in range(8)] if source.id == "population.District" else [(30, 0)]
    for first, offset in pages:
        rows = f"{source.list_field}(first: {first}, offset: {offset})"
        data = answer(office, f"{{ rows: {rows} {{ nodes {{ {source.key} {relation.name} {{ {shown} }} }} }} }}")
        for node in data["rows"]["nodes"]:
            value = node[relation.name]
            related = value if relation.many else [value] if value is not None else []
            if plain(target, shown):
                outside = [row for row in related if str(row[shown]) not in allowed]
                assert not outside, f"{relation.source}.{relation.name} reached {outside[:3]}"
            if not plain(source, source.key):
                continue
            (parent,) = truth.matching(source.id, source.key, node[source.key])
            join = parent[relation.field]
            expected = [r for r in truth.matching(target.id, relation.target_field, join) if id(r) in inside_ids]
            if len(expected) <= PER_PARENT:
                assert len(related) == (len(expected) if relation.many else min(1, len(expected)))


# --- the semi-join's bound and its empty set ------------------------------------------------


def _services(workspace: Workspace, **overrides: Any) -> Services:
    settings = load_settings(
        {},
        database_url=workspace.hub_database.render_as_string(),
        manifests_dir=workspace.manifests,
        master_key_file=workspace.master_key_file,
        **overrides,
    )
    return build_services(settings)


def _register(workspace: Workspace, name: str, attributes: dict[str, str]) -> str:
    async def run() -> str:
        engine = hub_engine(workspace.hub_database)
        try:
            async with sessions(engine)() as session, session.begin():
                issued = await register_app(session, name, OFFICE.department, OFFICE.roles, attributes, 1)
                return issued.token
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_a_row_rule_matching_more_related_rows_than_the_bound_is_refused_not_cut(
    demo_workspace: Workspace, demo_hub: Hub
) -> None:
    token = demo_hub.tokens[OFFICE.name]
    with TestClient(create_app(_services(demo_workspace, max_semijoin_keys=100))) as client:
        hub = Hub(client, token, demo_hub.url)
        body = hub.query("{ visits: healthVisits(first: 5) { totalCount nodes { visitId } } }")
        assert body["data"] is None or body["data"]["visits"] is None
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "LIMIT_EXCEEDED"
        assert error["extensions"]["limit"] == 100
        assert "more than 100" in error["message"]
        # A rule on the entity's own column needs no key set: it answers under any bound.
        persons = hub.query("{ populationPersons(first: 5) { totalCount } }")
        assert persons["data"]["populationPersons"]["totalCount"] > 0


def test_a_district_with_no_residents_sees_no_rows_through_a_rule_that_follows_a_relation(
    demo_workspace: Workspace, demo_hub: Hub
) -> None:
    token = _register(demo_workspace, "empty-district-office", {"district": "999999"})
    office = Hub(demo_hub.client, token, demo_hub.url)
    for entity_id in PERSONS:
        entity = CATALOG.entity(entity_id)
        data = answer(office, f"{{ rows: {entity.list_field}(first: 5) {{ totalCount nodes {{ {entity.key} }} }} }}")
        assert data["rows"] == {"totalCount": 0, "nodes": []}, entity_id


def test_a_row_rule_key_set_is_read_once_per_request(demo_services: Services, demo_hub: Hub, truth: Districts) -> None:
    office = demo_hub.as_caller(OFFICE.name)
    engine = demo_services.connectors["population"].engine.sync_engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "pop_person" in statement:
            seen.append(statement)

    visit = truth.inside(CATALOG.entity("health.Visit"))[0]["visitId"]
    event.listen(engine, "before_cursor_execute", listen)
    try:
        data = answer(
            office,
            f"{{ a: healthVisits(first: 3) {{ totalCount nodes {{ visitId }} }} "
            f"b: healthVisits(first: 3, offset: 3) {{ nodes {{ visitId }} }} "
            f"c: healthVisit(key: {literal(visit)}) {{ visitId }} }}",
        )
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert data["c"] == {"visitId": visit}
    assert len(data["a"]["nodes"]) == len(data["b"]["nodes"]) == 3
    assert len(seen) == 1, seen
