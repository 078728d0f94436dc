"""The trail over the demo, as an auditor would check it: exactly one event per request of a
caller over a mixed run, with the right content; none for a request without a token (counted
instead); and no resident ID number, mobile number or decrypted value anywhere in it."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.engine import URL

from hub.audit.models import AuditAnonymous, AuditEvent
from hub.db.engine import hub_engine, sessions
from hub.trusted import register_document
from tests.conftest import Hub
from tests.integration.test_leaks import sensitive

PERSONS = "query Persons { populationPersons(first: 20) { nodes { idNumber name mobile address } } }"
BY_KEY = "query PersonByKey($key: ID!) { populationPerson(key: $key) { gender idNumber } }"
VISITS = "{ healthVisits(first: 30) { nodes { visitId diagnosis } } }"
CHANGE = 'mutation { changePolicy(edits: [], reason: "just looking") { version } }'


async def _events_after(url: URL, position: int) -> list[AuditEvent]:
    engine = hub_engine(url)
    try:
        async with sessions(engine)() as session:
            found = await session.scalars(
                select(AuditEvent).where(AuditEvent.position >= position).order_by(AuditEvent.position)
            )
            return list(found)
    finally:
        await engine.dispose()


async def _size(url: URL) -> int:
    engine = hub_engine(url)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text("SELECT size FROM hub_audit_log"))).scalar_one())
    finally:
        await engine.dispose()


async def _dump(url: URL) -> str:
    engine = hub_engine(url)
    try:
        async with engine.connect() as connection:
            parts = []
            for table in ("hub_audit_event", "hub_audit_person", "hub_audit_anonymous", "hub_audit_tree_head"):
                rows = await connection.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 (fixed names)
                parts.extend(repr(tuple(row)) for row in rows)
            return "\n".join(parts)
    finally:
        await engine.dispose()


def _released(event: AuditEvent) -> dict[tuple[str, str, str], int]:
    return {(e, f, level): n for e, f, level, n in orjson.loads(event.released)["fields"]}


def _post(hub: Hub, body: dict[str, Any], caller: str | None, purpose: str | None = None) -> Any:
    headers = {} if caller is None else {"Authorization": f"Bearer {hub.tokens[caller]}"}
    if purpose:
        headers["X-Hub-Purpose"] = purpose
    return hub.client.post("/graphql", json=body, headers=headers)


def test_one_event_per_request_of_a_mixed_run_with_what_each_released(demo_hub: Hub) -> None:
    url = demo_hub.url
    start = asyncio.run(_size(url))

    async def register() -> str:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session, session.begin():
                return await register_document(session, BY_KEY, name="audit-person-by-key")
        finally:
            await engine.dispose()

    document = asyncio.run(register())
    plain = _post(demo_hub, {"query": PERSONS}, "civil-affairs-app", "social_assistance").json()
    key = plain["data"]["populationPersons"]["nodes"][0]["idNumber"]
    runs = [
        ("plain", _post(demo_hub, {"query": PERSONS}, "civil-affairs-app", "social_assistance")),
        ("masked", _post(demo_hub, {"query": PERSONS}, "health-app")),
        ("withheld", _post(demo_hub, {"query": VISITS}, "civil-affairs-app", "social_assistance")),
        ("invalid", _post(demo_hub, {"query": "{ populationPersons { nodes { nope } } }"}, "health-app")),
        ("bad purpose", _post(demo_hub, {"query": PERSONS}, "health-app", "curiosity")),
        (
            "direct plan",
            _post(demo_hub, {"query": BY_KEY, "variables": {"key": key}}, "civil-affairs-app", "social_assistance"),
        ),
        (
            "trusted document",
            _post(
                demo_hub, {"documentId": document, "variables": {"key": key}}, "civil-affairs-app", "social_assistance"
            ),
        ),
        ("admin edit refused", _post(demo_hub, {"query": CHANGE}, "health-app")),
        ("no token", _post(demo_hub, {"query": PERSONS}, None)),
    ]
    statuses = {name: response.status_code for name, response in runs}
    assert statuses["no token"] == 401 and statuses["plain"] == 200 and statuses["invalid"] == 400
    events = asyncio.run(_events_after(url, start))
    # The first read (for a key) and every run but the one without a token: one event each, in order.
    assert [e.position for e in events] == list(range(start, start + len(runs)))
    first, *rest = events
    by_name = dict(zip([name for name, _ in runs if name != "no token"], rest, strict=True))

    plain_event = by_name["plain"]
    assert (plain_event.principal, plain_event.purpose, plain_event.outcome) == (
        "civil-affairs-app",
        "social_assistance",
        "served",
    )
    assert plain_event.operation_name == "Persons" and len(plain_event.operation_hash or "") == 64
    assert _released(plain_event)[("population.Person", "idNumber", "PLAIN")] == 20
    assert plain_event.persons == 20
    masked = by_name["masked"]
    assert _released(masked)[("population.Person", "idNumber", "MASKED")] == 20
    assert masked.department == "health"
    withheld = by_name["withheld"]
    assert withheld.outcome == "partly_served"
    assert _released(withheld)[("health.Visit", "diagnosis", "DENIED")] == 30
    assert by_name["invalid"].outcome == "refused" and by_name["invalid"].status == 400
    assert by_name["bad purpose"].outcome == "refused"
    # An unknown purpose is kept by digest only: a caller cannot write free text into the trail.
    assert (by_name["bad purpose"].purpose or "").startswith("unknown:")
    assert by_name["bad purpose"].code == "BAD_PURPOSE"
    for name in ("direct plan", "trusted document"):
        event = by_name[name]
        assert event.outcome == "served" and event.persons == 1, name
        assert event.operation_name == "PersonByKey"
    assert by_name["trusted document"].document_id == document
    assert by_name["direct plan"].document_id is None
    assert by_name["admin edit refused"].outcome == "refused"
    assert first.principal == "civil-affairs-app"

    # Nothing of what left in plain is in the trail.
    dump = asyncio.run(_dump(url))
    numbers = {n["idNumber"] for n in plain["data"]["populationPersons"]["nodes"]}
    mobiles = {n["mobile"] for n in plain["data"]["populationPersons"]["nodes"] if n["mobile"]}
    names = {n["name"] for n in plain["data"]["populationPersons"]["nodes"]}
    assert not any(value in dump for value in numbers | mobiles | names)
    # Nor anything shaped like one, once the hashes (hex, where digit runs occur by chance) are out.
    assert sensitive(re.sub(r"[0-9a-f]{32,}", "", dump)) == []


def test_requests_without_a_token_are_counted_per_address_not_logged(demo_hub: Hub) -> None:
    url = demo_hub.url
    start = asyncio.run(_size(url))
    for _ in range(4):
        assert _post(demo_hub, {"query": PERSONS}, None).status_code == 401
    assert asyncio.run(_size(url)) == start

    async def counted() -> int:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session:
                rows = await session.scalars(select(AuditAnonymous))
                return sum(row.count for row in rows)
        finally:
            await engine.dispose()

    # The counts are written a few seconds after the first (ANONYMOUS_DELAY_S): poll for them.
    for _ in range(200):
        if asyncio.run(counted()) >= 4:
            break
        time.sleep(0.05)
    assert asyncio.run(counted()) >= 4
