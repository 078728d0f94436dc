"""Reading a request's selections: what one field asks for, and what the whole document can
reach (for the access plan). Fragments and inline fragments are followed; `@skip` and
`@include` are honoured where a resolver reads its own selection."""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    visit,
)
from graphql.execution.values import VariableValues, get_directive_values


def _included(node: Any, variables: VariableValues | None) -> bool:
    skip = get_directive_values(GraphQLSkipDirective, node, variables)
    if skip is not None and skip.get("if") is True:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, variables)
    return not (include is not None and include.get("if") is False)


def child_fields(
    nodes: Iterable[FieldNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: VariableValues | Mapping[str, Any] | None,
) -> dict[str, list[FieldNode]]:
    """The fields selected under `nodes`, by field name (aliases merged). `variables`: as
    graphql-core holds them, or the coerced dict strawberry's Info gives resolvers."""
    if variables is not None and not isinstance(variables, VariableValues):
        variables = VariableValues({}, dict(variables))
    out: dict[str, list[FieldNode]] = defaultdict(list)
    for node in nodes:
        if node.selection_set is not None:
            for field in _walk(node.selection_set, fragments, variables, set()):
                out[field.name.value].append(field)
    return out


def _walk(
    selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: VariableValues | None,
    seen: set[str],
) -> Iterator[FieldNode]:
    for selection in selection_set.selections:
        if not _included(selection, variables):
            continue
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _walk(selection.selection_set, fragments, variables, seen)
        elif isinstance(selection, FragmentSpreadNode):
            # Each fragment is walked once per call, as graphql-core collects fields: spread
            # again, it selects the same fields, and a chain of fragments each spreading the
            # next twice would otherwise be walked two to the power of its length times.
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                seen.add(name)
                yield from _walk(fragment.selection_set, fragments, variables, seen)


def reachable_fields(schema: GraphQLSchema, document: DocumentNode) -> dict[str, set[str]]:
    """Every (object type, field) any part of the document names, fragments included.

    Deliberately generous (it ignores `@skip`, unused fragments count): the plan may decide
    more than a request uses, never less."""
    type_info = TypeInfo(schema)
    found: dict[str, set[str]] = defaultdict(set)

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            parent: GraphQLNamedType | None = type_info.get_parent_type()
            if isinstance(parent, GraphQLObjectType):
                found[parent.name].add(node.name.value)

    visit(document, TypeInfoVisitor(type_info, Collect()))
    return found
