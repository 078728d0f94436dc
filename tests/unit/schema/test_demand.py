"""What an operation demands, measured once before it runs: depth (introspection aside),
aliases and directives counted where each fragment is spread, and a cost that multiplies what a
list selects by the rows it may hold, along the nesting, with page sizes given as variables
finished per request. The walk ends on circular fragments and measures each fragment once."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_introspection_query,
    parse,
)

import schema.demand as demand_module
from hub.catalog import Catalog
from hub.config import load_settings
from hub.demo.catalog import demo_catalog
from schema import BuiltSchema, build_schema
from schema.demand import Demand


@pytest.fixture(scope="module")
def built(small_catalog: Catalog) -> BuiltSchema:
    return build_schema(small_catalog, load_settings({}))


def measured(built: BuiltSchema, text: str) -> Demand:
    (demand,) = built.limits.measure(parse(text))
    return demand


def cost(built: BuiltSchema, text: str, variables: dict[str, Any] | None = None) -> int:
    assert built.limits.pages is not None
    return measured(built, text).cost(built.limits.pages, variables)


def test_depth_counts_nested_fields_through_fragments(built: BuiltSchema) -> None:
    assert measured(built, "{ registryPersons { totalCount } }").depth == 2
    text = """
        { registryPersons { nodes { ...Case } } }
        fragment Case on RegistryPerson { cases { ... on WelfareCase { recipient { name } } } }
    """
    # registryPersons, nodes, cases, recipient, name: fragments add no level of their own.
    assert measured(built, text).depth == 5


def _nesting(selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]) -> int:
    """How deep fields nest, fragments followed, introspection counted like any field."""
    deepest = 0
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            deepest = max(deepest, 1 + _nesting(selection.selection_set, fragments))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _nesting(selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode):
            deepest = max(deepest, _nesting(fragments[selection.name.value].selection_set, fragments))
    return deepest


def test_introspection_does_not_count_toward_depth(built: BuiltSchema) -> None:
    query = get_introspection_query()
    document = parse(query)
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    # The standard query nests fields 15 levels deep (TypeRef's `ofType` chain), past the 12 allowed.
    assert _nesting(operation.selection_set, fragments) == 15
    assert measured(built, query).depth == 0
    assert measured(built, '{ registryPersons { totalCount } __type(name: "Query") { fields { name } } }').depth == 2


def test_aliases_are_counted_where_each_fragment_is_spread(built: BuiltSchema) -> None:
    text = """
        { a: registryPersons { ...Three ...Three } b: registryPersons { ...Three } }
        fragment Three on RegistryPersonConnection { x: totalCount y: totalCount nodes { z: name } }
    """
    assert measured(built, text).aliases == 2 + 3 * 3


def test_a_fragment_spread_thirty_times_with_thirty_aliases_counts_nine_hundred(built: BuiltSchema) -> None:
    fragment = "fragment F on RegistryPersonConnection { " + " ".join(f"a{i}: totalCount" for i in range(30)) + " }"
    text = fragment + " { registryPersons { " + " ".join("...F" for _ in range(30)) + " } }"
    assert measured(built, text).aliases == 900


def test_directives_are_counted_at_every_use(built: BuiltSchema) -> None:
    text = """
        query Q($yes: Boolean = true) @skip(if: false) {
          registryPersons @include(if: $yes) {
            ...F @include(if: true)
            ...F
            ... @skip(if: false) { totalCount }
          }
        }
        fragment F on RegistryPersonConnection @skip(if: false) { totalCount @include(if: true) @skip(if: false) }
    """
    # Operation 1, field 1, inline fragment 1, the first spread 1, and twice the fragment's
    # own 1 and its field's 2.
    assert measured(built, text).directives == 1 + 1 + 1 + 1 + 2 * (1 + 2)


def test_each_field_costs_one_and_a_list_multiplies_what_it_selects_by_its_page(built: BuiltSchema) -> None:
    assert cost(built, '{ registryPerson(key: "1") { name district } }') == 3
    # registryPersons 1, nodes 1 + 10 rows x (name, district).
    assert cost(built, "{ registryPersons(first: 10) { nodes { name district } } }") == 1 + 1 + 10 * 2
    # Without `first`, the default page (100); the count and page info are not per row.
    assert cost(built, "{ registryPersons { totalCount pageInfo { hasNextPage } nodes { name } } }") == (
        1 + 1 + 1 + 1 + 1 + 100 * 1
    )


def test_a_relation_list_is_priced_at_the_bound_the_reader_cuts_it_at(small_catalog: Catalog) -> None:
    text = '{ registryPerson(key: "1") { cases { caseId recipient { name } } } }'
    # registryPerson 1, cases 1 + 100 x (caseId 1, recipient 1 + name 1): a to-one relation is one row.
    assert cost(build_schema(small_catalog, load_settings({})), text) == 1 + 1 + 100 * 3
    narrow = build_schema(small_catalog, load_settings({"HUB_RELATION_PAGE_SIZE": "7"}))
    assert cost(narrow, text) == 1 + 1 + 7 * 3


def test_ten_thousand_rows_with_three_nested_relation_lists_are_priced_as_such(built: BuiltSchema) -> None:
    text = """{ registryPersons(first: 10000) { nodes { cases { recipient { cases { recipient {
        cases { caseId } } } } } } } }"""
    innermost = 1 + 100 * 1  # cases { caseId }
    second = 1 + 100 * (1 + innermost)  # cases { recipient { ... } }
    first = 1 + 100 * (1 + second)
    assert cost(built, text) == 1 + 1 + 10_000 * first == 10_202_010_002


def test_a_page_size_variable_is_priced_with_the_value_the_request_gives(built: BuiltSchema) -> None:
    text = "query($n: Int) { registryPersons(first: $n) { nodes { name cases { caseId } } } }"
    per_row = 1 + 1 + 100 * 1

    def priced(rows: int) -> int:
        return 1 + 1 + rows * per_row

    assert cost(built, text, {"n": 10}) == priced(10)
    assert cost(built, text, {"n": 0}) == priced(0)
    # Left out or null: the default page, as the reader reads it.
    assert cost(built, text, {}) == priced(100)
    assert cost(built, text, {"n": None}) == priced(100)
    # More than the largest page is priced at it (the reader refuses more before reading).
    assert cost(built, text, {"n": 10**12}) == priced(10_000)
    assert cost(built, text, {"n": -5}) == priced(0)
    # A value no Int coercion takes is priced at the default: the request is refused anyway.
    assert cost(built, text, {"n": "lots"}) == priced(100)
    with_default = "query($n: Int = 40) { registryPersons(first: $n) { nodes { name cases { caseId } } } }"
    assert cost(built, with_default, {}) == priced(40)
    assert cost(built, with_default, {"n": 3}) == priced(3)


def test_page_size_variables_multiply_each_other_along_the_nesting(built: BuiltSchema) -> None:
    text = """query($a: Int, $b: Int) {
        x: registryPersons(first: $a) { nodes { name } }
        y: registryPersons(first: $b) { nodes { cases { caseId } } }
    }"""
    demand = measured(built, text)
    assert demand.variable_pages() == {"a", "b"}
    assert built.limits.pages is not None
    assert demand.cost(built.limits.pages, {"a": 3, "b": 5}) == (1 + 1 + 3 * 1) + (1 + 1 + 5 * (1 + 100 * 1))


def test_introspection_lists_are_priced_by_the_longest_in_the_schema(built: BuiltSchema) -> None:
    types = len(built.schema._schema.type_map)
    assert cost(built, "{ __schema { types { name } } }") == 1 + 1 + types * 1
    # Nesting introspection lists multiplies like any list: this is what bounds it.
    deep = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    assert cost(built, deep) > 10 * cost(built, "{ __schema { types { fields { name } } } }")


def test_circular_fragments_end_the_walk(built: BuiltSchema) -> None:
    cycle = """
        { registryPersons { ...A } }
        fragment A on RegistryPersonConnection { totalCount ...B }
        fragment B on RegistryPersonConnection { a: totalCount ...A }
    """
    demand = measured(built, cycle)
    assert (demand.depth, demand.aliases) == (2, 1)
    itself = "{ registryPersons { ...A } } fragment A on RegistryPersonConnection { x: totalCount ...A }"
    assert measured(built, itself).aliases == 1


def test_a_chain_of_fragments_each_spreading_the_next_twice_is_walked_once_per_fragment(
    built: BuiltSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    levels = 20
    chain = " ".join(f"fragment F{i} on RegistryPersonConnection {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    text = (
        chain + f" fragment F{levels} on RegistryPersonConnection {{ a: totalCount }} {{ registryPersons {{ ...F0 }} }}"
    )
    walked = 0
    selections = demand_module._Walk.selections

    def counting(*args: Any) -> Any:
        nonlocal walked
        walked += 1
        return selections(*args)

    monkeypatch.setattr(demand_module._Walk, "selections", counting)
    demand = measured(built, text)
    # Counted where used: the leaf's alias and field two to the power of the chain's length...
    assert demand.aliases == 2**levels
    assert cost(built, text) == 1 + 2**levels
    # ...but each selection set walked once per measurement (two above), not 2**20 times.
    assert walked <= 2 * (levels + 4)


def test_each_condition_on_related_records_costs_the_key_set_bound(built: BuiltSchema) -> None:
    plain = cost(built, "{ registryPersons(first: 10) { totalCount } }")
    one = cost(built, "{ registryPersons(first: 10, filter: {cases: {some: {}}}) { totalCount } }")
    assert one - plain == 10_000  # HUB_MAX_SEMIJOIN_KEYS: the rows its statement may read
    nested = "{ registryPersons(first: 10, filter: {and: [{cases: {none: {recipient: {every: {}}}}}]}) { totalCount } }"
    assert cost(built, nested) - plain == 20_000
    # A filter given in a variable is bounded when it runs (its key sets count as values).
    assert (
        cost(built, "query($f: RegistryPersonFilter) { registryPersons(first: 10, filter: $f) { totalCount } }")
        == plain
    )


def test_a_relation_list_is_priced_at_its_first_or_else_the_relation_page(built: BuiltSchema) -> None:
    default = cost(built, "{ registryPersons(first: 10) { nodes { cases { caseId } } } }")
    five = cost(built, "{ registryPersons(first: 10) { nodes { cases(first: 5) { caseId } } } }")
    # 1 + 1 + 10 x (1 + rows x 1): the list, nodes, and per person the list of cases.
    assert (default, five) == (2 + 10 * (1 + 100), 2 + 10 * (1 + 5))
    variable = "query($n: Int) { registryPersons(first: 10) { nodes { cases(first: $n) { caseId } } } }"
    assert cost(built, variable, {"n": 7}) == 2 + 10 * (1 + 7)


def test_an_aggregate_costs_the_groups_it_may_read_and_its_page_of_groups(built: BuiltSchema) -> None:
    # It reads every group (up to the largest page) to decide suppression, then selects from a
    # page of them: the field, 10,000 groups read, `count`, and `groups` with 5 x (count, key, name).
    text = "{ registryPersonsAggregate(first: 5) { count groups { count key { name } } } }"
    assert cost(built, text) == 1 + 10_000 + 1 + (1 + 5 * 3)
    # The page of groups may be a variable, priced with the request's value.
    varied = "query($n: Int) { registryPersonsAggregate(first: $n) { groups { count } } }"
    assert cost(built, varied, {"n": 50}) == 1 + 10_000 + (1 + 50 * 1)


def test_a_condition_on_related_records_in_an_aggregate_filter_costs_the_key_set_bound(built: BuiltSchema) -> None:
    plain = cost(built, "{ registryPersonsAggregate { count } }")
    one = cost(built, "{ registryPersonsAggregate(filter: {cases: {none: {}}}) { count } }")
    assert one - plain == 10_000  # as a list's: the rows its statement may read


@pytest.fixture(scope="module")
def demo() -> BuiltSchema:
    return build_schema(demo_catalog(), load_settings({}))


REPORT_WORK = 250_000 * 4  # HUB_MAX_REPORT_ROWS times the values a per-key row carries


def test_a_report_costs_the_rows_it_may_join_besides_its_fields(demo: BuiltSchema) -> None:
    # The field, `totalCount`: a report of one line reads as much as one of every line.
    assert cost(demo, "{ budgetLineAccountability { totalCount } }") == REPORT_WORK + 2
    assert cost(demo, "{ accountabilityGaps(kind: SERVICE_WITHOUT_BASIS) { totalCount } }") == REPORT_WORK + 2
    # Its nodes are priced as a page's: 50 lines of `lineId` and `spent`.
    text = "{ budgetLineAccountability(first: 50) { nodes { lineId spent } } }"
    assert cost(demo, text) == REPORT_WORK + 1 + 1 + 50 * 2


def test_each_alias_of_a_report_costs_it_again(demo: BuiltSchema) -> None:
    one = cost(demo, "{ budgetLineAccountability { totalCount } }")
    ten = "{ " + " ".join(f"r{n}: budgetLineAccountability {{ totalCount }}" for n in range(10)) + " }"
    assert cost(demo, ten) == 10 * one


def test_a_report_spread_through_nested_fragments_costs_what_it_costs_inline(demo: BuiltSchema) -> None:
    inline = "{ a: budgetLineAccountability { totalCount } b: budgetLineAccountability { totalCount } }"
    nested = """
        { ...Outer }
        fragment Outer on Query { ...Inner ... on Query { b: budgetLineAccountability { totalCount } } }
        fragment Inner on Query { a: budgetLineAccountability { totalCount } }
    """
    assert cost(demo, nested) == cost(demo, inline) == 2 * (REPORT_WORK + 2)


def test_the_report_price_follows_the_row_bound_setting() -> None:
    built = build_schema(demo_catalog(), load_settings({"HUB_MAX_REPORT_ROWS": "1000"}))
    assert cost(built, "{ budgetLineAccountability { totalCount } }") == 1000 * 4 + 2


def test_a_trace_is_priced_by_its_max_nodes_whatever_it_selects(demo: BuiltSchema) -> None:
    # The field, `truncated`, and the records it reads: maxNodes of them, or 1,000 by default.
    assert cost(demo, '{ trace(from: "finance:BudgetLine:X", maxNodes: 10000) { truncated } }') == 2 + 10_000
    assert cost(demo, '{ trace(from: "finance:BudgetLine:X") { truncated } }') == 2 + 1_000
    # Its lists hold up to maxNodes rows each: 500 nodes of two fields.
    text = '{ trace(from: "finance:BudgetLine:X", maxNodes: 500) { nodes { id ref } } }'
    assert cost(demo, text) == 1 + 500 + 1 + 500 * 2
    varied = 'query($n: Int!) { trace(from: "finance:BudgetLine:X", maxNodes: $n) { truncated } }'
    assert cost(demo, varied, {"n": 7}) == 2 + 7
