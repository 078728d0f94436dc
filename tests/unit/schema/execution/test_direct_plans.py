"""Direct plans (schema/execution/direct.py): documents made only of lookups by key run without
graphql-core's execution, and answer exactly as graphql-core's normal path does.

The hub pair of the fast-path differential test serves both sides: `fast` (direct plans and the
fast path) and `normal` (neither). Generated lookups (several root fields, aliases, named and
inline fragments, `__typename`, keys as literals and as variables, keys that match nothing or
are of the wrong type) run under generated conditions (fields masked or withheld, a key masked
to null, a department down, a value no GraphQL Int holds, ciphertext that fails its check);
the bodies must be the same bytes, errors compared sorted by path.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from hub.access.plan import PLAIN
from schema.builder import HubSchema
from schema.execution.direct import DirectPlans
from tests.unit.schema.execution.test_fast_path_differential import (
    CI,
    PLAIN_FIELDS,
    SEALED_FIELDS,
    Conditions,
    Pair,
    check,
    codes,
    conditions,
    huge_int,
    plain,
    sealed,
    swapped_names,
)

__all__ = ["plain", "sealed"]  # the fixtures, shared with the fast path's differential test


class Runs:
    """What direct plans did: runs answered directly, and runs that stepped aside."""

    def __init__(self) -> None:
        self.direct = 0
        self.declined = 0
        self.executed = 0


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Runs:
    found = Runs()
    real_run, real_execute = DirectPlans.run, HubSchema.execute

    async def run(self: DirectPlans, *args: Any) -> Any:
        outcome = await real_run(self, *args)
        if outcome is None:
            found.declined += 1
        else:
            found.direct += 1
        return outcome

    async def execute(self: HubSchema, *args: Any, **kwargs: Any) -> Any:
        found.executed += 1
        return await real_execute(self, *args, **kwargs)

    monkeypatch.setattr(DirectPlans, "run", run)
    monkeypatch.setattr(HubSchema, "execute", execute)
    return found


@st.composite
def lookups(draw: st.DrawFn, pair: Pair) -> tuple[str, dict[str, Any]]:
    """A query of 1-3 lookups by key with plain selections, in every form a direct plan takes."""
    entities = sorted(pair.catalog, key=lambda e: e.id)
    roots: list[str] = []
    fragments: list[str] = []
    declared: list[str] = []
    variables: dict[str, Any] = {}
    for index in range(draw(st.integers(1, 3))):
        entity = draw(st.sampled_from(entities))
        items: list[str] = []
        for _ in range(draw(st.integers(1, 5))):
            kind = draw(st.sampled_from(["field", "field", "field", "alias", "typename", "inline", "spread"]))
            name = draw(st.sampled_from(sorted(entity.fields)))
            if kind == "field":
                items.append(name)
            elif kind == "alias":
                items.append(f"x{len(items)}: {name}")
            elif kind == "typename":
                items.append("__typename")
            elif kind == "inline":
                condition = f" on {entity.type_name}" if draw(st.booleans()) else ""
                items.append(f"...{condition} {{ {name} }}")
            else:
                fragment = f"F{len(fragments)}"
                fragments.append(f"fragment {fragment} on {entity.type_name} {{ {name} __typename }}")
                items.append(f"...{fragment}")
        key = draw(st.sampled_from(pair.keys[entity.id]))
        if draw(st.booleans()):
            variable = f"k{index}"
            declared.append(f"${variable}: ID!")
            # Mostly the key itself; now and then a value ID! refuses, which the normal path reports.
            variables[variable] = draw(st.sampled_from([key, key, key, key, 7, ["a"], None]))
            argument = f"${variable}"
        else:
            argument = f'"{key}"'
        alias = f"r{index}: " if index or draw(st.booleans()) else ""
        roots.append(f"{alias}{entity.key_field}(key: {argument}) {{ {' '.join(items)} }}")
    header = f"query L({', '.join(declared)})" if declared else "query L"
    return f"{header} {{ {' '.join(roots)} }} {' '.join(fragments)}", variables


@settings(CI)
@given(data=st.data())
def test_direct_plans_answer_as_the_normal_path(plain: Pair, data: st.DataObject) -> None:
    case = data.draw(lookups(plain))
    given_ = data.draw(conditions(PLAIN_FIELDS, [], [huge_int]))
    event(f"codes: {codes(check(plain, case, given_))}")


@settings(CI, max_examples=60)
@given(data=st.data())
def test_direct_plans_answer_as_the_normal_path_on_encrypted_fields(sealed: Pair, data: st.DataObject) -> None:
    case = data.draw(lookups(sealed))
    given_ = data.draw(conditions(SEALED_FIELDS, [], [swapped_names]))
    event(f"codes: {codes(check(sealed, case, given_))}")


def test_a_lookup_by_key_runs_without_graphql_execution(plain: Pair, runs: Runs) -> None:
    query = 'query L { welfareCase(key: "C1") { caseId who: recipientIdNumber ... on WelfareCase { amount } } }'
    body = check(plain, (query, {}), Conditions({}, {}, None, None))
    assert body["data"] == {"welfareCase": {"caseId": "C1", "who": "110105199001011234", "amount": "500.00"}}
    # The normal hub of the pair executes it; the fast one answers from its direct plan.
    assert (runs.direct, runs.declined, runs.executed) == (1, 0, 1)


def test_a_stored_int_no_graphql_int_holds_is_data_integrity_on_both_paths(plain: Pair, runs: Runs) -> None:
    # No GraphQL Int holds 2**40: the connector reads it as unreadable, so the release nulls
    # it with DATA_INTEGRITY before any shaper sees it, and the direct plan answers.
    query = '{ registryPerson(key: "110105199001011234") { name children } }'
    body = check(plain, (query, {}), Conditions({}, {}, None, huge_int))
    assert body["data"] == {"registryPerson": {"name": "王小明", "children": None}}
    assert codes(body) == ["DATA_INTEGRITY"]
    assert (runs.direct, runs.declined, runs.executed) == (1, 0, 1)


def test_a_variable_of_the_wrong_type_is_bad_input_on_both_paths(plain: Pair, runs: Runs) -> None:
    query = "query L($k: ID!) { welfareCase(key: $k) { caseId } }"
    body = plain.assert_same(query, {"k": ["C1"]})
    assert body["data"] is None
    assert codes(body) == ["BAD_USER_INPUT"]
    assert runs.declined == 1


def test_a_department_down_nulls_only_its_lookup(plain: Pair, runs: Runs) -> None:
    query = '{ welfareCase(key: "C1") { caseId } registryPerson(key: "110105199001011234") { name } }'
    body = check(plain, (query, {}), Conditions({"name": PLAIN}, {}, "welfare", None))
    assert body["data"] == {"welfareCase": None, "registryPerson": {"name": "王小明"}}
    assert codes(body) == ["DEPARTMENT_UNAVAILABLE"]
    assert runs.direct == 1


@pytest.mark.parametrize(
    "query",
    [
        '{ welfareCase(key: "C1") { caseId @include(if: true) } }',
        '{ welfareCase(key: "C1") { caseId recipient { name } } }',
        '{ welfareCases { nodes { caseId } } welfareCase(key: "C1") { caseId } }',
        '{ __typename welfareCase(key: "C1") { caseId } }',
        'query A { welfareCase(key: "C1") { caseId } } query B { welfareCase(key: "C2") { status } }',
    ],
    ids=["directive", "relation", "list-field", "root-typename", "two-operations"],
)
def test_documents_beyond_lookups_take_the_normal_path(plain: Pair, runs: Runs, query: str) -> None:
    # Two operations need an operationName; without one both hubs report the same error.
    plain.assert_same(query, {})
    assert runs.direct == runs.declined == 0
