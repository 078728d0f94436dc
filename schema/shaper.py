"""Shapers: the completion of a whole list of entity rows in one pass, prepared once per
selection set.

graphql-core completes every field of every row on its own (resolve, check the type, coerce,
place the value), at 4-6 microseconds a value. A shaper does what that yields for rows that are
plain dicts: it reads each selected column once, serialises it with the GraphQL scalar's own
`coerce_output_value`, and zips the columns into response objects whose keys follow the
selection (aliases, fragments, `@skip`/`@include` and `__typename` were settled when the
subfields were collected). Fields with a resolver (relations) still run through the executor's
own `execute_field`, row by row in the normal order, so their errors and batching are unchanged.

Whatever the normal path would report as an error (a null in a non-null field, a value its
scalar refuses) makes the shaper refuse the list before anything with an effect has run; the
executor then completes that list the normal way, which produces the error exactly.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLString,
    is_leaf_type,
    is_non_null_type,
)
from graphql.execution import Executor
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.schema.types.base_scalars import DateDefinition, DateTimeDefinition, DecimalDefinition
from strawberry.types.field import StrawberryField

# strawberry keeps each GraphQL field's StrawberryField under this extension key.
DEFINITION = "strawberry-definition"
# Scalars whose serialisers return a value or raise, never null: their columns need no
# check for a null they made up. strawberry's are known by their serialiser (`str`, `isoformat`).
TOTAL_SCALARS = (GraphQLString, GraphQLID, GraphQLInt, GraphQLFloat, GraphQLBoolean)
TOTAL_SERIALIZERS = tuple(d.serialize for d in (DateDefinition, DateTimeDefinition, DecimalDefinition))
# Scalars that return a `str` unchanged: their columns skip the call for text values.
TEXT_SCALARS = (GraphQLString, GraphQLID)
NoneType = type(None)
TEXT_KINDS = {str, NoneType}


@dataclass(frozen=True)
class Leaf:
    """A plain field read from the row dict and serialised column-wise."""

    column: str
    serialize: Callable[[Any], Any]
    non_null: bool
    text: bool
    total: bool

    def values(self, raw: Sequence[Any]) -> Sequence[Any] | None:
        """The column's response values, or None where the normal path would report an error."""
        kinds = set(map(type, raw))
        has_null = NoneType in kinds
        if has_null and self.non_null:
            return None
        if self.text and kinds <= TEXT_KINDS:
            return raw
        serialize = self.serialize
        try:
            out = [None if value is None else serialize(value) for value in raw] if has_null else [*map(serialize, raw)]
        except Exception:
            return None
        if not self.total and (out.count(None) != raw.count(None) or any(value is Undefined for value in out)):
            return None
        return out

    def one(self, value: Any) -> Any:
        """One value's response value, or Undefined where the normal path would report an error."""
        if value is None:
            return Undefined if self.non_null else None
        if self.text and type(value) is str:
            return value
        try:
            out = self.serialize(value)
        except Exception:
            return Undefined
        return Undefined if not self.total and out is None else out


@dataclass(frozen=True)
class Typename:
    name: str


@dataclass(frozen=True)
class Resolved:
    """A field with a resolver (a relation): executed per row by the executor itself."""

    key: str
    field_details: FieldDetailsList


Entry = Leaf | Typename | Resolved


