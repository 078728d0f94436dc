"""Direct plans for root aggregate fields: documents made only of aggregates, run without
graphql-core's execution.

An aggregate's own work is one statement and a pass over its groups; around it, graphql-core
builds an executor, strawberry converts the arguments into input objects and wraps the
resolver, and the result (its measures, groups, keys, page info) is completed value by value.
For a document made only of root aggregate fields, the plan is compiled once per document:
each field's selection (what `answer` reads from it: the measures asked, whether groups and
the total are wanted) and a shaper for its result type. A request coerces the variables and
arguments with graphql-core's own functions, runs the same `answer` as the resolver (every
access check, the statement, suppression, the access record, `extensions.access`), and
shapes the value with the same shapers as the fast path.

What takes a plan: one query operation, every root field an aggregate field, no directive
anywhere (schema/execution/direct.py checks these for both kinds of plan). Anything a plan
would report differently (variables or arguments that do not coerce, a value the shaper
refuses) makes it step aside, and the request runs on the normal path with a fresh context.
tests/unit/schema/execution/test_direct_aggregates.py compares the two answers.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    located_error,
)
from graphql.execution.collect_fields import FieldDetailsList, FragmentDetails, GroupedFieldSet, collect_subfields
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.language import Visitor, visit

from hub.catalog import EntityInfo
from schema.access import begin, selection_for
from schema.aggregates import Arguments, answer
from schema.context import RequestContext
from schema.execution.shaper import Shaper, prepare
from schema.inputs import input_spec
from schema.selection import child_fields


@dataclass(frozen=True)
class AggregateRoot:
    """One root aggregate field of a plan, answered under `key`."""

    key: str
    nodes: tuple[FieldNode, ...]
    field: GraphQLField
    entity: EntityInfo
    # What `answer` reads of the selection: its top fields and its groups' fields.
    top: dict[str, Any]
    groups: dict[str, Any]
    shaper: Shaper
    # The arguments as graphql-core coerces them, where they name no variable (the usual case
    # for an app's fixed query): coerced once per document, not per request.
    fixed: dict[str, Any] | None


@dataclass(frozen=True)
class AggregatePlan:
    operation: OperationDefinitionNode
    roots: tuple[AggregateRoot, ...]
    fragments: Mapping[str, FragmentDefinitionNode]
    document: DocumentNode


def compile_aggregates(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    fragments: Sequence[FragmentDefinitionNode],
    grouped: GroupedFieldSet,
    aggregates: Mapping[str, EntityInfo],
    default_resolver: Callable[..., Any],
    no_variables: Any,
) -> AggregatePlan | None:
    """The plan of a query whose root fields (`grouped`) are all aggregate fields, or None."""
    query = schema.query_type
    assert query is not None
    details = {f.name.value: FragmentDetails(f) for f in fragments}
    definitions = {f.name.value: f for f in fragments}

    def subfields(parent: GraphQLObjectType, field_details: FieldDetailsList) -> GroupedFieldSet | None:
        found = collect_subfields(schema, details, no_variables, operation, parent, field_details)
        return None if found.new_defer_usages else found.grouped_field_set

    roots: list[AggregateRoot] = []
    for key, field_details in grouped.items():
        nodes = tuple(d.node for d in field_details)
        entity = aggregates.get(nodes[0].name.value)
        if entity is None:
            return None
        field = query.fields[nodes[0].name.value]
        # The root field is nullable: an error nulls it alone, as a resolver's does.
        if not isinstance(field.type, GraphQLObjectType):
            return None
        inner = subfields(field.type, field_details)
        shaper = None if inner is None else prepare(schema, field.type, inner, default_resolver, subfields)
        if shaper is None or shaper.related:
            return None
        top = child_fields(nodes, definitions, None)
        groups = child_fields(top.get("groups", []), definitions, None)
        roots.append(
            AggregateRoot(key, nodes, field, entity, top, groups, shaper, _fixed(field, nodes[0], no_variables))
        )
    if not roots:
        return None
    return AggregatePlan(operation, tuple(roots), definitions, document)


async def run_aggregates(
    schema: GraphQLSchema, plan: AggregatePlan, context: RequestContext, raw_variables: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[GraphQLError]] | None:
    """Run `plan` for one request; None where the normal path must answer instead."""
    no_variables = VariableValues({}, {})
    definitions = plan.operation.variable_definitions
    variables = get_variable_values(schema, definitions, dict(raw_variables or {})) if definitions else no_variables
    if isinstance(variables, list):
        return None
    arguments: list[Arguments] = []
    for root in plan.roots:
        try:
            given = root.fixed if root.fixed is not None else get_argument_values(root.field, root.nodes[0], variables)
        except GraphQLError:
            return None
        arguments.append(_arguments(given))
    begin(context, selection_for(context, schema, plan.document))
    reads = [_read(context, plan, root, given) for root, given in zip(plan.roots, arguments, strict=True)]
    values = [await reads[0]] if len(reads) == 1 else await asyncio.gather(*reads)
    data: dict[str, Any] = {}
    errors: list[GraphQLError] = []
    for root, value in zip(plan.roots, values, strict=True):
        if isinstance(value, GraphQLError):
            data[root.key] = None
            errors.append(value)
            continue
        shaped = root.shaper.one(None, value, None, None)  # type: ignore[arg-type]
        if not isinstance(shaped, dict):
            return None
        data[root.key] = shaped
    return data, errors


def _fixed(field: GraphQLField, node: FieldNode, no_variables: Any) -> dict[str, Any] | None:
    """The field's arguments coerced once, where none names a variable; else None (coerced per
    request, as is an argument graphql-core refuses, so that the normal path reports it)."""

    class Find(Visitor):
        found = False

        def enter_variable(self, *_: Any) -> Any:
            self.found = True
            return Visitor.BREAK

    finder = Find()
    for argument in node.arguments or ():
        visit(argument, finder)
    if finder.found:
        return None
    try:
        return get_argument_values(field, node, no_variables)
    except GraphQLError:
        return None


def _arguments(given: dict[str, Any]) -> Arguments:
    """graphql-core's coerced arguments (enums as strawberry's enum members, inputs as dicts)
    as `answer` takes them."""
    bucket = given.get("bucket")
    steps = given.get("orderBy") or ()
    return Arguments(
        input_spec(given.get("filter")),
        [member.value for member in given.get("groupBy") or ()],
        None if bucket is None else (bucket["field"].value, bucket["period"].value),
        [(step["by"].value, _value(step.get("field")), bool(step.get("descending"))) for step in steps],
        given.get("first"),
        given.get("after"),
    )


def _value(member: enum.Enum | None) -> Any:
    return None if member is None else member.value


async def _read(
    context: RequestContext, plan: AggregatePlan, root: AggregateRoot, given: Arguments
) -> dict[str, Any] | GraphQLError:
    # As graphql-core treats a resolver's exception: the field is null (aggregate fields are
    # nullable) and the error is located at it.
    try:
        return await answer(context, root.entity, given, root.top, root.groups, plan.fragments, None)
    except Exception as error:
        return located_error(error, list(root.nodes), [root.key])
