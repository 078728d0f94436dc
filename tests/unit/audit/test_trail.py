"""The trail over a small hub: one event per request of a caller, with what it released and
whom it touched; counts for requests without a token; the log verifies with proofs served
without a token; and no data leaves when the trail cannot be written."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL

from hub.audit.event import stored_leaf
from hub.audit.heads import TreeHead
from hub.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from hub.audit.models import AuditAnonymous, AuditEvent, AuditNode, AuditPerson, node_key
from hub.audit.verify import verify_log
from hub.catalog import Catalog
from hub.crypto.signing import public_raw_from_pem
from hub.db.engine import hub_engine, sessions
from tests.conftest import Hub, serve_small_hub

PEOPLE = "query People { registryPersons { nodes { idNumber name district } } }"


def rows(url: URL, model: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = hub_engine(url)
        try:
            async with sessions(engine)() as session:
                order = model.position if hasattr(model, "position") else model.id
                return list((await session.scalars(select(model).order_by(order))).all())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def execute(url: URL, statement: str) -> None:
    async def run() -> None:
        engine = hub_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture
def trail_hub(hub_db: URL, small_catalog: Catalog) -> Iterator[Hub]:
    yield from serve_small_hub(hub_db, small_catalog, {"HUB_ACCESS_LOG": "off"})


def test_each_request_of_a_caller_is_one_event_with_what_it_released(trail_hub: Hub) -> None:
    served = trail_hub.query(PEOPLE)
    assert "errors" not in served
    refused = trail_hub.query("{ registryPersons { nodes { nope } } }")
    assert refused["errors"]
    events = rows(trail_hub.url, AuditEvent)
    assert [e.position for e in events] == [0, 1]
    first, second = events
    assert (first.principal, first.department, first.outcome, first.operation_name) == (
        "test-app",
        "welfare",
        "served",
        "People",
    )
    released = {(f[0], f[1], f[2]): f[3] for f in orjson.loads(first.released)["fields"]}
    assert released[("registry.Person", "idNumber", "PLAIN")] == len(served["data"]["registryPersons"]["nodes"])
    assert first.persons == len(served["data"]["registryPersons"]["nodes"])
    assert second.outcome == "refused" and second.status == 400 and second.persons == 0


def test_persons_touched_are_stored_by_blind_index_never_the_number(trail_hub: Hub) -> None:
    served = trail_hub.query(PEOPLE)
    numbers = {node["idNumber"] for node in served["data"]["registryPersons"]["nodes"]}
    persons = rows(trail_hub.url, AuditPerson)
    assert len(persons) == len(numbers)
    # Each a blind index's 32 raw bytes.
    assert all(isinstance(p.person, bytes) and len(p.person) == 32 and p.position == 0 for p in persons)
    stored = " ".join(repr(e.__dict__) for e in rows(trail_hub.url, AuditEvent)) + " ".join(
        p.person.hex() for p in persons
    )
    assert not any(number in stored for number in numbers)


def test_requests_without_a_token_are_counted_not_logged(trail_hub: Hub) -> None:
    for _ in range(3):
        response = trail_hub.client.post("/graphql", json={"query": "{ __typename }"})
        assert response.status_code == 401
    trail_hub.client.__exit__(None, None, None)  # the counts are written at shutdown at the latest
    assert rows(trail_hub.url, AuditEvent) == []
    counts = rows(trail_hub.url, AuditAnonymous)
    assert sum(c.count for c in counts) == 3


def test_signed_head_and_proofs_served_without_a_token_verify(trail_hub: Hub) -> None:
    for _ in range(5):
        trail_hub.query(PEOPLE)
    client = trail_hub.client
    asyncio.run(_sign(trail_hub.url))
    first = TreeHead.parse(client.get("/audit/tree-head").json())
    for _ in range(4):
        trail_hub.query(PEOPLE)
    asyncio.run(_sign(trail_hub.url))
    second = TreeHead.parse(client.get("/audit/tree-head").json())
    public = public_raw_from_pem(client.get("/audit/public-key").text)
    assert (first.size, second.size) == (5, 9)
    assert first.verifies(public) and second.verifies(public)
    for position in range(second.size):
        proof = client.get(f"/audit/proof/inclusion?position={position}").json()
        leaf = base64.b64decode(proof["leaf"])
        path = [base64.b64decode(h) for h in proof["auditPath"]]
        assert verify_inclusion(position, second.size, leaf_hash(leaf), path, second.root)
        assert not verify_inclusion(
            position, second.size, leaf_hash(leaf.replace(b"served", b"refused")), path, second.root
        )
    consistency = client.get(f"/audit/proof/consistency?first={first.size}&second={second.size}").json()
    proof = [base64.b64decode(h) for h in consistency["consistency"]]
    assert verify_consistency(first.size, second.size, first.root, second.root, proof)
    assert client.get("/audit/proof/inclusion?position=99").status_code == 404
    assert client.get("/audit/proof/consistency?first=1&second=x").status_code == 400


async def _sign(url: URL) -> None:
    from hub.audit.heads import sign_head
    from hub.crypto.keyring import load_keyring
    from hub.crypto.master import MasterKey
    from tests.conftest import TEST_MASTER_KEY

    engine = hub_engine(url)
    try:
        async with sessions(engine)() as session, session.begin():
            keyring = await load_keyring(session, MasterKey(TEST_MASTER_KEY))
            await sign_head(session, keyring.tree_signer())
    finally:
        await engine.dispose()


def test_stored_leaf_is_what_the_tree_hashed(trail_hub: Hub) -> None:
    trail_hub.query(PEOPLE)
    trail_hub.query(PEOPLE, purpose="welfare_eligibility")
    events = rows(trail_hub.url, AuditEvent)
    leaves = [leaf_hash(stored_leaf(e)) for e in events]

    async def nodes() -> list[bytes]:
        engine = hub_engine(trail_hub.url)
        try:
            async with engine.connect() as connection:
                found = await connection.execute(
                    select(AuditNode.hash).where(AuditNode.node < node_key(1, 0)).order_by(AuditNode.node)
                )
                return [bytes(row[0]) for row in found]
        finally:
            await engine.dispose()

    assert asyncio.run(nodes()) == leaves


def test_no_data_leaves_when_the_trail_cannot_be_written(trail_hub: Hub) -> None:
    execute(trail_hub.url, "DROP TABLE hub_audit_person")
    execute(trail_hub.url, "DROP TABLE hub_audit_event")
    response = trail_hub.client.post(
        "/graphql", json={"query": PEOPLE}, headers={"Authorization": f"Bearer {trail_hub.token}"}
    )
    assert response.status_code == 503
    body = response.json()
    assert body["data"] is None and body["errors"][0]["extensions"]["reason"] == "AUDIT_UNAVAILABLE"
    assert "110105" not in response.text


@pytest.mark.parametrize(("allowed", "status"), [("off", 503), ("on", 200)])
def test_low_tier_data_may_leave_unlogged_only_where_the_setting_allows(
    hub_db: URL, small_catalog: Catalog, allowed: str, status: int
) -> None:
    low = "{ registryPersons { nodes { district active } } }"
    for hub in serve_small_hub(hub_db, small_catalog, {"HUB_AUDIT_UNLOGGED_L1_L2": allowed}):
        execute(hub_db, "DROP TABLE hub_audit_person")
        headers = {"Authorization": f"Bearer {hub.token}"}
        assert hub.client.post("/graphql", json={"query": low}, headers=headers).status_code == status
        # L3 never leaves unlogged.
        assert hub.client.post("/graphql", json={"query": PEOPLE}, headers=headers).status_code == 503


def test_a_count_of_an_entity_holding_personal_data_never_leaves_unlogged(hub_db: URL, small_catalog: Catalog) -> None:
    # A bare count names no field, but a count filtered on a looked-up identifier says
    # whether a person is on file: it is of the entity's highest tier, not of tier L1.
    for hub in serve_small_hub(hub_db, small_catalog, {"HUB_AUDIT_UNLOGGED_L1_L2": "on"}):
        execute(hub_db, "DROP TABLE hub_audit_person")
        execute(hub_db, "DROP TABLE hub_audit_event")
        headers = {"Authorization": f"Bearer {hub.token}"}
        response = hub.client.post("/graphql", json={"query": COUNT}, headers=headers)
        assert response.status_code == 503
        assert response.json()["data"] is None


def test_trail_off_records_nothing(hub_db: URL, small_catalog: Catalog) -> None:
    for hub in serve_small_hub(hub_db, small_catalog, {"HUB_AUDIT": "off"}):
        hub.query(PEOPLE)
    assert rows(hub_db, AuditEvent) == []


def test_log_size_counts_every_event(trail_hub: Hub) -> None:
    for _ in range(3):
        trail_hub.query(PEOPLE)

    async def size() -> int:
        engine = hub_engine(trail_hub.url)
        try:
            async with sessions(engine)() as session:
                return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)
        finally:
            await engine.dispose()

    assert asyncio.run(size()) == 3


COUNT = "{ registryPersonsAggregate { count } }"
BY_DISTRICT = "{ registryPersonsAggregate(groupBy: [DISTRICT]) { groups { key { district } count } } }"


def test_an_aggregate_is_one_event_naming_the_entity_and_fields_it_aggregated(trail_hub: Hub) -> None:
    answer = trail_hub.query(BY_DISTRICT)
    assert "errors" not in answer, answer

    released = orjson.loads(stored_leaf(rows(trail_hub.url, AuditEvent)[-1]))["released"]

    assert released["aggregates"] == ["registry.Person"]
    assert released["aggregated"] == [["registry.Person", "district"]]
    assert released["suppressedGroups"] >= 0


def test_an_event_without_aggregates_has_no_aggregate_keys(trail_hub: Hub) -> None:
    trail_hub.query(PEOPLE)

    released = orjson.loads(stored_leaf(rows(trail_hub.url, AuditEvent)[-1]))["released"]

    assert set(released) == {"fields", "rows"}


@pytest.mark.parametrize("query", [COUNT, BY_DISTRICT])
def test_no_aggregate_leaves_when_the_trail_cannot_be_written(trail_hub: Hub, query: str) -> None:
    execute(trail_hub.url, "DROP TABLE hub_audit_person")
    execute(trail_hub.url, "DROP TABLE hub_audit_event")
    response = trail_hub.client.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {trail_hub.token}"}
    )
    assert response.status_code == 503
    assert response.json()["data"] is None


def _at_once(hub: Hub, n: int) -> list[Any]:
    """`n` requests for persons sent together (each on a thread of its own, so the app serves
    them concurrently)."""
    headers = {"Authorization": f"Bearer {hub.token}"}
    with ThreadPoolExecutor(n) as threads:
        return list(
            threads.map(lambda _: hub.client.post("/graphql", json={"query": PEOPLE}, headers=headers), range(n))
        )


def test_requests_served_together_are_each_one_event_and_the_log_verifies(trail_hub: Hub) -> None:
    responses = _at_once(trail_hub, 12)
    assert [r.status_code for r in responses] == [200] * 12
    events = rows(trail_hub.url, AuditEvent)
    assert [e.position for e in events] == list(range(12))
    assert {e.operation_name for e in events} == {"People"}

    async def verify() -> Any:
        engine = hub_engine(trail_hub.url)
        try:
            return await verify_log(sessions(engine), None)
        finally:
            await engine.dispose()

    report = asyncio.run(verify())
    assert report.ok and report.events == 12


def test_no_request_served_together_gets_its_data_when_the_trail_cannot_be_written(trail_hub: Hub) -> None:
    execute(trail_hub.url, "DROP TABLE hub_audit_person")
    responses = _at_once(trail_hub, 12)
    assert [r.status_code for r in responses] == [503] * 12
    assert not any("110105" in r.text for r in responses)