class Shaper:
    """The completion of one selection set on one entity type, for a list of rows or one."""

    def __init__(self, parent: GraphQLObjectType, keys: list[str], entries: list[Entry]) -> None:
        self.parent = parent
        self.keys = keys
        self.entries = entries
        self.resolved = [(slot, entry) for slot, entry in enumerate(entries) if isinstance(entry, Resolved)]
        names = [entry.column for entry in entries if isinstance(entry, Leaf)]
        # One C-level call per row reads every plain column; a row without one of them (the
        # default resolver reads it as null) takes the slower `get`.
        self.getter = itemgetter(*names) if len(names) > 1 else None
        self.names = names

    def many(
        self, executor: Executor[Any], rows: list[dict[Any, Any]], path: Path, position: Any
    ) -> list[dict[str, Any]] | Awaitable[list[dict[str, Any]]] | None:
        """The completed list of `rows` (an awaitable if a relation is pending), or None to
        leave it to the normal path."""
        count = len(rows)
        if not count:
            return []
        raw = iter(self._raw(rows))
        columns: list[Sequence[Any]] = []
        for entry in self.entries:
            if isinstance(entry, Leaf):
                values = entry.values(next(raw))
                if values is None:
                    return None
                columns.append(values)
            elif isinstance(entry, Typename):
                columns.append([entry.name] * count)
            else:
                columns.append([None] * count)
        if not columns:
            return [{} for _ in rows]
        objects = [*map(dict, map(zip, repeat(self.keys), zip(*columns, strict=True)))]
        if not self.resolved:
            return objects
        pending: list[tuple[int, list[tuple[str, Awaitable[Any]]]]] = []
        for index, row in enumerate(rows):
            waiting = self._resolve(executor, row, objects[index], path.add_key(index, None), position)
            if waiting:
                pending.append((index, waiting))
        return _settle(objects, pending) if pending else objects

    def one(
        self, executor: Executor[Any], row: dict[Any, Any], path: Path, position: Any
    ) -> dict[str, Any] | Awaitable[dict[str, Any]] | None:
        """The completed object of one row (a by-key field, a to-one relation), or None."""
        values: list[Any] = []
        for entry in self.entries:
            if isinstance(entry, Leaf):
                value = entry.one(row.get(entry.column))
                if value is Undefined:
                    return None
                values.append(value)
            else:
                values.append(entry.name if isinstance(entry, Typename) else None)
        target = dict(zip(self.keys, values, strict=True))
        waiting = self._resolve(executor, row, target, path, position) if self.resolved else None
        return _fill(target, waiting) if waiting else target

    def _raw(self, rows: list[dict[Any, Any]]) -> list[Sequence[Any]]:
        """The plain columns' stored values, column by column."""
        if self.getter is not None:
            try:
                return [*zip(*map(self.getter, rows), strict=True)]
            except KeyError:
                pass
        return [[row.get(name) for row in rows] for name in self.names]

    def _resolve(
        self, executor: Executor[Any], row: dict[Any, Any], target: dict[str, Any], path: Path, position: Any
    ) -> list[tuple[str, Awaitable[Any]]]:
        """Runs the resolved fields of one row into `target`; those still pending.

        Called row by row, fields in selection order: the order the normal path calls resolvers
        in, so data loaders see their keys in the same order."""
        waiting: list[tuple[str, Awaitable[Any]]] = []
        parent = self.parent
        for _, entry in self.resolved:
            key = entry.key
            value = executor.execute_field(parent, row, entry.field_details, Path(path, key, parent.name), position)
            if executor.is_awaitable(value):
                waiting.append((key, value))
            target[key] = value
        return waiting


# Pending relations are awaited in the shape graphql-core gives them (a list gathers its rows,
# a row gathers its fields, and one of either is awaited directly), so the event loop runs
# resolvers in the same order and over as many turns as on the normal path. The relations are
# nullable, so execute_field has already turned their failures into located errors and nulls.


async def _settle(
    objects: list[dict[str, Any]], pending: list[tuple[int, list[tuple[str, Awaitable[Any]]]]]
) -> list[dict[str, Any]]:
    if len(pending) == 1:
        index, waiting = pending[0]
        await _fill(objects[index], waiting)
    else:
        await gather_with_cancel(*(_fill(objects[index], waiting) for index, waiting in pending))
    return objects


async def _fill(target: dict[str, Any], waiting: list[tuple[str, Awaitable[Any]]]) -> dict[str, Any]:
    if len(waiting) == 1:
        key, awaitable = waiting[0]
        target[key] = await awaitable
        return target
    values = await gather_with_cancel(*(awaitable for _, awaitable in waiting))
    for (key, _), value in zip(waiting, values, strict=True):
        target[key] = value
    return target


def prepare(
    executor: Executor[Any],
    parent: GraphQLObjectType,
    grouped: GroupedFieldSet,
    default_resolver: Callable[..., Any],
) -> Shaper | None:
    """A shaper for `grouped` on `parent`, or None if any field needs the normal path: a
    resolved field that is non-null, a field with arguments, a type checked per object."""
    if parent.is_type_of is not None:
        return None
    keys: list[str] = []
    entries: list[Entry] = []
    for key, field_details in grouped.items():
        name = field_details[0].node.name.value
        keys.append(key)
        if name == "__typename":
            entries.append(Typename(parent.name))
            continue
        field = executor.schema.get_field(parent, name)
        if field is None:
            return None
        definition = field.extensions.get(DEFINITION)
        nullable = field.type.of_type if is_non_null_type(field.type) else field.type
        if (
            is_leaf_type(nullable)
            and not field.args
            and isinstance(definition, StrawberryField)
            and definition.is_basic_field
            and definition.default_resolver is default_resolver
            and getattr(field.resolve, "_is_default", False)
        ):
            entries.append(_leaf(definition.python_name, nullable, is_non_null_type(field.type)))
        elif is_non_null_type(field.type):
            return None
        else:
            entries.append(Resolved(key, field_details))
    return Shaper(parent, keys, entries)


def _leaf(column: str, scalar: GraphQLLeafType, non_null: bool) -> Leaf:
    serialize = scalar.coerce_output_value
    total = scalar in TOTAL_SCALARS or any(serialize is known for known in TOTAL_SERIALIZERS)
    return Leaf(column, serialize, non_null, scalar in TEXT_SCALARS, total)
