"""Direct plans for root aggregate fields (schema/execution/direct_aggregates.py): documents
made only of aggregates run without graphql-core's execution, and answer exactly as the
normal path does: the same JSON, the same errors, the same `extensions.access`, the same
suppression, and the same event in the access trail.

This is a differential test: the hub pair of the fast path's differential test (`fast` with
direct plans and the fast path, `normal` with neither) serves more persons and cases here, so
that groups are large and small. Generated aggregates (group keys, time buckets, orders by
count, key, bucket and measures, pages, filters with `some`/`none` on relations, variables,
aliases, fragments, `__typename`; now and then a malformed argument) run under generated
conditions: fields masked or withheld (a group key or measure not PLAIN is FORBIDDEN), the
persons' field not plain (small groups suppressed, with their complement), k from 1 to 5, a
department down. Page cursors are sealed with a fresh nonce each time, so an `endCursor` is
compared as present or absent, and paging is followed to its end on both paths.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from hub.access.plan import Verdict
from hub.catalog import EntityInfo, load_catalog
from schema.builder import HubSchema
from schema.execution import direct_aggregates
from tests.conftest import CASES, FIXTURES, PEOPLE
from tests.unit.schema.execution.test_fast_path_differential import (
    CI,
    DENIED,
    MASKED,
    MORE_CASES,
    MORE_PEOPLE,
    Pair,
    _serve,
    codes,
    hub_database,
)

DISTRICTS = ["Chaoyang", "Haidian", "Dongcheng", None]
STATUSES = ["open", "closed", "pending", None]


def _people() -> list[dict[str, Any]]:
    people = [dict(r) for r in PEOPLE + MORE_PEOPLE]
    for i in range(24):
        people.append(
            {
                "id_number": f"3301022000{i:02d}0101{i % 10}{i % 7}",
                "name": f"居民{i}",
                "birth_date": date(1950 + i, 1 + i % 12, 1 + i % 28),
                "district": DISTRICTS[i % 3 if i < 20 else 3],
                "income": None if i % 5 == 0 else Decimal(1000 + 37 * i) / 10,
                "registered_at": datetime(2019 + i % 4, 1 + i % 12, 1, 8, i),
                "children": None if i % 6 == 0 else i % 4,
                "active": None if i % 9 == 0 else i % 2 == 0,
            }
        )
    return people


def _cases(people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cases = [dict(r) for r in CASES + MORE_CASES]
    for i in range(30):
        cases.append(
            {
                "case_id": f"D{i:02d}",
                # Persons with several cases, so a person counts once per group, not per case.
                "recipient_id_number": people[(i * 7) % len(people)]["id_number"] if i % 11 else None,
                "amount": None if i % 8 == 0 else Decimal(50 * (i % 6) + i) + Decimal("0.25"),
                "status": STATUSES[i % 4],
            }
        )
    return cases


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    catalog = load_catalog(FIXTURES / "manifests")
    people = _people()
    tables = {"registry": {"person": people}, "welfare": {"welfare_case": _cases(people)}}
    with ExitStack() as stack:
        url = hub_database(tmp_path_factory.mktemp("aggregates"))
        pair = _serve(stack, url, catalog, FIXTURES / "manifests", tables)
        pair.url = url  # type: ignore[attr-defined]
        yield pair


class Runs:
    """What aggregate plans did: runs answered directly, runs that stepped aside, and
    documents graphql-core executed."""

    def __init__(self) -> None:
        self.direct = 0
        self.declined = 0
        self.executed = 0


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Runs:
    return spy(monkeypatch)


def spy(monkeypatch: pytest.MonkeyPatch) -> Runs:
    found = Runs()
    real_run, real_execute = direct_aggregates.run_aggregates, HubSchema.execute

    async def run(*args: Any) -> Any:
        outcome = await real_run(*args)
        if outcome is None:
            found.declined += 1
        else:
            found.direct += 1
        return outcome

    async def execute(self: HubSchema, *args: Any, **kwargs: Any) -> Any:
        found.executed += 1
        return await real_execute(self, *args, **kwargs)

    monkeypatch.setattr("schema.execution.direct.run_aggregates", run)
    monkeypatch.setattr(HubSchema, "execute", execute)
    return found


# --- comparing the two paths ------------------------------------------------------------------

TRAIL_COLUMNS = (
    "principal, department, purpose, operation_hash, operation_name, document_id, outcome, status, code, "
    "policy_version, released, persons, persons_digest, kind"
)


def _last_events(pair: Pair, count: int) -> list[tuple[Any, ...]]:
    database = pair.url.database  # type: ignore[attr-defined]
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            f"SELECT {TRAIL_COLUMNS} FROM hub_audit_event ORDER BY position DESC LIMIT ?",  # noqa: S608
            (count,),
        ).fetchall()
    return list(reversed(rows))


def _cursors(value: Any) -> Any:
    """`value` with each end cursor (sealed under a fresh nonce) as whether there is one."""
    if isinstance(value, dict):
        return {k: (v is not None if k in ("endCursor", "ec") else _cursors(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_cursors(v) for v in value]
    return value


def post(pair: Pair, fast: bool, query: str, variables: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    client = pair.fast if fast else pair.normal
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {pair.token}"}
    )
    return response.status_code, orjson.loads(response.content)


def same(pair: Pair, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """Both paths' answers to `query`, and the trail events they wrote, alike; the fast one."""
    fast_status, fast = post(pair, True, query, variables)
    fast_event = _last_events(pair, 1)
    normal_status, normal = post(pair, False, query, variables)
    normal_event = _last_events(pair, 1)
    assert fast_status == normal_status, query
    assert orjson.dumps(_cursors(fast)) == orjson.dumps(_cursors(normal)), (query, variables, fast, normal)
    assert fast_event == normal_event, query
    return fast


