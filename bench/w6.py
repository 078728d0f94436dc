"""Workload W6: one civil affairs service delivery by its key, all 12 fields, under 32
concurrent clients (closed loop); its contenders (the bare route, the hub with the operation as
text, the hub with it as a trusted document), the keys they rotate through, and the check that
all three send the same data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from bench.load_wrk import WrkTarget
from bench.measure import Contender
from bench.w1 import FIELDS, PURPOSE, Mismatch, fetch
from hub.db.engine import hub_engine, sessions

FIELD = "civilAffairsServiceDelivery"
# The by-key field of the schema (schema/schema.graphql): `civilAffairsServiceDelivery(key: ID!)`.
QUERY = f"query DeliveryByKey($key: ID!) {{ {FIELD}(key: $key) {{ {FIELDS} }} }}"
DOCUMENT_NAME = "bench-w6-delivery-by-key"
KEYS = 1_000
# Keys checked before timing: every 40th of the 1,000, in all three contenders.
SAMPLE_EVERY = 40
CONNECTIONS = 32
# One wrk thread: wrk's event loop serves 32 connections at tens of thousands of requests a
# second on one core, far above what the servers answer here, and a second thread would only
# take CPU from the server and PostgreSQL on this 2-core machine.
THREADS = 1

NAMES = ("bare route (raw asyncpg)", "hub, normal path", "hub, trusted document")


class TrustedDocumentsMissing(RuntimeError):
    """hub.trusted is not importable, so contender (c) cannot be set up."""


async def delivery_ids(url: URL, count: int = KEYS) -> list[str]:
    """`count` existing delivery ids, evenly spread over all of them in code-point order: the
    same keys every run on the same data."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            statement = sa.text('SELECT delivery_id FROM ca_service_delivery ORDER BY delivery_id COLLATE "C"')
            ids = [str(value) for value in (await connection.scalars(statement)).all()]
    finally:
        await engine.dispose()
    if len(ids) < count:
        raise Mismatch(f"the bench database holds {len(ids)} service deliveries, fewer than W6's {count} keys")
    return [ids[i * len(ids) // count] for i in range(count)]


async def register_query(database_url: URL, text: str = QUERY) -> str:
    """Register W6's operation as a trusted document in the hub database; its id."""
    try:
        from hub.trusted import register_document
    except ImportError as error:
        raise TrustedDocumentsMissing(
            f"W6 contender (c), the hub with a trusted document, cannot be set up: "
            f"`from hub.trusted import register_document` failed ({error}). Trusted documents "
            "are not in this tree yet."
        ) from error
    engine = hub_engine(database_url)
    try:
        async with sessions(engine)() as session, session.begin():
            document_id: str = await register_document(session, text, name=DOCUMENT_NAME)
    finally:
        await engine.dispose()
    return document_id


def _hub_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Hub-Purpose": PURPOSE, "Content-Type": "application/json"}


def _hub_body(key: str, document_id: str | None) -> dict[str, Any]:
    if document_id is None:
        return {"query": QUERY, "variables": {"key": key}}
    return {"documentId": document_id, "variables": {"key": key}}


def _bare_path(key: str) -> str:
    return f"/w6/asyncpg?key={quote(key, safe='')}"


def targets(limit_url: str, hub_url: str, token: str, document_id: str, keys: Sequence[str]) -> list[WrkTarget]:
    """The three contenders as wrk sends them, each rotating through `keys`."""
    headers = _hub_headers(token)
    normal = [("/graphql", orjson.dumps(_hub_body(k, None)).decode()) for k in keys]
    trusted = [("/graphql", orjson.dumps(_hub_body(k, document_id)).decode()) for k in keys]
    return [
        WrkTarget(NAMES[0], limit_url, "GET", [(_bare_path(k), "") for k in keys]),
        WrkTarget(NAMES[1], hub_url, "POST", normal, headers),
        WrkTarget(NAMES[2], hub_url, "POST", trusted, headers),
    ]


def _contenders(limit_url: str, hub_url: str, token: str, document_id: str, key: str) -> list[Contender]:
    headers = _hub_headers(token)
    return [
        Contender(NAMES[0], "GET", f"{limit_url}{_bare_path(key)}"),
        Contender(NAMES[1], "POST", f"{hub_url}/graphql", headers, _hub_body(key, None)),
        Contender(NAMES[2], "POST", f"{hub_url}/graphql", headers, _hub_body(key, document_id)),
    ]


def verify(limit_url: str, hub_url: str, token: str, document_id: str, keys: Sequence[str]) -> dict[str, Any]:
    """Fetch every SAMPLE_EVERY-th key from each contender and require the same `data`, holding
    the record of that key, and no errors. Only `data` is compared: the hub's body also
    carries `extensions` (its access decision). Returns the keys checked and the top-level
    members of each contender's body."""
    sample = list(keys[::SAMPLE_EVERY])
    members: dict[str, list[str]] = {}
    for key in sample:
        reference, *others = _contenders(limit_url, hub_url, token, document_id, key)
        expected = fetch(reference)
        record = expected.get("data", {}).get(FIELD)
        if not isinstance(record, dict) or record.get("deliveryId") != key:
            raise Mismatch(f"{reference.name} sent {record!r} for key {key}, not the record of that key")
        for contender in (reference, *others):
            found = expected if contender is reference else fetch(contender)
            members.setdefault(contender.name, sorted(found))
            if found.get("data") != expected["data"]:
                raise Mismatch(
                    f"{contender.name} and {reference.name} send different data for key {key}:\n"
                    f"{contender.name}: {found.get('data')!r}\n{reference.name}: {expected['data']!r}"
                )
    return {"keys": sample, "body_members": members}
