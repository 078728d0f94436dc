"""Fuzzing /graphql: generated documents and variables against the demo's schema, and malformed
HTTP requests, sent to the demo served over SQLite, PostgreSQL and MariaDB in production mode.

Whatever arrives, the hub answers with a status below 500 and a GraphQL-shaped body whose
error codes are all from the documented set; it logs no error (an INTERNAL error is logged with
its traceback, so none may happen); and no body holds a stack trace, SQL text, a file path, an
exception's name or the master key.

Three generators: documents from hypothesis-graphql, valid ones (POSITIVE) and ones with one
violation of the schema (NEGATIVE), queries as several callers and mutations as the platform
admin, some of their arguments moved into variables whose values are kept or replaced by any
JSON; list reads under generated filters and reads by generated keys, with the values where
the databases differ (U+0000, decimals and date-times at the edges, integers past 32 bits);
and malformed requests (bytes, JSON, headers, methods, tokens). Each backend's run has a fixed
seed and a bounded number of examples, and the hubs answer small pages, so that the file takes
well under a minute once the demo databases exist; each backend's hub has its own hub database,
so that the fuzz's policy changes and lookup counts touch no other test.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphql
import hypothesis_graphql as hg
import pytest
from graphql import (
    ArgumentNode,
    DocumentNode,
    NameNode,
    OperationDefinitionNode,
    TypeInfo,
    TypeInfoVisitor,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    parse,
    parse_type,
    print_ast,
    value_from_ast_untyped,
    visit,
)
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from hub.app import create_app
from hub.config import load_settings
from hub.demo.workspace import Workspace, share_keys
from hub.errors import CODES
from hub.services import build_services
from tests.integration.conftest import loaded_demo_settings
from tests.integration.policy_fixtures import fresh_hub_database

SDL = (Path(__file__).resolve().parents[2] / "schema" / "schema.graphql").read_text(encoding="utf-8")
SCHEMA = graphql.build_schema(SDL)
assert SCHEMA.query_type is not None and SCHEMA.mutation_type is not None
QUERY_FIELDS = sorted(SCHEMA.query_type.fields)
MUTATION_FIELDS = sorted(SCHEMA.mutation_type.fields)

# Small pages keep each answer small, so the bounded number of examples runs in seconds; the
# code paths are the same as at the defaults.
FUZZ_SETTINGS = {
    "HUB_MAX_PAGE_SIZE": "20",
    "HUB_DEFAULT_PAGE_SIZE": "5",
    "HUB_MAX_RELATION_PAGE_SIZE": "20",
    "HUB_RELATION_PAGE_SIZE": "3",
    "HUB_MAX_VALUES": "20000",
}
CALLERS = {
    "civil-affairs-app": "social_assistance",
    "health-app": "health_care",
    "district-office-app": "social_assistance",
    "auditor": "audit",
    "public": None,
}
ADMIN = "platform-admin"

# What no body may hold: a traceback, a source or data file's path, SQL, a driver's or Python's
# names, an object's address.
LEAKS = re.compile(
    r"Traceback|File \"|site-packages|\.py\b|\.db\b|/tmp/|/work/|sqlalchemy|asyncpg|asyncmy|aiosqlite|sqlite3"
    r"|pymysql|SELECT\s|\sFROM\s|\sWHERE\s|<class |object at 0x"
    r"|\b[A-Z][a-z]+(?:[A-Z][a-z]*)*(?:Error|Exception)\b"
)


@dataclass
class FuzzHub:
    backend: str
    client: TestClient
    tokens: dict[str, str]
    # Texts no body may hold: the master key, the demo's folder.
    secrets: list[str]
    logged: list[logging.LogRecord] = field(default_factory=list)


class Records(logging.Handler):
    """Every record at ERROR and above, and any that carries an exception."""

    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.into.append(record)


def _serve(backend: str, workspace: Workspace, folder: Path, demo_url: str | None) -> Iterator[FuzzHub]:
    url, tokens = fresh_hub_database(folder)
    asyncio.run(share_keys(workspace, url))
    environ = {**FUZZ_SETTINGS, "HUB_DATABASE_URL": url.render_as_string()}
    if demo_url is None:
        config = load_settings(environ, manifests_dir=workspace.manifests, master_key_file=workspace.master_key_file)
    else:
        config = loaded_demo_settings(demo_url, workspace, folder / "manifests", environ)
    assert not config.introspection and not config.graphiql
    secrets = [workspace.master_key_file.read_text(encoding="utf-8").strip(), str(workspace.root)]
    hub = FuzzHub(backend, TestClient(create_app(build_services(config))), tokens, secrets)
    handler = Records(hub.logged)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with hub.client:
            yield hub
    finally:
        root.removeHandler(handler)


# The fixtures of the demo's data on each database server (the SQLite workspace is the default).
DEMO_DATA = {"postgresql": "postgres_demo", "mariadb": "mariadb_demo"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def fuzz_hub(
    request: pytest.FixtureRequest, demo_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzHub]:
    backend = request.param
    folder = tmp_path_factory.mktemp(f"fuzz-{backend}")
    demo_url = None if backend == "sqlite" else request.getfixturevalue(DEMO_DATA[backend])
    yield from _serve(backend, demo_workspace, folder, demo_url)


# --- what is sent ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One request: its method, headers (the caller's token added when `caller` is set), body or
    parameters."""

    method: str
    caller: str | None
    headers: dict[str, str]
    body: bytes | None = None
    params: dict[str, str] | None = None


