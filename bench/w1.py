"""Workload W1: civil affairs' service deliveries, 10,000 rows by all 12 fields, as one
GraphQL list query; and the check that every contender sends the same data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from bench.measure import Contender, client

ROWS = 10_000
FIELD = "civilAffairsServiceDeliveries"
FIELDS = (
    "deliveryId caseId recipientName recipientIdNumber recipientMobile serviceType "
    "deliveredAt amount districtCode status requestId expenditureId"
)
QUERY = f"{{ {FIELD}(first: {ROWS}, orderBy: [DELIVERY_ID_ASC]) {{ nodes {{ {FIELDS} }} }} }}"


class Mismatch(RuntimeError):
    """The contenders do not send the same data, so their times cannot be compared."""


# The auditor's stated purpose. The default policy masks personal (L3) fields for auditors
# and releases civil affairs' service deliveries plain to the audit department only under its
# grant for this purpose; W1 is that audit reading every field plain, as the limit sends them.
PURPOSE = "audit"


def hub_contender(base_url: str, token: str) -> Contender:
    headers = {"Authorization": f"Bearer {token}", "X-Hub-Purpose": PURPOSE}
    return Contender("hub (GraphQL)", "POST", f"{base_url}/graphql", headers, {"query": QUERY})


def limit_contenders(base_url: str) -> list[Contender]:
    return [
        Contender("limit: raw asyncpg", "GET", f"{base_url}/w1/asyncpg"),
        Contender("limit: SQLAlchemy async", "GET", f"{base_url}/w1/sqlalchemy"),
    ]


def fetch(contender: Contender, errors_allowed: bool = False) -> dict[str, Any]:
    """One request's JSON body; Mismatch unless it is HTTP 200 with an object (and, unless
    `errors_allowed`, without `errors`)."""
    with client() as http:
        response = http.request(contender.method, contender.url, headers=contender.headers, json=contender.json)
    if response.status_code != 200:
        raise Mismatch(f"{contender.name} answered HTTP {response.status_code}:\n{response.text[:2000]}")
    body = orjson.loads(response.content)
    if not isinstance(body, dict):
        raise Mismatch(f"{contender.name} answered a JSON {type(body).__name__}, not an object")
    if body.get("errors") and not errors_allowed:
        errors = orjson.dumps(body["errors"][:5], option=orjson.OPT_INDENT_2).decode()
        raise Mismatch(f"{contender.name} answered with errors:\n{errors}")
    return body


def _first_difference(expected: list[Any], found: list[Any]) -> str:
    for index, (a, b) in enumerate(zip(expected, found, strict=False)):
        if a != b:
            return f"node {index}: {a!r} != {b!r}"
    return f"{len(expected)} nodes != {len(found)} nodes"


def verify(reference: Contender, others: Sequence[Contender]) -> dict[str, list[str]]:
    """Fetch each contender once and require the same `data`, with 10,000 nodes.

    Only `data` is compared: the hub adds an `extensions` member (its access decision), which
    is part of its answer but not of the data. Returns the top-level members of each body, so
    the report can say what else travelled."""
    expected = fetch(reference)
    nodes = expected.get("data", {}).get(FIELD, {}).get("nodes")
    if not isinstance(nodes, list) or len(nodes) != ROWS:
        count = len(nodes) if isinstance(nodes, list) else nodes
        raise Mismatch(f"{reference.name} sent {count} nodes, expected {ROWS}")
    members = {reference.name: sorted(expected)}
    for contender in others:
        found = fetch(contender)
        members[contender.name] = sorted(found)
        if found.get("data") != expected["data"]:
            other = found.get("data", {}).get(FIELD, {}).get("nodes") or []
            raise Mismatch(
                f"{contender.name} and {reference.name} send different data; first difference "
                f"({reference.name} first): {_first_difference(nodes, other)}"
            )
    return members
