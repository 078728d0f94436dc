"""Direct plans: compiled documents that run without graphql-core's execution.

A request for one record by key spends more time in the machinery around its resolver (the
executor built per request, variable and argument coercion through strawberry's wrappers,
field completion, extension hooks) than in reading and shaping the record. For documents made
only of such lookups, the plan is compiled once per document (the root fields, their key
arguments, the fields each needs and a shaper for its selection) and a request runs it: coerce
the variables, make the access plan, read the rows through the same reader as the resolver,
shape them with the same shaper as the fast path.

A document takes a direct plan only when the result cannot differ from the normal path's:
one query operation, every root field a by-key lookup whose selection is plain fields and
`__typename` (aliases and fragments allowed), no directive anywhere. A document whose root
fields are all aggregates takes an aggregate plan instead (schema/execution/direct_aggregates.py),
under the same conditions. Anything a plan would
have to report differently (variables that do not coerce, an unknown operation name, a value
the shaper refuses) makes it step aside, and the request runs on the normal path, which
reports it. tests/unit/schema/execution/test_direct_plans.py compares the two byte for byte.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    located_error,
    value_from_ast,
)
from graphql.execution.collect_fields import FragmentDetails, collect_fields, collect_subfields
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.language import Visitor, visit
from graphql.pyutils import Undefined

from hub.catalog import Catalog, EntityInfo
from schema.access import begin, selection_for
from schema.aggregates import aggregate_field_name
from schema.compiled import Compiled
from schema.context import RequestContext
from schema.execution.direct_aggregates import AggregatePlan, compile_aggregates, run_aggregates
from schema.execution.shaper import Shaper, prepare
from schema.loading import lookup, needs
from schema.selection import child_fields

# Collection without directives does not read variables; graphql-core wants the holder anyway.
NO_VARIABLES = VariableValues({}, {})


@dataclass(frozen=True)
class Lookup:
    """One root field of a direct plan: a by-key read of `entity`, answered under `key`."""

    key: str
    nodes: tuple[FieldNode, ...]
    field: GraphQLField
    entity: EntityInfo
    # The entity fields selected, and the join values relations need (none: relations make
    # no direct plan), as the by-key resolver works them out.
    names: tuple[str, ...]
    joins: tuple[str, ...]
    shaper: Shaper
    # The key argument: the variable it names, or else its literal value.
    variable: str | None
    literal: Any


@dataclass(frozen=True)
class DirectPlan:
    operation: OperationDefinitionNode
    lookups: tuple[Lookup, ...]
    document: DocumentNode
    # Variable name -> ID or String, where every variable is one of those, non-null and without
    # a default: such values are checked here, the rest by graphql-core.
    simple: Mapping[str, str] | None

    def keys(self, inputs: Mapping[str, Any]) -> list[Any] | None:
        """Each lookup's key from `inputs` where every variable is simple and its value one
        graphql-core would take unchanged (or, for ID, turn into its string); else None."""
        simple = self.simple
        if simple is None:
            return None
        values: dict[str, Any] = {}
        for name, scalar in simple.items():
            value = inputs.get(name)
            if type(value) is str:
                values[name] = value
            elif scalar == "ID" and type(value) is int:
                values[name] = str(value)
            else:
                return None
        return [item.literal if item.variable is None else values[item.variable] for item in self.lookups]


# What a direct run produced: the data, in selection order, and the resolvers' errors.
Outcome = tuple[dict[str, Any], list[GraphQLError]]


class DirectPlans:
    """The direct plan of each compiled document (or None where it takes the normal path),
    made on first use and kept as long as the compiled document is."""

    def __init__(
        self,
        schema: GraphQLSchema,
        catalog: Catalog,
        root_fields: Mapping[str, str],
        default_resolver: Callable[..., Any],
    ) -> None:
        self.schema = schema
        self.catalog = catalog
        self.root_fields = root_fields
        self.default_resolver = default_resolver
        # The root aggregate fields, by name: a document made only of them takes an aggregate plan.
        self.aggregates = {aggregate_field_name(entity): entity for entity in catalog}
        self._plans: WeakKeyDictionary[Compiled, DirectPlan | AggregatePlan | None] = WeakKeyDictionary()

    def plan(self, compiled: Compiled) -> DirectPlan | AggregatePlan | None:
        try:
            return self._plans[compiled]
        except KeyError:
            pass
        found = self._plans[compiled] = self._compile(compiled) if compiled.runnable else None
        return found

    async def run(
        self, plan: DirectPlan | AggregatePlan, context: RequestContext, raw_variables: Mapping[str, Any] | None
    ) -> Outcome | None:
        """Run `plan` for one request; None where the normal path must answer instead (the
        request then starts again there, with a fresh context)."""
        if isinstance(plan, AggregatePlan):
            return await run_aggregates(self.schema, plan, context, raw_variables)
        inputs = raw_variables or {}
        keys = plan.keys(inputs)
        if keys is None:
            variables = get_variable_values(self.schema, plan.operation.variable_definitions or (), dict(inputs))
            if isinstance(variables, list):
                return None
            keys = []
            for item in plan.lookups:
                try:
                    keys.append(get_argument_values(item.field, item.nodes[0], variables)["key"])
                except GraphQLError:
                    return None
        begin(context, selection_for(context, self.schema, plan.document))
        reads = [self._read(context, item, key) for item, key in zip(plan.lookups, keys, strict=True)]
        # One lookup (the usual case) is awaited in place: a task of its own costs a noticeable
        # part of a by-key request.
        rows = [await reads[0]] if len(reads) == 1 else await asyncio.gather(*reads)
        data: dict[str, Any] = {}
        errors: list[GraphQLError] = []
        for item, row in zip(plan.lookups, rows, strict=True):
            if isinstance(row, GraphQLError):
                data[item.key] = None
                errors.append(row)
            elif row is None:
                data[item.key] = None
            else:
                shaped = item.shaper.one(None, row, None, None)  # type: ignore[arg-type]
                if not isinstance(shaped, dict):
                    return None
                data[item.key] = shaped
        return data, errors

    @staticmethod
    async def _read(context: RequestContext, item: Lookup, key: Any) -> dict[Any, Any] | GraphQLError | None:
        # As graphql-core treats a resolver's exception: the field is null (all root lookups
        # are nullable) and the error is located at it.
        try:
            return await lookup(context, item.entity, key, item.names, item.joins, (item.key,))
        except Exception as error:
            return located_error(error, list(item.nodes), [item.key])

    def _compile(self, compiled: Compiled) -> DirectPlan | AggregatePlan | None:
        document = compiled.document
        assert document is not None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
        if len(operations) != 1 or operations[0].operation is not OperationType.QUERY or _has_directives(document):
            return None
        if any(f.variable_definitions for f in fragments):
            return None
        operation = operations[0]
        details = {f.name.value: FragmentDetails(f) for f in fragments}
        definitions = {f.name.value: f for f in fragments}
        query = self.schema.query_type
        assert query is not None
        grouped = collect_fields(self.schema, details, NO_VARIABLES, query, operation).grouped_field_set
        if grouped and all(fields[0].node.name.value in self.aggregates for fields in grouped.values()):
            return compile_aggregates(
                self.schema,
                document,
                operation,
                fragments,
                grouped,
                self.aggregates,
                self.default_resolver,
                NO_VARIABLES,
            )
        lookups: list[Lookup] = []
        for key, field_details in grouped.items():
            nodes = tuple(d.node for d in field_details)
            name = nodes[0].name.value
            entity_id = self.root_fields.get(name)
            if entity_id is None:
                return None
            entity = self.catalog.entity(entity_id)
            field = query.fields[name]
            if name != entity.key_field or not isinstance(field.type, GraphQLObjectType):
                return None
            sub = collect_subfields(self.schema, details, NO_VARIABLES, operation, field.type, field_details)
            shaper = prepare(self.schema, field.type, sub.grouped_field_set, self.default_resolver)
            if shaper is None or shaper.related:
                return None
            names, joins = needs(entity, child_fields(nodes, definitions, None))
            argument = next((a.value for a in nodes[0].arguments or () if a.name.value == "key"), None)
            if isinstance(argument, VariableNode):
                variable, literal = argument.name.value, None
            else:
                literal = None if argument is None else value_from_ast(argument, field.args["key"].type)
                if literal is Undefined:
                    return None
                variable = None
            lookups.append(Lookup(key, nodes, field, entity, tuple(names), tuple(joins), shaper, variable, literal))
        if not lookups:
            return None
        return DirectPlan(operation, tuple(lookups), document, _simple(operation))


def _simple(operation: OperationDefinitionNode) -> dict[str, str] | None:
    simple: dict[str, str] = {}
    for definition in operation.variable_definitions or ():
        kind = definition.type
        named = kind.type if isinstance(kind, NonNullTypeNode) else None
        if definition.default_value is not None or not isinstance(named, NamedTypeNode):
            return None
        if named.name.value not in ("ID", "String"):
            return None
        simple[definition.variable.name.value] = named.name.value
    return simple


def _has_directives(document: Any) -> bool:
    found = False

    class Find(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> Any:
            nonlocal found
            found = True
            return Visitor.BREAK

    visit(document, Find())
    return found