def _strings() -> st.SearchStrategy[str]:
    return st.text(st.characters(codec="utf-8"), max_size=30)


def _scalar(values: st.SearchStrategy[str]) -> st.SearchStrategy[graphql.ValueNode]:
    return st.builds(graphql.StringValueNode, value=values)


# The custom scalars as literals: well-formed values, values at the edges, and any text.
DATES = st.sampled_from(["2024-02-29", "2023-02-29", "0001-01-01", "9999-12-31", "99999-01-01", "2024-13-01", ""])
DATETIMES = st.sampled_from(
    ["2026-01-01T00:00:00+08:00", "2026-01-01T00:00:00", "2026-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "x"]
)
DECIMALS = st.sampled_from(["0", "12.50", "-1", "1e37", "1e38", "1e-38", "NaN", "-Infinity", "1e999999999", "1.5.5"])
CUSTOM_SCALARS = {
    "Date": _scalar(DATES | _strings()),
    "DateTime": _scalar(DATETIMES | _strings()),
    "Decimal": _scalar(DECIMALS | _strings()),
    "JSON": _scalar(_strings()),
}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _strings(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_strings(), inner, max_size=4),
    max_leaves=12,
)


def with_variables(document: DocumentNode, chosen: list[bool]) -> tuple[DocumentNode, dict[str, Any]]:
    """`document` with the arguments `chosen` picks (in document order) moved into variables of
    their argument's type, and the variables' values (the literals, as JSON)."""
    info = TypeInfo(SCHEMA)
    variables: dict[str, Any] = {}
    definitions: list[VariableDefinitionNode] = []
    seen = iter(chosen)

    class Hoist(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: Any) -> ArgumentNode | None:
            kind = info.get_input_type()
            if kind is None or isinstance(node.value, VariableNode) or not next(seen, False):
                return None
            name = f"v{len(variables)}"
            variables[name] = value_from_ast_untyped(node.value)
            definitions.append(
                VariableDefinitionNode(
                    variable=VariableNode(name=NameNode(value=name)),
                    type=parse_type(str(kind)),
                    directives=(),
                )
            )
            return ArgumentNode(name=node.name, value=VariableNode(name=NameNode(value=name)))

    edited = visit(document, TypeInfoVisitor(info, Hoist()))
    operations = [d for d in edited.definitions if isinstance(d, OperationDefinitionNode)]
    if not definitions or len(operations) != 1:
        return edited, {}
    operation = operations[0]
    changed = OperationDefinitionNode(
        operation=operation.operation,
        name=operation.name,
        variable_definitions=(*(operation.variable_definitions or ()), *definitions),
        directives=operation.directives,
        selection_set=operation.selection_set,
    )
    definitions_ = tuple(changed if d is operation else d for d in edited.definitions)
    return DocumentNode(definitions=definitions_), variables