@pytest.fixture(autouse=True)
def clean(wide: Pair) -> None:
    """Every test starts with everything plain, the default k and every department up."""
    given_conditions(wide, {}, None, None)


def given_conditions(pair: Pair, fields: dict[str, Verdict], k: int | None, down: str | None) -> None:
    pair.policy.fields, pair.policy.relations = fields, {}
    # A new version per example: plans are cached by it.
    pair.policy.version = str(int(pair.policy.version) + 1)
    if k is None:
        pair.policy.__dict__.pop("min_group", None)
    else:
        pair.policy.min_group = lambda principal, purpose, department=None: k  # type: ignore[attr-defined]
    for name, connector in pair.connectors.items():
        connector.down = name == down


# --- generated aggregates ---------------------------------------------------------------------

MEASURE_FIELDS = {
    "registry.Person": {
        "sum": ["income", "children"],
        "avg": ["income", "children"],
        "min": ["name", "birthDate", "income", "registeredAt"],
        "max": ["birthDate", "district", "children"],
        "countDistinct": ["district", "active", "children"],
    },
    "welfare.Case": {
        "sum": ["amount"],
        "avg": ["amount"],
        "min": ["status", "amount"],
        "max": ["caseId", "amount"],
        "countDistinct": ["status", "amount"],
    },
}
# Group keys: not the persons' fields, which are masked in half the examples (a group key
# over a field not read plain is FORBIDDEN: the conditions' masks cover that).
GROUP_FIELDS = {
    "registry.Person": ["district", "active", "children", "name", "birthDate"],
    "welfare.Case": ["status", "amount", "caseId"],
}
TEMPORAL = {"registry.Person": ["birthDate", "registeredAt"], "welfare.Case": []}
FILTERS = {
    "registry.Person": [
        '{district: {eq: "Chaoyang"}}',
        '{cases: {some: {status: {eq: "open"}}}}',
        "{cases: {none: {}}}",
        '{or: [{children: {gt: 1}}, {district: {eq: "Haidian"}}]}',
        "{income: {isNull: true}}",
    ],
    "welfare.Case": [
        '{status: {eq: "open"}}',
        '{recipient: {some: {district: {eq: "Chaoyang"}}}}',
        "{recipient: {none: {}}}",
        '{amount: {gte: "100"}}',
    ],
}
PERIODS = ["DAY", "WEEK", "MONTH", "QUARTER", "YEAR"]


def _enum(name: str) -> str:
    return "".join("_" + c if c.isupper() else c.upper() for c in name)


