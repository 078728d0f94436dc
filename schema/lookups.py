"""The identifier values a request supplies about fields its caller does not read plain, for the
lookup quota (hub/quota), worked out before any SQL runs.

Such a value is a guess: a by-key read or an `eq` filter on a masked ID number answers whether
a person with that number exists (also through `totalCount`, which a filter drives alone). So
every value given to a by-key argument or to any filter operator on a field the access plan
does not release plain but lets the caller search (masked, withheld or lookup-only, with
`lookup`) is counted, whether written in the document or passed in variables, at any depth of
`and`/`or`/`not` (which the reader refuses on such fields today: counted all the same, so a
later rule cannot open an uncounted path), under any alias and on every field that takes a
filter. Values on fields the caller reads plain are not: it sees those values anyway. Nor are
values on fields it can neither read plain nor search: the reader refuses those before any SQL.
Joins the hub makes from rows it read (relation fields) take no value from the caller, so they
count nothing.

Where a value sits is worked out once per compiled document and operation (the sites); a
request only coerces its variables, as graphql-core will, and reads the values at the sites.
The walk is generous, as the access plan's: a field under `@skip` counts all the same.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    value_from_ast,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.pyutils import Undefined

from hub.access.plan import Decision, Verdict
from hub.catalog import Catalog, EntityInfo
from hub.catalog.model import FieldInfo
from hub.crypto.blind_index import normaliser
from schema.compiled import Compiled
from schema.inputs import input_spec

# Filter operators whose values are not guesses at a value (they test presence).
NOT_VALUES = frozenset({"isNull"})

# A supplied value as it is counted: (scope, value), see `_scoped`.
Supplied = tuple[str, str]
# How a field's values are counted: their scope, and the normaliser of its blind-index domain
# (None: the value as given).
Scope = tuple[str, Callable[[str], str] | None]


@dataclass(frozen=True)
class Site:
    """A field of the document that takes values about `entity`: its key (`by_key`) or a
    filter of its rows."""

    entity: EntityInfo
    by_key: bool
    node: FieldNode
    field: GraphQLField
    # A by-key argument read without coercion: the variable it names when that variable is
    # `ID!` or `String!` without a default, or else its literal (Undefined: coerce instead).
    variable: str | None
    literal: Any
    # How the key's values are counted (by-key sites; a filter's fields have their own).
    scope: Scope | None = None


@dataclass(frozen=True)
class Sites:
    operation: OperationDefinitionNode
    sites: tuple[Site, ...]
    # Variables declared `ID!` or `String!` without a default: a string given for one is its
    # coerced value.
    simple: frozenset[str]
    # Where every site is a by-key read of such a variable (W6's kind of request): per site,
    # (variable, scope, normaliser), so that a request's values are read without coercion or
    # a walk over the sites. None otherwise.
    direct: tuple[tuple[str, str, Callable[[str], str] | None], ...] | None = None


class Lookups:
    """The supplied identifier values of requests, by compiled document."""

    def __init__(
        self, schema: GraphQLSchema, catalog: Catalog, root_fields: Mapping[str, str], entity_types: Mapping[str, str]
    ) -> None:
        self.schema = schema
        self.catalog = catalog
        self.root_fields = root_fields
        self.entity_types = entity_types
        self._sites: WeakKeyDictionary[Compiled, dict[str | None, Sites | None]] = WeakKeyDictionary()

    def supplied(
        self,
        compiled: Compiled,
        operation_name: str | None,
        inputs: Mapping[str, Any] | None,
        plan: FieldVerdicts | None,
    ) -> list[Supplied]:
        """(scope, value) of every value the request supplies on a field `plan` does not release
        plain (without a plan: on every field, a superset); empty where the request will not run
        (graphql-core then refuses it unread)."""
        found = self.sites(compiled, operation_name)
        if found is None or not found.sites:
            return []
        return self._supplied(found, inputs, plan)

    def settled(
        self,
        compiled: Compiled,
        operation_name: str | None,
        inputs: Mapping[str, Any] | None,
        known: Container[Supplied],
    ) -> bool:
        """Whether every value the request gives at a lookup site, whatever the policy decides
        on it (a superset of the values that count), is in `known`: True where it gives none.
        Checked on every request the quota covers, so the usual kind (by-key reads through
        `ID!` variables) is read straight from the variables."""
        found = self.sites(compiled, operation_name)
        if found is None or not found.sites:
            return True
        direct = found.direct
        if direct is None:
            return all(s in known for s in self._supplied(found, inputs, None))
        raw = inputs or {}
        for variable, scope, normalise in direct:
            given = raw.get(variable)
            # Anything but a string is coerced first: left to the full reading.
            if type(given) is not str or (scope, given if normalise is None else normalise(given)) not in known:
                return False
        return True

    def _supplied(self, found: Sites, inputs: Mapping[str, Any] | None, plan: FieldVerdicts | None) -> list[Supplied]:
        raw = inputs or {}
        coerced: VariableValues | None = None
        out: list[tuple[str, str]] = []
        for site in found.sites:
            entity = site.entity
            if site.by_key:
                if not _counts(plan, entity, entity.key):
                    continue
                value = site.literal
                if site.variable is not None:
                    given = raw.get(site.variable)
                    value = given if site.variable in found.simple and type(given) is str else Undefined
                if value is Undefined:
                    coerced = coerced or self._coerce(found, raw)
                    if coerced is None:
                        return []
                    value = _arguments(site, coerced).get("key")
                if value is not None:
                    assert site.scope is not None  # by-key sites have theirs
                    out.append(_counted_as(site.scope, value))
                continue
            coerced = coerced or self._coerce(found, raw)
            if coerced is None:
                return []
            spec = input_spec(_arguments(site, coerced).get("filter"))
            if spec:
                out.extend(_filter_values(plan, entity, spec, self.catalog))
        return out

    def sites(self, compiled: Compiled, operation_name: str | None) -> Sites | None:
        """The sites of the operation a request runs; None where there is no such operation."""
        per_document = self._sites.get(compiled)
        if per_document is None:
            per_document = self._sites[compiled] = {}
        if operation_name in per_document:
            return per_document[operation_name]
        found = per_document[operation_name] = self._compile(compiled, operation_name)
        return found

    def _compile(self, compiled: Compiled, operation_name: str | None) -> Sites | None:
        document = compiled.document
        if document is None or not compiled.runnable:
            return None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name is None:
            operation = operations[0] if len(operations) == 1 else None
        else:
            operation = next((o for o in operations if o.name is not None and o.name.value == operation_name), None)
        if operation is None:
            return None
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        root = self.schema.get_root_type(operation.operation)
        sites = list(self._walk(operation.selection_set, root, fragments, set())) if root is not None else []
        simple = frozenset(
            d.variable.name.value
            for d in operation.variable_definitions or ()
            if d.default_value is None
            and isinstance(d.type, NonNullTypeNode)
            and isinstance(d.type.type, NamedTypeNode)
            and d.type.type.name.value in ("ID", "String")
        )
        by_variable = [
            (s.variable, *s.scope) for s in sites if s.variable is not None and s.variable in simple and s.scope
        ]
        direct = tuple(by_variable) if sites and len(by_variable) == len(sites) else None
        return Sites(operation, tuple(sites), simple, direct)

    def _walk(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType | None,
        fragments: Mapping[str, FragmentDefinitionNode],
        seen: set[str],
    ) -> Iterator[Site]:
        # Each fragment is walked once: its sites are the same wherever it is spread.
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if not isinstance(parent, GraphQLObjectType):
                    continue
                field = parent.fields.get(selection.name.value)
                if field is None:
                    continue
                site = self._site(parent, selection, field)
                if site is not None:
                    yield site
                if selection.selection_set is not None:
                    yield from self._walk(selection.selection_set, get_named_type(field.type), fragments, seen)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = parent if condition is None else self.schema.get_type(condition.name.value)
                yield from self._walk(selection.selection_set, inner, fragments, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None or name in seen:
                    continue
                seen.add(name)
                inner = self.schema.get_type(fragment.type_condition.name.value)
                yield from self._walk(fragment.selection_set, inner, fragments, seen)

    def _site(self, parent: GraphQLObjectType, node: FieldNode, field: GraphQLField) -> Site | None:
        name = node.name.value
        entity: EntityInfo | None = None
        if parent is self.schema.query_type and name in self.root_fields:
            entity = self.catalog.entity(self.root_fields[name])
            if name == entity.key_field:
                return self._by_key(entity, node, field)
        elif parent.name in self.entity_types:
            # A relation field that takes a filter of its target's rows.
            source = self.catalog.entity(self.entity_types[parent.name])
            relation = source.relations.get(name)
            if relation is not None:
                entity = self.catalog.entity(relation.target)
        # A list without a `filter` argument supplies nothing (the argument defaults to null).
        if entity is None or not any(a.name.value == "filter" for a in node.arguments or ()):
            return None
        return Site(entity, False, node, field, None, Undefined)

    @staticmethod
    def _by_key(entity: EntityInfo, node: FieldNode, field: GraphQLField) -> Site:
        argument = next((a.value for a in node.arguments or () if a.name.value == "key"), None)
        scope = _scope(entity.fields[entity.key], entity)
        if isinstance(argument, VariableNode):
            return Site(entity, True, node, field, argument.name.value, Undefined, scope)
        literal = Undefined if argument is None else value_from_ast(argument, field.args["key"].type)
        return Site(entity, True, node, field, None, literal, scope)

    def _coerce(self, sites: Sites, raw: Mapping[str, Any]) -> VariableValues | None:
        coerced = get_variable_values(self.schema, sites.operation.variable_definitions or (), dict(raw))
        return None if isinstance(coerced, list) else coerced


class FieldVerdicts(Protocol):
    """The caller's decision on one field (None: not decided, counted to be safe)."""

    def verdict(self, entity: EntityInfo, name: str) -> Verdict | None: ...