@st.composite
def operations(draw: st.DrawFn) -> Sent:
    """A generated operation, sent as one of the callers (mutations as the admin), with some
    arguments as variables whose values may be replaced by any JSON."""
    mutation = draw(st.integers(0, 9)) == 0
    make = hg.mutations if mutation else hg.queries
    # One root field drawn first, then what it selects: left to itself, the strategy's simplest
    # documents (which a seeded run keeps coming back to) all select the first root field.
    root = draw(st.sampled_from(MUTATION_FIELDS if mutation else QUERY_FIELDS))
    # A violation needs an argument to violate.
    mode = hg.Mode.POSITIVE
    if (SCHEMA.mutation_type if mutation else SCHEMA.query_type).fields[root].args:
        mode = draw(st.sampled_from([hg.Mode.POSITIVE, hg.Mode.POSITIVE, hg.Mode.NEGATIVE]))
    text = draw(make(SCHEMA, fields=[root], custom_scalars=CUSTOM_SCALARS, mode=mode))
    body: dict[str, Any] = {"query": text}
    try:
        document = parse(text)
    except graphql.GraphQLError:
        document = None
    if document is not None:
        hoisted, variables = with_variables(document, draw(st.lists(st.booleans(), max_size=8)))
        if variables:
            for name in variables:
                if draw(st.integers(0, 3)) == 0:
                    variables[name] = draw(JSON_VALUES)
            body = {"query": print_ast(hoisted), "variables": variables}
    caller = ADMIN if mutation else draw(st.sampled_from(sorted(CALLERS)))
    headers = {"Content-Type": "application/json"}
    purpose = CALLERS.get(caller)
    if purpose is not None:
        headers["X-Hub-Purpose"] = purpose
    if not mutation and draw(st.integers(0, 4)) == 0:
        params = {"query": body["query"]}
        if "variables" in body:
            params["variables"] = json.dumps(body["variables"])
        return Sent("GET", caller, headers, params=params)
    return Sent("POST", caller, headers, json.dumps(body).encode())


# Values of each scalar a filter or a key takes, with the edges where databases differ: U+0000,
# which PostgreSQL cannot hold; decimals past what it and MariaDB compare; integers past 32 bits;
# dates past year 9999; and now and then a value of another type.
EDGY_TEXT = st.sampled_from(["", "\x00", "a\x00b", "%", "_", "\\", "'", '"', "\ud7ff", "\U0001f600", "x" * 3000])
SCALAR_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "String": EDGY_TEXT | _strings(),
    "ID": EDGY_TEXT | _strings(),
    "Int": st.integers(-(2**31), 2**31 - 1) | st.sampled_from([2**31, -(2**31) - 1, 2**63]),
    "Float": st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([1e308, -1e308, 5e-324]),
    # The edges thrice as often as the rest: they are what differs between databases.
    "Decimal": st.one_of(DECIMALS, DECIMALS, DECIMALS, st.decimals(allow_nan=False).map(str), _strings()),
    "Date": DATES | st.dates().map(str),
    "DateTime": DATETIMES | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    "Boolean": st.booleans(),
}