@st.composite
def measures(draw: st.DrawFn, entity: EntityInfo, fragments: list[str], typename: str) -> str:
    items: list[str] = []
    for measure, names in MEASURE_FIELDS[entity.id].items():
        if draw(st.integers(0, 2)) == 0:
            chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
            alias = f"{measure[0]}{len(items)}: " if draw(st.integers(0, 3)) == 0 else ""
            items.append(f"{alias}{measure} {{ {' '.join(chosen)} }}")
    if draw(st.booleans()):
        items.append("count")
    if draw(st.integers(0, 3)) == 0 and items:
        name = f"M{len(fragments)}"
        fragments.append(f"fragment {name} on {typename} {{ {' '.join(items)} }}")
        return f"...{name}"
    return " ".join(items)


MALFORMED = [
    "groupBy: [DISTRICT, DISTRICT]",
    "orderBy: [{by: SUM, field: DISTRICT}]",
    "orderBy: [{by: COUNT}, {by: COUNT, descending: true}]",
    "orderBy: [{by: COUNT, field: DISTRICT}]",
    "orderBy: [{by: BUCKET}]",
    "orderBy: [{by: KEY, field: NAME}]",
    "bucket: {field: DISTRICT, period: MONTH}",
    "first: -1",
    'after: "forged"',
]


@st.composite
def aggregates(draw: st.DrawFn, pair: Pair) -> tuple[str, dict[str, Any]]:
    """A query of one or two aggregate fields in every form an aggregate plan takes; in about
    one in eight, an argument the hub refuses or a variable that does not coerce."""
    fragments: list[str] = []
    declared: list[str] = []
    variables: dict[str, Any] = {}
    roots: list[str] = []
    malformed = draw(st.integers(0, 7)) == 3
    for index in range(draw(st.integers(1, 2))):
        entity = draw(st.sampled_from(sorted(pair.catalog, key=lambda e: e.id)))
        arguments: list[str] = []
        group_by = draw(st.lists(st.sampled_from(GROUP_FIELDS[entity.id]), max_size=2, unique=True))
        bucket = None
        if TEMPORAL[entity.id] and draw(st.booleans()):
            bucket = (draw(st.sampled_from(TEMPORAL[entity.id])), draw(st.sampled_from(PERIODS)))
        if group_by:
            if draw(st.booleans()):
                declared.append(f"$g{index}: [{entity.type_name}AggregateField!]")
                variables[f"g{index}"] = [_enum(n) for n in group_by]
                arguments.append(f"groupBy: $g{index}")
            else:
                arguments.append(f"groupBy: [{', '.join(_enum(n) for n in group_by)}]")
        if bucket is not None:
            arguments.append(f"bucket: {{field: {_enum(bucket[0])}, period: {bucket[1]}}}")
        steps: dict[str, str] = {}
        for _ in range(draw(st.integers(0, 2))):
            by = draw(st.sampled_from(["COUNT", "KEY", "BUCKET", "SUM", "MIN", "MAX", "COUNT_DISTINCT", "AVG"]))
            descending = ", descending: true" if draw(st.booleans()) else ""
            if by == "COUNT" or (by == "BUCKET" and bucket is not None):
                steps.setdefault(by, f"{{by: {by}{descending}}}")
            elif by == "KEY" and group_by:
                name = draw(st.sampled_from(group_by))
                steps.setdefault(f"KEY {name}", f"{{by: KEY, field: {_enum(name)}{descending}}}")
            elif by not in ("KEY", "BUCKET"):
                name = draw(st.sampled_from(MEASURE_FIELDS[entity.id][_measure(by)]))
                steps.setdefault(f"{by} {name}", f"{{by: {by}, field: {_enum(name)}{descending}}}")
        if steps:
            arguments.append(f"orderBy: [{', '.join(steps.values())}]")
        if draw(st.integers(0, 2)) == 1:
            arguments.append(f"filter: {draw(st.sampled_from(FILTERS[entity.id]))}")
        first = draw(st.sampled_from([None, 1, 2, 3]))
        if first is not None:
            if draw(st.booleans()):
                declared.append(f"$n{index}: Int")
                variables[f"n{index}"] = first
                arguments.append(f"first: $n{index}")
            else:
                arguments.append(f"first: {first}")
        if malformed and index == 0:
            wrong = draw(st.sampled_from([*MALFORMED, "variable"]))
            if wrong == "variable":
                declared.append("$bad: Int")
                variables["bad"] = "two"
                arguments = [a for a in arguments if not a.startswith("first")] + ["first: $bad"]
            elif entity.id == "registry.Person":
                arguments = [a for a in arguments if a.split(":")[0] != wrong.split(":")[0]] + [wrong]
            else:
                arguments = [a for a in arguments if not a.startswith("first")] + ["first: -1"]
        group_type = f"{entity.type_name}AggregateGroup"
        group_items = [draw(measures(entity, fragments, group_type))]
        key_names = [*group_by, *(["bucket"] if bucket else [])]
        if key_names and draw(st.integers(0, 3)):
            alias = "k: " if draw(st.booleans()) else ""
            typename = " __typename" if draw(st.booleans()) else ""
            group_items.append(f"{alias}key {{ {' '.join(key_names)}{typename} }}")
        if draw(st.integers(0, 3)):
            group_items.append("suppressed")
        if draw(st.integers(0, 4)) == 0:
            group_items.append("__typename")
        items = [draw(measures(entity, fragments, f"{entity.type_name}Aggregate"))]
        if any(group_items) and draw(st.integers(0, 4)):
            items.append(f"groups {{ {' '.join(i for i in group_items if i)} }}")
        if draw(st.booleans()):
            items.append("pageInfo { hasNextPage endCursor }")
        if draw(st.integers(0, 4)) == 0:
            items.append("__typename")
        selection = " ".join(i for i in items if i) or "count"
        listed_arguments = f"({', '.join(arguments)})" if arguments else ""
        alias = f"r{index}: " if index or draw(st.booleans()) else ""
        roots.append(f"{alias}{entity.list_field}Aggregate{listed_arguments} {{ {selection} }}")
    body = " ".join(roots)
    # Only the variables used (a malformed argument may have taken the place of one).
    declared = [d for d in declared if re.search(re.escape(d.split(":")[0]) + r"\b", body)]
    variables = {
        name: value for name, value in variables.items() if any(d[1:].startswith(name + ":") for d in declared)
    }
    header = f"query A({', '.join(declared)})" if declared else "query A"
    # Only the fragments spread (a fragment of measures may have gone with a selection left out).
    used = [f for f in fragments if f"...{f.split()[1]} " in body + " " or f"...{f.split()[1]}}}" in body]
    return f"{header} {{ {body} }} {' '.join(used)}", variables


