"""`LineageRecord`: the union of every entity's GraphQL type, as traces (and reports) carry
records; which fields of each member a selection asks for; records read by reference.

A node's record is the released row dict the reader made, completed like any entity row (the
access plan decided each field; masked stays masked, withheld is null with its error). The
row names its type under ENTITY, which the union's type resolution reads.
"""

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    SelectionSetNode,
)

from hub.access.matching import read_matching
from hub.access.read import JOIN, Reader
from hub.catalog import Catalog
from hub.crypto.cells import index_bytes
from hub.lineage.refs import RecordRef
from hub.lineage.trace import ENTITY
from schema.context import RequestContext
from schema.loading import needs, report

UNION_NAME = "LineageRecord"


def record_union(object_types: Sequence[type]) -> Any:
    """The union type of `object_types` (the generated entity types), for annotations."""
    members = tuple(object_types)
    union = Union[members] if len(members) > 1 else members[0]  # noqa: UP007
    return Annotated[
        union,
        strawberry.union(UNION_NAME, description="A record of any shared entity, released under your access plan."),
    ]


def bind_union(schema: GraphQLSchema) -> None:
    """Resolves the union's member from the row itself (rows are dicts, not typed objects)."""
    union = schema.type_map.get(UNION_NAME)
    if isinstance(union, GraphQLUnionType):
        union.resolve_type = lambda value, *_: value.get(ENTITY) if isinstance(value, dict) else None


def fields_by_type(
    nodes: Sequence[FieldNode], fragments: Mapping[str, FragmentDefinitionNode], type_names: Mapping[str, str]
) -> dict[str, dict[str, list[FieldNode]]]:
    """The fields selected under union-typed `nodes`, per member type name (a fragment on the
    union itself applies to every member; `type_names` maps member names to entity ids)."""
    out: dict[str, dict[str, list[FieldNode]]] = {name: {} for name in type_names}

    def walk(selection_set: SelectionSetNode | None, only: str | None, seen: frozenset[str]) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                for name in [only] if only is not None else list(out):
                    out[name].setdefault(selection.name.value, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition.name.value if selection.type_condition else None
                walk(selection.selection_set, _narrow(only, condition, out), seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in seen:
                    condition = fragment.type_condition.name.value
                    walk(fragment.selection_set, _narrow(only, condition, out), seen | {name})

    for node in nodes:
        walk(node.selection_set, None, frozenset())
    return out


def _narrow(only: str | None, condition: str | None, members: Mapping[str, object]) -> str | None:
    if condition is None or condition not in members:
        # The union itself (or no condition): the enclosing scope.
        return only
    if only is not None and only != condition:
        return "\0"  # a fragment that can never apply here
    return condition


def needs_by_entity(
    catalog: Catalog, selected: Mapping[str, Mapping[str, Any]], type_names: Mapping[str, str]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per entity id: the fields and join values its records' selection needs."""
    names: dict[str, list[str]] = {}
    joins: dict[str, list[str]] = {}
    for type_name, fields in selected.items():
        entity_id = type_names.get(type_name)
        if entity_id is None or not fields:
            continue
        names[entity_id], joins[entity_id] = needs(catalog.entity(entity_id), fields)
    return names, joins


async def records_by_ref(
    context: RequestContext,
    refs: Sequence[RecordRef],
    names: Mapping[str, Sequence[str]],
    joins: Mapping[str, Sequence[str]],
    path: tuple[str | int, ...],
) -> list[dict[Any, Any] | None]:
    """The released record of each reference (None where there is none the caller may see),
    one statement per entity, ready to be a `LineageRecord`; what was masked or withheld is
    reported at `path`. For the reports that list records by reference."""
    request = context.current
    reader = context.reader
    wanted: dict[str, list[RecordRef]] = {}
    for ref in refs:
        wanted.setdefault(ref.entity.id, []).append(ref)
    found: dict[tuple[str, Any], dict[Any, Any]] = {}
    for entity_id, group in wanted.items():
        entity = group[0].entity
        raws = [raw for raw in (_stored(reader, r) for r in group) if raw is not None]
        if not raws:
            continue
        cols = list(dict.fromkeys([entity.key, *joins.get(entity_id, ())]))
        matched = await read_matching(
            reader, request, entity, {entity.key: raws}, names.get(entity_id, ()), cols, len(raws)
        )
        report(context, path, matched.released)
        for row in matched.released.rows:
            row[ENTITY] = entity.type_name
            found[(entity_id, _plain(row.get((JOIN, entity.key))))] = row
    return [found.get((r.entity.id, _plain(_stored(reader, r)))) for r in refs]


def _stored(reader: Reader, ref: RecordRef) -> Any:
    """The key as its column stores it; None for a stored key of the wrong kind (bytes where
    the key is plain, or the reverse), which names no record and must not reach the SQL."""
    entity = ref.entity
    if ref.raw is None:
        return index_bytes(reader._index_value(entity.fields[entity.key], str(ref.plain)))
    indexed = entity.fields[entity.key].index_column is not None
    return ref.raw if isinstance(ref.raw, bytes | bytearray | memoryview) == indexed else None


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, bytearray | memoryview) else value