def _condition(draw: st.DrawFn, kind: graphql.GraphQLInputObjectType, depth: int) -> dict[str, Any]:
    """A filter of input type `kind`: conditions on one to three of its fields, each with an
    operator and a value, or `and`/`or`/`not` around filters of the same type, or (on a relation)
    a filter of the related entity."""
    condition: dict[str, Any] = {}
    names = draw(st.lists(st.sampled_from(sorted(kind.fields)), min_size=1, max_size=3, unique=True))
    for name in names:
        field_type = kind.fields[name].type
        inner = graphql.get_named_type(field_type)
        if name in ("and", "or") and depth < 2:
            condition[name] = [_condition(draw, kind, depth + 1) for _ in range(draw(st.integers(0, 2)))]
        elif isinstance(inner, graphql.GraphQLInputObjectType) and "and" in inner.fields:
            if depth < 2:  # `not`, or a relation's filter
                condition[name] = _condition(draw, inner, depth + 1)
        elif isinstance(inner, graphql.GraphQLInputObjectType):  # StringFilter, DecimalFilter, ...
            op = draw(st.sampled_from(sorted(inner.fields)))
            op_type = inner.fields[op].type
            scalar = graphql.get_named_type(op_type)
            values = SCALAR_VALUES.get(scalar.name, JSON_VALUES)
            if draw(st.integers(0, 15)) == 0:
                values = JSON_VALUES
            many = isinstance(graphql.get_nullable_type(op_type), graphql.GraphQLList)
            condition[name] = {op: draw(st.lists(values, max_size=4) if many else values)}
    return condition


LIST_FIELDS = sorted(name for name, item in SCHEMA.query_type.fields.items() if "filter" in item.args)
KEY_FIELDS = sorted(name for name, item in SCHEMA.query_type.fields.items() if set(item.args) == {"key"})


@st.composite
def filtered(draw: st.DrawFn) -> Sent:
    """A list read under a generated filter, or a read by a generated key, the values given as
    variables: where values reach the department databases."""
    caller = draw(st.sampled_from(sorted(CALLERS)))
    headers = {"Content-Type": "application/json"}
    purpose = CALLERS[caller]
    if purpose is not None:
        headers["X-Hub-Purpose"] = purpose
    if draw(st.integers(0, 3)) == 0:
        root = draw(st.sampled_from(KEY_FIELDS))
        query = f"query($k: ID!) {{ {root}(key: $k) {{ __typename }} }}"
        variables: dict[str, Any] = {"k": draw(SCALAR_VALUES["ID"] | JSON_VALUES)}
    else:
        root = draw(st.sampled_from(LIST_FIELDS))
        kind = graphql.get_named_type(SCHEMA.query_type.fields[root].args["filter"].type)
        assert isinstance(kind, graphql.GraphQLInputObjectType)
        query = f"query($f: {kind.name}) {{ {root}(filter: $f, first: 3) {{ totalCount nodes {{ __typename }} }} }}"
        variables = {"f": _condition(draw, kind, 0)}
    return Sent("POST", caller, headers, json.dumps({"query": query, "variables": variables}).encode())


HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json; charset=latin-1",
        "application/graphql",
        "application/graphql-response+json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ]
)
ACCEPTS = st.sampled_from(
    ["application/json", "application/graphql-response+json", "text/html", "*/*;q=0", "application/json;q=x"]
)
BODY_VALUES = st.recursive(
    JSON_VALUES | st.fixed_dictionaries({"query": _strings()}, optional={"variables": JSON_VALUES}),
    lambda inner: st.dictionaries(
        st.sampled_from(["query", "variables", "operationName", "documentId", "extensions"]), inner, max_size=4
    ),
    max_leaves=8,
)


@st.composite
def malformed(draw: st.DrawFn) -> Sent:
    """A request with something wrong with it, or nearly: its bytes, its JSON, its headers, its
    method or its token."""
    headers: dict[str, str] = {}
    for name, values in (("Content-Type", CONTENT_TYPES), ("Accept", ACCEPTS), ("X-Hub-Purpose", HEADER_TEXT)):
        if draw(st.booleans()):
            headers[name] = draw(values)
    if draw(st.integers(0, 5)) == 0:
        headers["Content-Length"] = draw(HEADER_TEXT)
    body = draw(
        st.one_of(
            st.binary(max_size=200),
            BODY_VALUES.map(lambda value: json.dumps(value).encode()),
            _strings().map(lambda text: json.dumps({"query": text}).encode()),
            _strings().map(str.encode),
        )
    )
    caller = draw(st.sampled_from([*sorted(CALLERS), None]))
    if caller is None and draw(st.booleans()):
        headers["Authorization"] = draw(HEADER_TEXT)
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE"]))
    if method == "GET":
        params = draw(
            st.dictionaries(st.sampled_from(["query", "variables", "operationName", "documentId"]), _strings())
        )
        return Sent("GET", caller, headers, params=params)
    return Sent(method, caller, headers, body)


