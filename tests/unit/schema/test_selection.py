"""Reading a field's selection: fragments are followed once per read, however often they are
spread, as graphql-core collects fields."""

from __future__ import annotations

from graphql import FieldNode, FragmentDefinitionNode, OperationDefinitionNode, parse

from schema.selection import child_fields


def test_a_chain_of_fragments_spreading_the_next_twice_gives_each_field_once() -> None:
    levels = 20
    chain = " ".join(f"fragment F{i} on T {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    document = parse(chain + f" fragment F{levels} on T {{ nodes {{ name }} total }} {{ list {{ ...F0 }} }}")
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    root = operation.selection_set.selections[0]
    assert isinstance(root, FieldNode)
    # Two to the power of twenty paths lead to `nodes`: one field node, listed once.
    found = child_fields([root], fragments, None)
    assert {name: len(nodes) for name, nodes in found.items()} == {"nodes": 1, "total": 1}


def test_a_fragment_skipped_where_first_spread_is_still_read_where_it_is_included() -> None:
    document = parse("query($no: Boolean!) { list { ...F @include(if: $no) ...F } } fragment F on T { name }")
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    root = operation.selection_set.selections[0]
    assert isinstance(root, FieldNode)
    assert list(child_fields([root], fragments, {"no": False})) == ["name"]
