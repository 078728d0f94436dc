"""What an operation demands before it runs: its depth, aliases, directives and cost.

Measured once per compiled document and operation (schema/compiled.py keeps the result), then
compared with the caller's limits on every request (schema/limits.py). The walk follows
fragments where they are spread, so aliases, directives and cost hidden in a fragment count as
often as it is used; each fragment is measured once per context and reused, so a chain of
fragments that each spread the next twice costs its length to measure, not two to its power.
The walk does not trust the document: it runs before validation (so that a document no caller
may run is refused before validation spends seconds on it), skips what the schema does not
know, and stops at a fragment that spreads itself (validation refuses the cycle).

Cost: each field costs 1; a list field multiplies the cost of what is selected under it by the
rows it may hold: the page a list asks for with `first` (the default page when it gives none,
at most the largest page), a relation's list by its `first` or else the bound the reader cuts
it at, an introspection list by the longest such list in this schema. An aggregate costs the
groups it may read besides (the largest page: it reads every group to decide suppression), and
its `groups` list the page it asks for. A report field (`budgetLineAccountability`,
`accountabilityGaps`) costs besides the per-key rows it may join (its bound) times the values
each carries. A trace is sized
by its `maxNodes`: its lists take that many rows, and the records it reads count once more
even when none of them is selected. Factors multiply along nesting, so
10,000 rows with three nested relations are priced at 10,000 x 100 x 100 x 100 x their fields.
A page size given as a variable stays a variable: the cost is kept as a sum of terms, each a
number times the page-size variables it depends on, and is finished per request with the
request's values (a few multiplications). A condition on related records in a filter's literal
(`some`, `none`, `every`) adds the key-set bound: its statement may read that many rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    value_from_ast_untyped,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef, TypeNameMetaFieldDef

# The introspection fields under which nothing counts toward depth (as GraphQL Armor does):
# the standard introspection query is 13 levels deep, and tools must be able to send it.
INTROSPECTION_ROOTS = ("__schema", "__type")

# The suffix of the input types of conditions on related records (schema/entities.py).
RELATION_FILTER = "RelationFilter"

# A page-size variable, and the page a request gets when it gives the variable no value.
Variable = tuple[str, int]
# The variables whose values multiply one term of a cost, in a fixed order.
Term = tuple[Variable, ...]
# A multiplier: a known number of rows, or a page-size variable.
Factor = int | Variable


@dataclass(frozen=True)
class Pages:
    """The row counts lists are priced at, from settings and the schema."""

    default_page: int
    max_page: int
    relation_page: int
    # Type names of entity rows: a list field on one of them is a relation's list.
    entity_types: frozenset[str]
    # (introspection type, list field) -> the longest such list in this schema.
    introspection: Mapping[tuple[str, str], int] = field(default_factory=dict)
    # The related rows one condition on related records (`some`, `none`, `every`) may read.
    semijoin_keys: int = 10_000
    # Root aggregate fields: each also costs the groups it may read (every group, up to
    # `max_page`, is held to decide suppression before its page is cut).
    aggregates: frozenset[str] = frozenset()
    # Root report fields (the accountability reports) -> what each costs besides its fields:
    # the per-key rows it may join in the hub (its bound, hub/accountability/bound.py) times
    # the values each carries.
    reports: Mapping[str, int] = field(default_factory=dict)

    def page(self, value: Any, fallback: int) -> int:
        """The rows a `first` of `value` asks for: `fallback` when none is given, at most
        `max_page` (the reader refuses more before reading)."""
        if isinstance(value, bool) or value is None:
            return fallback
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            return fallback  # not an Int: coercion refuses the request before anything runs
        return min(max(value, 0), self.max_page)


@dataclass(frozen=True)
class Demand:
    """What one operation demands. `price` is its cost as terms: a number times the page-size
    variables it depends on (the empty term holds the part that depends on none)."""

    operation: str | None
    depth: int
    aliases: int
    directives: int
    price: tuple[tuple[Term, int], ...]
    # The operation's own defaults of its variables, as values.
    defaults: Mapping[str, Any]

    def cost(self, pages: Pages, variables: Mapping[str, Any] | None) -> int:
        """The cost with the request's variables: a variable the request leaves out takes its
        default in the operation, then the page of the list it sizes."""
        given = variables or {}
        total = 0
        for term, number in self.price:
            for name, fallback in term:
                value = given[name] if name in given else self.defaults.get(name)
                number *= pages.page(value, fallback)
            total += number
        return total

    def variable_pages(self) -> frozenset[str]:
        """The variables that size a page."""
        return frozenset(name for term, _ in self.price for name, _ in term)


def introspection_bounds(schema: GraphQLSchema) -> dict[tuple[str, str], int]:
    """The longest list each introspection list field can answer in `schema`: a fixed bound,
    so that an introspection query is priced by what this schema holds."""
    types = list(schema.type_map.values())
    with_fields = [t for t in types if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)]
    fields = [f for t in with_fields for f in t.fields.values()]
    inputs = [t for t in types if isinstance(t, GraphQLInputObjectType)]
    enums = [len(getattr(t, "values", {})) for t in types]
    args = [len(f.args) for f in fields] + [len(d.args) for d in schema.directives]
    possible = [len(schema.get_possible_types(t)) for t in types if isinstance(t, GraphQLInterfaceType)]
    return {
        ("__Schema", "types"): len(types),
        ("__Schema", "directives"): len(schema.directives),
        ("__Type", "fields"): max((len(t.fields) for t in with_fields), default=0),
        ("__Type", "inputFields"): max((len(t.fields) for t in inputs), default=0),
        ("__Type", "enumValues"): max(enums, default=0),
        ("__Type", "interfaces"): max((len(t.interfaces) for t in with_fields), default=0),
        ("__Type", "possibleTypes"): max(possible, default=0),
        ("__Field", "args"): max(args, default=0),
        ("__Directive", "args"): max(args, default=0),
    }


def measure(schema: GraphQLSchema, pages: Pages, document: DocumentNode) -> tuple[Demand, ...]:
    """The demand of every operation in `document`."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    walk = _Walk(schema, pages, fragments)
    out = []
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        root = schema.get_root_type(definition.operation)
        part = walk.selections(definition.selection_set, root, False, None)
        variables = definition.variable_definitions or ()
        directives = (
            part.directives + len(definition.directives or ()) + sum(len(v.directives or ()) for v in variables)
        )
        defaults = {
            v.variable.name.value: value_from_ast_untyped(v.default_value)
            for v in variables
            if v.default_value is not None
        }
        out.append(
            Demand(
                definition.name.value if definition.name else None,
                part.depth,
                part.aliases,
                directives,
                tuple(sorted(part.price.items())),
                defaults,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class _Part:
    depth: int
    aliases: int
    directives: int
    price: dict[Term, int]


_NOTHING = _Part(0, 0, 0, {})


class _Walk:
    def __init__(self, schema: GraphQLSchema, pages: Pages, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.schema = schema
        self.pages = pages
        self.fragments = fragments
        # A fragment's measure depends on where it is spread only through these two: inside
        # introspection or not, and the page its connection's `nodes` would take.
        self.memo: dict[tuple[str, bool, Factor | None], _Part] = {}
        self.visiting: set[str] = set()

    def selections(
        self,
        selection_set: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        introspection: bool,
        pending: Factor | None,
    ) -> _Part:
        """`pending`: the page of a connection field, taken by the list selected under it."""
        if selection_set is None:
            return _NOTHING
        depth = aliases = directives = 0
        price: dict[Term, int] = {}
        for selection in selection_set.selections:
            directives += len(selection.directives or ())
            if isinstance(selection, FieldNode):
                part = self.field(selection, parent, introspection, pending)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = parent if condition is None else self.schema.get_type(condition.name.value)
                part = self.selections(selection.selection_set, inner, introspection, pending)
            elif isinstance(selection, FragmentSpreadNode):
                part = self.spread(selection.name.value, introspection, pending)
            else:
                continue
            depth = max(depth, part.depth)
            aliases += part.aliases
            directives += part.directives
            _add(price, part.price)
        return _Part(depth, aliases, directives, price)

    def spread(self, name: str, introspection: bool, pending: Factor | None) -> _Part:
        fragment = self.fragments.get(name)
        if fragment is None or name in self.visiting:
            return _NOTHING  # unknown fragments and cycles: validation refuses both
        key = (name, introspection, pending)
        found = self.memo.get(key)
        if found is None:
            self.visiting.add(name)
            try:
                inner = self.schema.get_type(fragment.type_condition.name.value)
                part = self.selections(fragment.selection_set, inner, introspection, pending)
            finally:
                self.visiting.discard(name)
            own = len(fragment.directives or ())
            found = _Part(part.depth, part.aliases, part.directives + own, part.price)
            self.memo[key] = found
        return found

    def field(
        self, node: FieldNode, parent: GraphQLNamedType | None, introspection: bool, pending: Factor | None
    ) -> _Part:
        name = node.name.value
        definition = self._definition(parent, name)
        inside = introspection or name in INTROSPECTION_ROOTS
        nullable = get_nullable_type(definition.type) if definition is not None else None
        is_list = isinstance(nullable, GraphQLList)
        arguments = definition.args if definition is not None else {}
        # The argument that sizes the field's rows: a page's `first`, or a walk's `maxNodes`
        # (a trace reads up to that many records, whatever it selects of them).
        sized_by = "first" if "first" in arguments else "maxNodes" if "maxNodes" in arguments else None
        first = arguments[sized_by] if sized_by is not None else None
        factor: Factor = 1
        below: Factor | None = None
        work: Factor = 0
        if first is not None and sized_by is not None:
            # A relation's list (a list field of an entity row) keeps the relation page
            # per parent unless it asks for another.
            relation = is_list and parent is not None and parent.name in self.pages.entity_types
            page = self._first(node, sized_by, first, self.pages.relation_page if relation else self.pages.default_page)
            if sized_by == "maxNodes":
                work = page
            if is_list:
                factor = page
            else:
                below = page  # a connection: its list of rows takes the page
        elif is_list:
            factor = self._list_rows(parent, name, pending)
        inner = get_named_type(definition.type) if definition is not None else None
        part = self.selections(node.selection_set, inner, inside, below)
        # A condition on related records is one more statement, reading up to the key-set bound.
        conditions = _relation_conditions(node, definition) if definition is not None else 0
        price: dict[Term, int] = {(): 1 + conditions * self.pages.semijoin_keys}
        if parent is not None and parent is self.schema.query_type:
            if name in self.pages.aggregates:
                price[()] += self.pages.max_page
            price[()] += self.pages.reports.get(name, 0)
        if work:
            _add(price, _times({(): 1}, work))
        _add(price, _times(part.price, factor))
        return _Part(
            part.depth + (0 if inside else 1),
            part.aliases + (node.alias is not None),
            part.directives,
            price,
        )

    def _definition(self, parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
        if name == "__typename":
            return TypeNameMetaFieldDef
        if parent is not None and parent is self.schema.query_type:
            if name == "__schema":
                return SchemaMetaFieldDef
            if name == "__type":
                return TypeMetaFieldDef
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            found: GraphQLField | None = parent.fields.get(name)
            return found
        return None

    def _first(self, node: FieldNode, name: str, argument: GraphQLArgument, page: int) -> Factor:
        # Without `first`, the argument's own default; the hub's lists default to null, which
        # the reader reads as its default `page`.
        default = argument.default_value if isinstance(argument.default_value, int) else None
        fallback = self.pages.page(default, page)
        given = next((a.value for a in node.arguments or () if a.name.value == name), None)
        if isinstance(given, VariableNode):
            return (given.name.value, fallback)
        if isinstance(given, IntValueNode):
            return self.pages.page(int(given.value), fallback)
        return fallback  # absent or null; any other literal fails validation

    def _list_rows(self, parent: GraphQLNamedType | None, name: str, pending: Factor | None) -> Factor:
        if pending is not None:
            return pending
        if parent is not None and parent.name in self.pages.entity_types:
            return self.pages.relation_page
        if parent is not None:
            bound = self.pages.introspection.get((parent.name, name))
            if bound is not None:
                return bound
        # Other lists (the admin API's, over the policy in memory) as a default page.
        return self.pages.default_page


def _relation_conditions(node: FieldNode, definition: GraphQLField) -> int:
    """The conditions on related records written in the field's `filter` literal (one given in
    a variable is bounded when it runs: its key sets count against the value budget)."""
    argument = definition.args.get("filter")
    given = next((a.value for a in node.arguments or () if a.name.value == "filter"), None)
    if argument is None or not isinstance(given, ObjectValueNode | ListValueNode):
        return 0
    return _conditions_in(given, get_named_type(argument.type))


def _conditions_in(value: ValueNode, input_type: GraphQLNamedType) -> int:
    if isinstance(value, ListValueNode):
        return sum(_conditions_in(item, input_type) for item in value.values)
    if not isinstance(value, ObjectValueNode) or not isinstance(input_type, GraphQLInputObjectType):
        return 0
    relation = input_type.name.endswith(RELATION_FILTER)
    count = 0
    for item in value.fields:
        inner = input_type.fields.get(item.name.value)
        if inner is None:
            continue
        if relation and isinstance(item.value, ObjectValueNode):
            count += 1
        count += _conditions_in(item.value, get_named_type(inner.type))
    return count


def _add(into: dict[Term, int], price: Mapping[Term, int]) -> None:
    for term, number in price.items():
        into[term] = into.get(term, 0) + number


def _times(price: Mapping[Term, int], factor: Factor) -> dict[Term, int]:
    if isinstance(factor, int):
        return {term: number * factor for term, number in price.items()} if factor else {}
    return {tuple(sorted((*term, factor))): number for term, number in price.items()}