def _measure(by: str) -> str:
    return {"SUM": "sum", "AVG": "avg", "MIN": "min", "MAX": "max", "COUNT_DISTINCT": "countDistinct"}[by]


VERDICT_FIELDS = ["idNumber", "district", "income", "birthDate", "recipientIdNumber", "amount", "status"]


@st.composite
def conditions(draw: st.DrawFn) -> tuple[dict[str, Verdict], int | None, str | None]:
    fields: dict[str, Verdict] = {}
    # In one example of four a field is not released plain (its use is FORBIDDEN).
    if draw(st.integers(0, 3)) == 2:
        fields[draw(st.sampled_from(VERDICT_FIELDS))] = draw(st.sampled_from([MASKED, DENIED]))
    # The persons' fields masked half the time, so that small groups are suppressed.
    if draw(st.booleans()):
        fields["idNumber"] = fields["recipientIdNumber"] = MASKED
    k = draw(st.sampled_from([None, 1, 2, 3, 6, 9]))
    down = draw(st.sampled_from(["welfare", "registry"])) if draw(st.integers(0, 9)) == 4 else None
    return fields, k, down


@settings(CI)
@given(data=st.data())
def test_aggregate_plans_answer_as_the_normal_path(wide: Pair, data: st.DataObject) -> None:
    query, variables = data.draw(aggregates(wide))
    fields, k, down = data.draw(conditions())
    given_conditions(wide, fields, k, down)
    with pytest.MonkeyPatch.context() as patch:
        runs = spy(patch)
        body = same(wide, query, variables)
    suppressed = body.get("extensions", {}).get("access", {}).get("suppressedGroups", 0)
    event(f"codes: {codes(body)}")
    event(f"suppressed: {'some' if suppressed else 'none'}")
    event(f"ran on: {'a plan' if runs.direct else 'the normal path'}")


