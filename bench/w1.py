"""Workload W1: civil affairs' service deliveries, 10,000 rows by all 12 fields, as one
GraphQL list query; its contenders (the hub, the physical limit, PostGraphile 4) and the
check that they send the same data."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import orjson
from sqlalchemy.engine import URL

from bench.limit_app import ZONE
from bench.machine import POSTGRAPHILE, postgraphile_version
from bench.measure import Contender, client
from bench.servers import HOST, START_TIMEOUT_S, Server, ServerError

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


def verify(
    reference: Contender, others: Sequence[Contender], postgraphile: Contender | None = None
) -> dict[str, list[str]]:
    """Fetch each contender once and require the same `data`, with 10,000 nodes; from
    PostGraphile, the same rows in the same order (`same_rows`).

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
    if postgraphile is not None:
        found = fetch(postgraphile)
        members[postgraphile.name] = sorted(found)
        same_rows(reference.name, nodes, postgraphile.name, found)
    return members


# --- PostGraphile 4 ---------------------------------------------------------------------------
#
# PostGraphile serves the `bench` database as it finds it: no keys, no access control, no
# authentication. Its name for the table's connection is its own; the 12 field names are the
# hub's (both camel-case the column names).

POSTGRAPHILE_NAME = "PostGraphile (GraphQL)"
POSTGRAPHILE_FIELD = "allCaServiceDeliveries"
POSTGRAPHILE_QUERY = f"{{ {POSTGRAPHILE_FIELD}(first: {ROWS}, orderBy: [DELIVERY_ID_ASC]) {{ nodes {{ {FIELDS} }} }} }}"
# The documentation's production set ("Recommended options, For Production" of the v4 CLI
# page), less what W1 has no use for (subscriptions, query batching, the simplify-inflector
# plugin, which only renames) and --retry-on-init-fail (a bench must fail, not wait); plus no
# default mutations, since the bench only reads. Connections (the default simple-collections
# "omit") give the hub's `nodes` shape.
POSTGRAPHILE_OPTIONS = (
    "--schema", "public",
    "--disable-graphiql",
    "--disable-query-log",  # the docs: its default logging has performance issues
    "--dynamic-json",
    "--no-setof-functions-contain-nulls",
    "--no-ignore-rbac",
    "--no-ignore-indexes",
    "--disable-default-mutations",
    "--legacy-relations", "omit",
    "--extended-errors", "errcode",
)  # fmt: skip
# npm ci fetches about 125 packages (28 MB); minutes mean the registry is unreachable.
NPM_TIMEOUT_S = 600.0
# W1's encrypted columns: PostGraphile sends them as stored (bytea, as hex text).
ENCRYPTED = ("recipientName", "recipientIdNumber", "recipientMobile")


class PostGraphileUnavailable(ServerError):
    """PostGraphile could not be installed: no Node.js or npm, or `npm ci` failed."""


def pinned_postgraphile() -> str:
    manifest = json.loads((POSTGRAPHILE / "package.json").read_bytes())
    return str(manifest["dependencies"]["postgraphile"])


def ensure_postgraphile() -> bool:
    """Install bench/postgraphile from its lock file (`npm ci`) unless node_modules already
    holds the pinned version; True when it installed."""
    pinned = pinned_postgraphile()
    if postgraphile_version() == pinned:
        return False
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        raise PostGraphileUnavailable(
            f"W1 runs PostGraphile {pinned} (bench/postgraphile), which needs Node.js and npm on PATH; "
            f"{'npm' if node else 'node'} was not found. Install them (Debian: apt-get install nodejs npm) "
            "and run again."
        )
    command = [npm, "ci", "--no-audit", "--no-fund"]
    try:
        done = subprocess.run(command, cwd=POSTGRAPHILE, capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
    except subprocess.TimeoutExpired as error:
        raise PostGraphileUnavailable(
            f"`npm ci` in {POSTGRAPHILE} did not finish within {NPM_TIMEOUT_S:.0f} s (is the npm registry reachable?)"
        ) from error
    output = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
    if done.returncode != 0:
        raise PostGraphileUnavailable(
            f"`npm ci` in {POSTGRAPHILE} failed with exit code {done.returncode} (it installs from the npm "
            f"registry, pinned by package-lock.json); its last lines:\n{output}"
        )
    installed = postgraphile_version()
    if installed != pinned:
        raise PostGraphileUnavailable(f"`npm ci` installed PostGraphile {installed}, not {pinned}:\n{output}")
    return True


def postgraphile_server(database: URL) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of PostGraphile on `{port}` of loopback, reading
    `database`. The URL travels in DATABASE_URL (which the CLI reads), not in argv."""
    command = [str(POSTGRAPHILE / "node_modules" / ".bin" / "postgraphile"), "--host", HOST, "--port", "{port}"]
    env = {
        "DATABASE_URL": database.set(drivername="postgres").render_as_string(hide_password=False),
        "NODE_ENV": "production",
    }
    return [*command, *POSTGRAPHILE_OPTIONS], env


def wait_graphql(server: Server, timeout_s: float = START_TIMEOUT_S) -> None:
    """Wait until a GraphQL server answers `{ __typename }` over POST.

    bench.servers.wait_ready polls a GET route; PostGraphile has none (GET /graphql is 405),
    and it listens before its schema is built, holding requests until it is: the first 200
    means the schema is built and the database was reached."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=5.0) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise ServerError(
                    f"{server.name} exited with code {server.process.returncode} before it was ready:\n"
                    f"{server.log_tail()}"
                )
            try:
                if http.post("/graphql", json={"query": "{ __typename }"}).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet, or still building its schema
            time.sleep(0.1)
    raise ServerError(f"{server.name} was not ready within {timeout_s:.0f} s:\n{server.log_tail()}")


def postgraphile_contender(base_url: str) -> Contender:
    return Contender(POSTGRAPHILE_NAME, "POST", f"{base_url}/graphql", {}, {"query": POSTGRAPHILE_QUERY})


def _moment(value: Any) -> Any:
    # The hub writes the naive column as an aware time in the manifest's zone (+08:00);
    # PostGraphile writes it as it is stored, without an offset.
    if not isinstance(value, str):
        return value
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=ZONE)


def _comparable_value(name: str, value: Any) -> Any:
    if name in ENCRYPTED:
        return value is not None
    if name == "deliveredAt":
        return _moment(value)
    if name == "amount" and isinstance(value, str):
        return Decimal(value)
    return value


def _comparable(node: Any) -> Any:
    """A node in forms both sides can be held to: encrypted fields as present or not (the hub
    sends them decrypted, PostGraphile as stored), date-times as instants, money as decimals
    (both send a string)."""
    if not isinstance(node, dict):
        return node
    return {name: _comparable_value(name, value) for name, value in node.items()}


def same_rows(reference: str, nodes: list[Any], name: str, body: dict[str, Any]) -> None:
    """Mismatch unless PostGraphile's nodes are the hub's rows in the hub's order: every field
    that is not encrypted equal once normalised (`_comparable`), and each encrypted field null
    exactly where the hub's is."""
    found = (body.get("data") or {}).get(POSTGRAPHILE_FIELD, {}).get("nodes")
    if not isinstance(found, list):
        raise Mismatch(f"{name} sent no nodes:\n{orjson.dumps(body).decode()[:2000]}")
    expected, theirs = [_comparable(n) for n in nodes], [_comparable(n) for n in found]
    if theirs != expected:
        raise Mismatch(
            f"{name} and {reference} send different rows; first difference, normalised "
            f"({reference} first): {_first_difference(expected, theirs)}"
        )
