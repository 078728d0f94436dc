"""`records_by_ref` (schema/records.py): records named by reference come back released under
the caller's own plan, one statement per entity, in the order asked; a record the caller may
not see, and a reference to no record at all, come back as nothing, never as someone else's
row; an entity the caller may not list is refused before any SQL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from hub.access.plan import Selection
from hub.auth.principal import Principal
from hub.config import load_settings
from hub.demo.callers import CALLERS
from hub.demo.generate import generate
from hub.demo.workspace import Workspace
from hub.errors import Forbidden
from hub.lineage.refs import RecordRef
from hub.lineage.trace import ENTITY
from hub.services import Services, build_services
from schema.access import begin
from schema.context import RequestContext
from schema.records import records_by_ref

DATA = generate()
DELIVERIES = DATA["civil_affairs"]["ca_service_delivery"]
PERSONS = DATA["population"]["pop_person"]
OFFICE_DISTRICT = "330102"  # the demo district office's (hub/demo/callers.py)
PATH = ("report", "nodes", "*", "record")


@pytest.fixture
async def services(demo_workspace: Workspace) -> AsyncIterator[Services]:
    settings = load_settings(
        {},
        database_url=demo_workspace.hub_database.render_as_string(),
        manifests_dir=demo_workspace.manifests,
        master_key_file=demo_workspace.master_key_file,
    )
    built = build_services(settings)
    await built.start()
    try:
        yield built
    finally:
        await built.close()


def _context(services: Services, name: str, purpose: str | None, entities: dict[str, list[str]]) -> RequestContext:
    """A request of the demo caller `name`, planned for `entities` and their fields."""
    caller = next(c for c in CALLERS if c.name == name)
    principal = Principal(caller.name, caller.department, caller.roles, caller.attributes)
    context = RequestContext(principal, purpose, services.reader, services.planner, {}, {})
    begin(context, Selection({e: frozenset(names) for e, names in entities.items()}, {}))
    return context


def _statements(services: Services) -> list[str]:
    seen: list[str] = []
    for connector in services.connectors.values():
        engine = connector.engine.sync_engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", lambda _c, _k, statement, *_: seen.append(statement))
    return seen


async def test_records_come_back_in_the_order_asked_each_entity_read_once(services: Services) -> None:
    deliveries = services.catalog.entity("civil_affairs.ServiceDelivery")
    names = {deliveries.id: ["deliveryId", "serviceType", "amount"]}
    context = _context(services, "auditor", "audit", names)
    wanted = [DELIVERIES[5], DELIVERIES[0], DELIVERIES[3]]
    refs = [RecordRef(deliveries, raw=row["delivery_id"]) for row in wanted]
    seen = _statements(services)
    found = await records_by_ref(context, refs, names, {}, PATH)
    assert [r["deliveryId"] if r else None for r in found] == [row["delivery_id"] for row in wanted]
    assert [r["serviceType"] if r else None for r in found] == [row["service_type"] for row in wanted]
    assert all(r is not None and r[ENTITY] == deliveries.type_name for r in found)
    assert len(seen) == 1


async def test_a_person_by_plain_id_number_comes_back_masked_as_the_plan_says(services: Services) -> None:
    persons = services.catalog.entity("population.Person")
    names = {persons.id: ["idNumber", "name", "districtCode"]}
    context = _context(services, "auditor", "audit", names)
    person = PERSONS[7]
    (found,) = await records_by_ref(context, [RecordRef(persons, plain=person["id_number"])], names, {}, PATH)
    assert found is not None and found["districtCode"] == person["district_code"]
    # L3 to the auditor: masked, never the plain number or name; the mask is reported at the path.
    assert found["name"] != person["name"] and found["idNumber"] != person["id_number"]
    assert (*PATH, "name") in context.masked


async def test_a_record_hidden_by_the_caller_s_row_rule_comes_back_as_nothing(services: Services) -> None:
    deliveries = services.catalog.entity("civil_affairs.ServiceDelivery")
    names = {deliveries.id: ["deliveryId", "districtCode"]}
    context = _context(services, "district-office-app", "social_assistance", names)
    inside = next(r for r in DELIVERIES if r["district_code"] == OFFICE_DISTRICT)
    outside = next(r for r in DELIVERIES if r["district_code"] != OFFICE_DISTRICT)
    refs = [RecordRef(deliveries, raw=outside["delivery_id"]), RecordRef(deliveries, raw=inside["delivery_id"])]
    found = await records_by_ref(context, refs, names, {}, PATH)
    assert found[0] is None
    assert found[1] is not None and found[1]["deliveryId"] == inside["delivery_id"]


async def test_an_entity_the_caller_may_not_list_is_refused_before_any_sql(services: Services) -> None:
    requests = services.catalog.entity("hotline.Request")
    names = {requests.id: ["requestId", "callerName"]}
    context = _context(services, "public", None, names)
    seen = _statements(services)
    with pytest.raises(Forbidden):
        await records_by_ref(context, [RecordRef(requests, raw="HL0000001")], names, {}, PATH)
    assert seen == []


@pytest.mark.parametrize(
    "forged",
    [
        {"raw": "CASD999999"},  # a key no record has
        {"raw": "CASD000001' OR '1'='1"},  # SQL in a key is a value, not a condition
        {"raw": os.urandom(32)},  # a blind index of nobody, where a plain key is stored
    ],
    ids=["unknown key", "sql in the key", "random bytes"],
)
async def test_a_forged_reference_comes_back_as_nothing(services: Services, forged: dict[str, Any]) -> None:
    deliveries = services.catalog.entity("civil_affairs.ServiceDelivery")
    names = {deliveries.id: ["deliveryId"]}
    context = _context(services, "auditor", "audit", names)
    real = RecordRef(deliveries, raw=DELIVERIES[0]["delivery_id"])
    found = await records_by_ref(context, [RecordRef(deliveries, **forged), real], names, {}, PATH)
    assert found[0] is None
    assert found[1] is not None and found[1]["deliveryId"] == DELIVERIES[0]["delivery_id"]


async def test_a_person_by_an_id_number_nobody_has_comes_back_as_nothing(services: Services) -> None:
    persons = services.catalog.entity("population.Person")
    names = {persons.id: ["districtCode"]}
    context = _context(services, "auditor", "audit", names)
    known = {p["id_number"] for p in PERSONS}
    unknown = next(f"33010219900101{n:03d}X" for n in range(1000) if f"33010219900101{n:03d}X" not in known)
    (found,) = await records_by_ref(context, [RecordRef(persons, plain=unknown)], names, {}, PATH)
    assert found is None