# --- the cases the differential test must cover, each made sure of ----------------------------

BY_DISTRICT = """query D($first: Int, $after: String) {
  registryPersonsAggregate(groupBy: [DISTRICT], orderBy: [{by: COUNT, descending: true}], first: $first,
      after: $after) {
    count sum { income }
    groups { key { district } count avg { income } suppressed }
    pageInfo { hasNextPage endCursor }
  }
}"""


def test_an_aggregate_runs_without_graphql_execution(wide: Pair, runs: Runs) -> None:
    body = same(wide, BY_DISTRICT, {})
    answer = body["data"]["registryPersonsAggregate"]
    assert answer["count"] == 28
    assert [g["key"]["district"] for g in answer["groups"]][:3] == ["Chaoyang", "Haidian", "Dongcheng"]
    assert body["extensions"]["access"]["aggregated"] == ["registry.Person.district", "registry.Person.income"]
    # The normal hub of the pair executes it; the fast one answers from its plan.
    assert (runs.direct, runs.declined, runs.executed) == (1, 0, 1)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("{ registryPersonsAggregate(groupBy: [INCOME]) { groups { count } } }", "RegistryPerson.income"),
        ("{ registryPersonsAggregate { sum { income } } }", "RegistryPerson.income"),
        (
            "{ registryPersonsAggregate(groupBy: [DISTRICT]) { groups { max { birthDate } } } }",
            "RegistryPerson.birthDate",
        ),
        (
            "{ registryPersonsAggregate(groupBy: [DISTRICT], orderBy: [{by: AVG, field: INCOME}]) { count } }",
            "RegistryPerson.income",
        ),
    ],
    ids=["group-key", "measure", "group-measure", "order"],
)
def test_a_field_not_plain_as_group_key_or_measure_is_forbidden_alike(
    wide: Pair, runs: Runs, query: str, field: str
) -> None:
    given_conditions(wide, {"income": MASKED, "birthDate": DENIED}, None, None)
    body = same(wide, query, {})
    assert codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["extensions"]["field"] == field
    assert body["data"] == {"registryPersonsAggregate": None}
    assert runs.direct == 1


def test_small_groups_are_suppressed_alike_with_their_complement(wide: Pair, runs: Runs) -> None:
    # Persons by district: Chaoyang 9, Haidian 8, Dongcheng 6, none 5. Under k = 9 three groups
    # are too small.
    given_conditions(wide, {"idNumber": MASKED}, 9, None)
    body = same(wide, BY_DISTRICT, {})
    answer = body["data"]["registryPersonsAggregate"]
    flags = [g["suppressed"] for g in answer["groups"]]
    assert flags == sorted(flags) and any(flags) and not all(flags)
    assert all(g["count"] is None for g in answer["groups"] if g["suppressed"])
    assert body["extensions"]["access"]["suppressedGroups"] == sum(flags)
    # Under k = 6 one group alone is too small: the next smallest is suppressed with it.
    given_conditions(wide, {"idNumber": MASKED}, 6, None)
    one = same(wide, BY_DISTRICT, {})["data"]["registryPersonsAggregate"]
    assert sum(g["suppressed"] for g in one["groups"]) == 2
    assert runs.direct == 2


def test_pages_follow_alike_to_the_end_and_cursors_cross_executors(wide: Pair, runs: Runs) -> None:
    given_conditions(wide, {"idNumber": MASKED}, 6, None)
    pages: dict[bool, list[Any]] = {}
    for fast in (True, False):
        after = None
        pages[fast] = []
        for _ in range(10):
            _, body = post(wide, fast, BY_DISTRICT, {"first": 1, "after": after})
            answer = body["data"]["registryPersonsAggregate"]
            pages[fast].append(answer["groups"])
            if not answer["pageInfo"]["hasNextPage"]:
                break
            after = answer["pageInfo"]["endCursor"]
    assert pages[True] == pages[False]
    assert len(pages[True]) == 4
    # In one hub, a cursor the plan issued pages alike on the normal path (a directive takes the
    # document there), and the normal path's on the plan.
    normal_path = BY_DISTRICT.replace("count sum", "count @include(if: true) sum")
    for issuer, follower in ((BY_DISTRICT, normal_path), (normal_path, BY_DISTRICT)):
        _, first = post(wide, True, issuer, {"first": 2})
        cursor = first["data"]["registryPersonsAggregate"]["pageInfo"]["endCursor"]
        _, second = post(wide, True, follower, {"first": 2, "after": cursor})
        assert second["data"]["registryPersonsAggregate"]["groups"] == pages[True][2] + pages[True][3]
    assert runs.direct == 6


