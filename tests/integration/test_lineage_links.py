"""Recorded links on the demo: recorded by the department owning `from`, checked, applied once
per idempotency key, superseded by retraction, shown in traces marked `recorded`, in the access
trail, and verified by `hub lineage verify`."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from sqlalchemy import delete, update

from hub.lineage.models import LineageLink
from hub.lineage.verify import verify_links
from hub.services import Services
from tests.conftest import Hub

RECORD = """mutation Record($from: String!, $to: String!, $kind: String!, $reason: String!, $key: String!) {
  recordLink(from: $from, to: $to, kind: $kind, reason: $reason, idempotencyKey: $key) {
    id kind from to reason recordedBy applied } }"""
RETRACT = """mutation Retract($link: Int!, $key: String!) {
  retractLink(link: $link, reason: "recorded by mistake", idempotencyKey: $key) { id retracts applied } }"""
TRACE = """query T($from: String!) { trace(from: $from, depth: 1, kinds: ["fulfils"]) {
  nodes { id ref } edges { kind from to hidden recorded } } }"""


def refs(hub: Hub, query: str, field: str) -> list[str]:
    return [node["ref"] for node in hub.query(query)["data"][field]["nodes"]]


def record(
    hub: Hub, source: str, target: str, kind: str = "fulfils", reason: str = "answered by phone", key: str | None = None
) -> Any:
    variables = {"from": source, "to": target, "kind": kind, "reason": reason, "key": key or uuid.uuid4().hex}
    return hub.query(RECORD, variables)


def delivery_and_request(hub: Hub, nth: int = 1) -> tuple[str, str]:
    """The nth delivery in district 330102 and a request elsewhere (tests pick their own nth:
    links recorded by one test stay in the session's hub database)."""
    deliveries = f'civilAffairsServiceDeliveries(first: {nth}, filter: {{districtCode: {{eq: "330102"}}}})'
    delivery = refs(hub, "{ " + deliveries + " { nodes { ref } } }", "civilAffairsServiceDeliveries")[-1]
    requests = 'hotlineRequests(first: 1, filter: {districtCode: {ne: "330102"}, category: {eq: "就业"}})'
    request = refs(hub, "{ " + requests + " { nodes { ref } } }", "hotlineRequests")[0]
    return delivery, request


def test_a_recorded_link_appears_in_traces_marked_recorded(demo_hub: Hub) -> None:
    office = demo_hub.as_caller("civil-affairs-app")
    delivery, request = delivery_and_request(office)
    done = record(office, delivery, request)
    assert "errors" not in done, done
    link = done["data"]["recordLink"]
    assert (link["from"], link["to"], link["applied"], link["recordedBy"]) == (
        delivery,
        request,
        True,
        "civil-affairs-app",
    )
    found = office.query(TRACE, {"from": delivery})["data"]["trace"]
    by_id = {n["id"]: n["ref"] for n in found["nodes"]}
    recorded = [e for e in found["edges"] if e["recorded"]]
    assert [(e["kind"], by_id[e["to"]]) for e in recorded] == [("fulfils", request)]


def test_a_retried_idempotency_key_applies_once(demo_hub: Hub) -> None:
    office = demo_hub.as_caller("civil-affairs-app")
    delivery, request = delivery_and_request(office)
    key = uuid.uuid4().hex
    first = record(office, delivery, request, key=key)["data"]["recordLink"]
    again = record(office, delivery, request, key=key)["data"]["recordLink"]
    assert again["id"] == first["id"] and first["applied"] is True and again["applied"] is False
    other = refs(office, "{ hotlineRequests(first: 2) { nodes { ref } } }", "hotlineRequests")[-1]
    reused = record(office, delivery, other, key=key)
    assert reused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_retracted_link_leaves_traces_and_cannot_be_retracted_twice(demo_hub: Hub) -> None:
    office = demo_hub.as_caller("civil-affairs-app")
    delivery, request = delivery_and_request(office, 7)
    link = record(office, delivery, request)["data"]["recordLink"]
    retracted = office.query(RETRACT, {"link": link["id"], "key": uuid.uuid4().hex})["data"]["retractLink"]
    assert retracted["retracts"] == link["id"]
    found = office.query(TRACE, {"from": delivery})["data"]["trace"]
    by_id = {n["id"]: n["ref"] for n in found["nodes"]}
    assert request not in [by_id.get(e["to"]) for e in found["edges"] if e["recorded"]]
    twice = office.query(RETRACT, {"link": link["id"], "key": uuid.uuid4().hex})
    assert twice["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    elsewhere = demo_hub.as_caller("human-resources-app").query(RETRACT, {"link": link["id"], "key": uuid.uuid4().hex})
    assert elsewhere["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_record_link_from_another_departments_record_is_refused(demo_hub: Hub) -> None:
    delivery, request = delivery_and_request(demo_hub.as_caller("civil-affairs-app"))
    refused = record(demo_hub.as_caller("human-resources-app"), delivery, request)
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_record_link_on_a_record_the_caller_cannot_read_is_refused(demo_hub: Hub) -> None:
    everyone = demo_hub.as_caller("civil-affairs-app")
    outside = refs(
        everyone,
        '{ civilAffairsServiceDeliveries(first: 1, filter: {districtCode: {ne: "330102"}}) { nodes { ref } } }',
        "civilAffairsServiceDeliveries",
    )[0]
    _, request = delivery_and_request(everyone)
    refused = record(demo_hub.as_caller("district-office-app"), outside, request)
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "no record you may see" in refused["errors"][0]["message"]


def test_a_kind_that_does_not_fit_the_roles_is_refused(demo_hub: Hub) -> None:
    office = demo_hub.as_caller("civil-affairs-app")
    delivery, request = delivery_and_request(office)
    for kind in ("funded_by", "allocated_from", "no_such_kind"):
        refused = record(office, delivery, request, kind=kind)
        assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", kind


def test_a_huge_reason_and_a_bad_idempotency_key_are_refused(demo_hub: Hub) -> None:
    office = demo_hub.as_caller("civil-affairs-app")
    delivery, request = delivery_and_request(office)
    huge = record(office, delivery, request, reason="x" * 5000)
    assert huge["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    blank = record(office, delivery, request, reason="   ")
    assert blank["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    key = record(office, delivery, request, key="330106198806144246 ' OR 1=1")
    assert key["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_recorded_link_to_a_hidden_record_shows_as_hidden_without_its_key(demo_hub: Hub) -> None:
    everyone = demo_hub.as_caller("civil-affairs-app")
    delivery, request = delivery_and_request(everyone, 3)
    assert "errors" not in record(everyone, delivery, request)
    office = demo_hub.as_caller("district-office-app")
    result = office.query(TRACE, {"from": delivery})
    found = result["data"]["trace"]
    hidden = [e for e in found["edges"] if e["recorded"] and e["hidden"]]
    assert hidden and all(e["to"] is None for e in hidden)
    assert request.split(":")[2] not in json.dumps(result)


def test_links_are_in_the_access_trail_and_verify_finds_a_changed_or_deleted_row(
    demo_hub: Hub, demo_services: Services
) -> None:
    office = demo_hub.as_caller("civil-affairs-app")
    delivery, request = delivery_and_request(office, 9)
    link = record(office, delivery, request)["data"]["recordLink"]

    async def check() -> list[str]:
        if demo_services.trail is not None:
            await demo_services.trail.writer.drain()
        return (await verify_links(demo_services.sessions)).findings

    async def change(statement: Any) -> None:
        async with demo_services.sessions() as session:
            await session.execute(statement)
            await session.commit()

    assert asyncio.run(check()) == []
    row = LineageLink.__table__
    asyncio.run(change(update(row).where(row.c.id == link["id"]).values(reason="a different reason")))
    assert any(f"link {link['id']}: changed" in finding for finding in asyncio.run(check()))
    asyncio.run(change(update(row).where(row.c.id == link["id"]).values(reason=link["reason"])))
    assert asyncio.run(check()) == []
    asyncio.run(change(delete(row).where(row.c.id == link["id"])))
    assert any(f"link {link['id']}: recorded in audit event" in finding for finding in asyncio.run(check()))