# --- what must come back -----------------------------------------------------------------


def check(hub: FuzzHub, sent: Sent) -> None:
    headers = dict(sent.headers)
    if sent.caller is not None:
        headers["Authorization"] = f"Bearer {hub.tokens[sent.caller]}"
    before = len(hub.logged)
    response = hub.client.request(sent.method, "/graphql", content=sent.body, params=sent.params, headers=headers)
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(("application/json", "application/graphql-response+json"))
    body = response.json()
    assert isinstance(body, dict) and set(body) <= {"data", "errors", "extensions"}, body
    errors = body.get("errors", [])
    # Seen with --hypothesis-show-statistics: how the run spread over outcomes.
    event(f"HTTP {response.status_code}")
    for code in sorted({e.get("extensions", {}).get("code") for e in errors}):
        event(f"code {code}")
    if body.get("data"):
        event("some data")
    if response.status_code >= 400:
        assert errors and body.get("data") is None, body
    for error in errors:
        assert isinstance(error["message"], str) and error["message"], error
        assert error["extensions"]["code"] in CODES, error
    text = response.text
    # What the request itself carried may come back quoted (an unknown field name it sent, say
    # `AaError`): that is the caller's text, not the hub's internals.
    sent_text = " ".join(
        part for part in (sent.body.decode("utf-8", "replace") if sent.body else "", str(sent.params or "")) if part
    )
    for leak in LEAKS.finditer(text):
        assert leak.group(0) in sent_text, f"{leak.group(0)!r} in {text[:2000]}"
    for secret in hub.secrets:
        assert secret not in text
    assert hub.logged[before:] == [], [r.getMessage() for r in hub.logged[before:]]


FUZZ = settings(
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Examples per backend: SQLite most, the servers enough to meet their own ways of refusing a
# value (PostgreSQL and U+0000 or a huge decimal, MariaDB and its literals).
OPERATIONS = {"sqlite": 600, "postgresql": 200, "mariadb": 200}
# A fixed seed per backend: each run sends the same requests, and each backend other ones.
SEEDS = {"sqlite": 13_01, "postgresql": 13_02, "mariadb": 13_03}
FILTERS = {"sqlite": 800, "postgresql": 400, "mariadb": 400}
MALFORMED = {"sqlite": 400, "postgresql": 50, "mariadb": 50}


def test_generated_operations_get_graphql_answers_and_never_a_fault(fuzz_hub: FuzzHub) -> None:
    @seed(SEEDS[fuzz_hub.backend])
    @settings(FUZZ, max_examples=OPERATIONS[fuzz_hub.backend])
    @given(sent=operations())
    def run(sent: Sent) -> None:
        check(fuzz_hub, sent)

    run()


def test_generated_filters_and_keys_get_graphql_answers_and_never_a_fault(fuzz_hub: FuzzHub) -> None:
    @seed(SEEDS[fuzz_hub.backend])
    @settings(FUZZ, max_examples=FILTERS[fuzz_hub.backend])
    @given(sent=filtered())
    def run(sent: Sent) -> None:
        check(fuzz_hub, sent)

    run()


def test_malformed_requests_are_answered_as_graphql_errors_never_a_fault(fuzz_hub: FuzzHub) -> None:
    @seed(SEEDS[fuzz_hub.backend])
    @settings(FUZZ, max_examples=MALFORMED[fuzz_hub.backend])
    @given(sent=malformed())
    def run(sent: Sent) -> None:
        check(fuzz_hub, sent)

    run()