def _arguments(site: Site, variables: VariableValues) -> dict[str, Any]:
    try:
        return get_argument_values(site.field, site.node, variables)
    except GraphQLError:
        # The request fails its coercion on the normal path, before any resolver runs.
        return {}


def _counts(plan: FieldVerdicts | None, entity: EntityInfo, name: str) -> bool:
    """Whether values on the field are guesses the hub would answer: it is not released plain,
    but may be searched. A field that is neither is refused (FORBIDDEN) in any filter or
    by-key read before SQL runs (AccessPlan.require_plain), so that request reveals nothing,
    and costs nothing."""
    if plan is None:
        return True
    verdict = plan.verdict(entity, name)
    return verdict is None or (verdict.decision is not Decision.PLAIN and verdict.lookup)


def _filter_values(
    plan: FieldVerdicts | None, entity: EntityInfo, spec: Mapping[str, Any], catalog: Catalog
) -> Iterator[Supplied]:
    # Coerced input objects hold every field, those not given as None.
    for key, value in spec.items():
        if value is None:
            continue
        if key in ("and", "or"):
            for item in value:
                yield from _filter_values(plan, entity, item, catalog)
        elif key == "not":
            yield from _filter_values(plan, entity, value, catalog)
        elif key in entity.relations and isinstance(value, Mapping):
            # A relation condition's filter (`some`, `none`, `every`) supplies values about the
            # related entity: a guess there is answered through this side's rows.
            target = catalog.entity(entity.relations[key].target)
            for nested in value.values():
                if isinstance(nested, Mapping):
                    yield from _filter_values(plan, target, nested, catalog)
        elif key in entity.fields and _counts(plan, entity, key) and isinstance(value, Mapping):
            item = entity.fields[key]
            for op, given in value.items():
                if op in NOT_VALUES or given is None:
                    continue
                for one in given if isinstance(given, list) else (given,):
                    if one is not None:
                        yield _scoped(item, entity, one)


def _scope(item: FieldInfo, entity: EntityInfo) -> Scope:
    """How a field's values are counted: in its blind-index domain, normalised as the index is
    (so `x` and `X` at the end of an ID number are one guess), else per entity field, as given."""
    if item.blind_index is not None:
        return item.blind_index, normaliser(item.blind_index)
    return f"{entity.id}.{item.name}", None


def _counted_as(scope: Scope, value: Any) -> Supplied:
    name, normalise = scope
    text = str(value)
    return name, text if normalise is None else normalise(text)


def _scoped(item: FieldInfo, entity: EntityInfo, value: Any) -> Supplied:
    """A value as it is counted (see `_scope`)."""
    return _counted_as(_scope(item, entity), value)