def test_a_department_down_nulls_only_its_aggregate_alike(wide: Pair, runs: Runs) -> None:
    query = "{ a: welfareCasesAggregate { count } b: registryPersonsAggregate { count } }"
    given_conditions(wide, {}, None, "welfare")
    body = same(wide, query, {})
    assert body["data"] == {"a": None, "b": {"count": 28}}
    assert codes(body) == ["DEPARTMENT_UNAVAILABLE"]
    assert runs.direct == 1


@pytest.mark.parametrize(
    ("filter_", "plain", "masked"),
    [
        ('{cases: {some: {status: {eq: "open"}}}}', [], ["FORBIDDEN"]),
        ("{cases: {none: {}}}", [], []),
        ('{cases: {none: {amount: {gt: "100"}}}}', [], ["FORBIDDEN"]),
        ('{not: {cases: {some: {amount: {gt: "100"}}}}}', ["BAD_USER_INPUT"], ["BAD_USER_INPUT"]),
    ],
    ids=["some", "none", "none-of", "not-some"],
)
def test_relation_filters_count_and_refuse_alike(
    wide: Pair, runs: Runs, filter_: str, plain: list[str], masked: list[str]
) -> None:
    query = (
        f"{{ registryPersonsAggregate(filter: {filter_}, groupBy: [DISTRICT]) "
        "{ count groups { key { district } count } } }"
    )
    body = same(wide, query, {})
    assert codes(body) == plain
    if not plain:
        assert 0 < body["data"]["registryPersonsAggregate"]["count"] < 28
    # A relation condition on a field not read plain is refused alike, before any SQL.
    given_conditions(wide, {"status": MASKED, "amount": MASKED}, None, None)
    assert codes(same(wide, query, {})) == masked
    assert runs.direct == 2


@pytest.mark.parametrize(
    "arguments",
    [
        "orderBy: [{by: SUM, field: DISTRICT}]",
        "groupBy: [DISTRICT], orderBy: [{by: COUNT}, {by: COUNT}]",
        "groupBy: [DISTRICT, DISTRICT]",
        "orderBy: [{by: COUNT, field: DISTRICT}]",
        'after: "forged"',
        "first: -1",
        "first: 10001",
    ],
)
def test_malformed_arguments_are_refused_alike(wide: Pair, runs: Runs, arguments: str) -> None:
    body = same(wide, f"{{ registryPersonsAggregate({arguments}) {{ count groups {{ count }} }} }}", {})
    assert codes(body) in (["BAD_USER_INPUT"], ["LIMIT_EXCEEDED"])
    assert runs.direct == 1


@pytest.mark.parametrize(
    "query",
    [
        "{ registryPersonsAggregate { count @include(if: true) } }",
        '{ registryPersonsAggregate { count } registryPerson(key: "110105199001011234") { name } }',
        "{ registryPersonsAggregate { count } registryPersons { nodes { name } } }",
        "{ __typename registryPersonsAggregate { count } }",
        "query A { registryPersonsAggregate { count } } query B { welfareCasesAggregate { count } }",
    ],
    ids=["directive", "with-lookup", "with-list", "root-typename", "two-operations"],
)
def test_documents_beyond_aggregates_take_the_normal_path(wide: Pair, runs: Runs, query: str) -> None:
    same(wide, query, {})
    assert runs.direct == runs.declined == 0


def test_variables_that_do_not_coerce_step_aside_to_the_normal_path(wide: Pair, runs: Runs) -> None:
    query = (
        "query V($n: Int, $g: [RegistryPersonAggregateField!]) "
        "{ registryPersonsAggregate(groupBy: $g, first: $n) { count } }"
    )
    body = same(wide, query, {"n": "two", "g": ["DISTRICT"]})
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["data"] is None
    assert (runs.direct, runs.declined) == (0, 1)
