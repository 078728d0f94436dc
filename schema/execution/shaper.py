"""Shapers: the completion of a whole list of entity rows in one pass, prepared once per
selection set.

graphql-core completes every field of every row on its own (resolve, check the type, coerce,
place the value), at 4-6 microseconds a value. A shaper does what that yields for rows that are
plain dicts: it reads each selected column once, serialises it with the GraphQL scalar's own
`coerce_output_value`, and zips the columns into response objects whose keys follow the
selection (aliases, fragments, `@skip`/`@include` and `__typename` were settled when the
subfields were collected). Relation fields are completed per list too, by schema/execution/relations.py:
one load for the list, one shaping of the related rows. A field with any other resolver leaves
its selection set to the normal path.

Whatever the normal path would report as an error (a null in a non-null field, a value its
scalar refuses) makes the shaper refuse the list before anything with an effect has run; the
executor then completes that list the normal way, which produces the error exactly.

A list longer than SLICE_ROWS is shaped a slice at a time (`objects_paced`), giving the event
loop a turn between slices when one is due (connectors/pacing.py): shaping 10,000 rows of 12
fields in one go held every other request up for tens of milliseconds. Such a list without
relations is encoded a slice at a time as well (`EncodedList`, hub/encoding.py): its response
objects never all live at once, and the memory they took goes back after the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from types import FunctionType
from typing import Any

import orjson
from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    GraphQLBoolean,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLString,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import Path, Undefined
from strawberry.schema.types.base_scalars import DateDefinition, DateTimeDefinition, DecimalDefinition
from strawberry.types.field import StrawberryField

from connectors.pacing import SLICE_ROWS, Steps, run_paced
from hub.encoding import EncodedList
from schema.execution.positions import ListRows, OneRow
from schema.execution.relations import Related, Run, pending
from schema.loading import RELATION_FIELDS

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
SAME_VALUES: dict[GraphQLLeafType, type] = {GraphQLInt: int, GraphQLBoolean: bool}


@dataclass(frozen=True)
class Leaf:
    """A plain field read from the row dict and serialised column-wise."""

    column: str
    serialize: Callable[[Any], Any]
    non_null: bool
    text: bool
    total: bool
    # The values the scalar gives back unchanged: an Int's ints within 32 bits, a Boolean's
    # bools (its serialiser's first case); their columns skip the call per value.
    same: type | None = None

    def values(self, raw: Sequence[Any]) -> Sequence[Any] | None:
        """The column's response values, or None where the normal path would report an error."""
        kinds = set(map(type, raw))
        has_null = NoneType in kinds
        if has_null and self.non_null:
            return None
        if self.text and kinds <= TEXT_KINDS:
            return raw
        if self.same is not None and kinds <= {self.same, NoneType} and self._unchanged(raw, has_null):
            return raw
        serialize = self.serialize
        try:
            out = [None if value is None else serialize(value) for value in raw] if has_null else [*map(serialize, raw)]
        except Exception:
            return None
        if not self.total and (out.count(None) != raw.count(None) or any(value is Undefined for value in out)):
            return None
        return out

    def _unchanged(self, raw: Sequence[Any], has_null: bool) -> bool:
        if self.same is not int:
            return True
        present = [value for value in raw if value is not None] if has_null else raw
        return not present or (min(present) >= GRAPHQL_MIN_INT and max(present) <= GRAPHQL_MAX_INT)

    def one(self, value: Any) -> Any:
        """One value's response value, or Undefined where the normal path would report an error."""
        if value is None:
            return Undefined if self.non_null else None
        if self.text and type(value) is str:
            return value
        if type(value) is self.same and self._unchanged((value,), False):
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
class Nested:
    """A plain object field read from the row dict (an aggregate group's key or measures),
    completed by a shaper of its own; never a relation, so it loads nothing."""

    column: str
    shaper: Shaper
    non_null: bool

    def values(self, raw: Sequence[Any]) -> list[Any] | None:
        """The column's response objects, or None where the normal path would report an error."""
        # Checked a column at a time, not a value at a time: an aggregate's groups each hold
        # a key and measures (up to 10,000 groups).
        kinds = set(map(type, raw))
        if kinds <= {dict}:
            return self.shaper.objects(raw if isinstance(raw, list) else list(raw))
        if self.non_null or not kinds <= {dict, NoneType}:
            return None
        present = [value for value in raw if value is not None]
        shaped = self.shaper.objects(present)
        if shaped is None:
            return None
        objects = iter(shaped)
        return [None if value is None else next(objects) for value in raw]

    def one(self, value: Any) -> Any:
        """One value's response object, or Undefined where the normal path would report an error."""
        if value is None:
            return Undefined if self.non_null else None
        shaped = self.values([value])
        return Undefined if shaped is None else shaped[0]


@dataclass(frozen=True)
class NestedList:
    """A plain list of objects read from the row (an aggregate's groups), each completed by a
    shaper of its own; only in shapers made for a direct plan's root value."""

    column: str
    shaper: Shaper
    non_null: bool

    def values(self, raw: Sequence[Any]) -> list[Any] | None:
        """The column's response lists, or None where the normal path would report an error."""
        out: list[Any] = []
        for value in raw:
            shaped = self.one(value)
            if shaped is Undefined:
                return None
            out.append(shaped)
        return out

    def one(self, value: Any) -> Any:
        """One value's response list, or Undefined where the normal path would report an error."""
        if value is None:
            return Undefined if self.non_null else None
        if type(value) is not list or not set(map(type, value)) <= {dict}:
            # Null items (and anything but row dicts) are left to the normal path.
            return Undefined
        shaped = self.shaper.objects(value)
        return Undefined if shaped is None else shaped


Entry = Leaf | Typename | Related | Nested | NestedList
# What `prepare` asks for a field's selection on its object type: the subfields grouped (None
# where they cannot be shaped, such as a deferred fragment).
Subfields = Callable[[GraphQLObjectType, FieldDetailsList], GroupedFieldSet | None]


class Shaper:
    """The completion of one selection set on one entity type, for a list of rows or one."""

    def __init__(self, parent: GraphQLObjectType, keys: list[str], entries: list[Entry]) -> None:
        self.parent = parent
        self.keys = keys
        self.entries = entries
        self.related = [entry for entry in entries if isinstance(entry, Related)]
        names = [entry.column for entry in entries if isinstance(entry, Leaf)]
        # One C-level call per row reads every plain column; a row without one of them (the
        # default resolver reads it as null) takes the slower `get`.
        self.getter = itemgetter(*names) if len(names) > 1 else None
        self.names = names
        # For one row: each entry's column and completion, or the constant it answers (the
        # type name; null for a relation, completed afterwards).
        self.steps = [_step(entry) for entry in entries]

    def objects(self, rows: list[dict[Any, Any]]) -> list[dict[str, Any]] | None:
        """The response objects of `rows`, relations still null; None where the normal path
        would report an error."""
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
            elif isinstance(entry, Nested | NestedList):
                nested = entry.values(_column(rows, entry.column))
                if nested is None:
                    return None
                columns.append(nested)
            else:
                columns.append([None] * count)
        if not columns:
            return [{} for _ in rows]
        return [*map(dict, map(zip, repeat(self.keys), zip(*columns, strict=True)))]

    async def objects_paced(self, rows: list[dict[Any, Any]]) -> list[dict[str, Any]] | None:
        """`objects`, a slice of SLICE_ROWS rows at a time, with turns for the loop between."""
        if len(rows) <= SLICE_ROWS:
            return self.objects(rows)
        return await run_paced(self._sliced(rows))

    def _sliced(self, rows: list[dict[Any, Any]]) -> Steps[list[dict[str, Any]] | None]:
        # Each slice decides alone whether the normal path must take over: every check a
        # column makes (a null in a non-null field, a value its scalar refuses) is per value.
        out: list[dict[str, Any]] = []
        for start in range(0, len(rows), SLICE_ROWS):
            part = self.objects(rows[start : start + SLICE_ROWS])
            if part is None:
                return None
            out.extend(part)
            yield
        return out

    def _encoded(self, rows: list[dict[Any, Any]]) -> Steps[EncodedList | None]:
        # As `_sliced`, each slice decides alone whether the normal path must take over.
        pieces: list[bytes] = []
        for start in range(0, len(rows), SLICE_ROWS):
            part = self.objects(rows[start : start + SLICE_ROWS])
            if part is None:
                return None
            yield
            # No EncodedList inside: a shaped object holds scalars and nested objects only.
            pieces.append(orjson.dumps(part))
            del part
            yield
        return EncodedList(pieces, len(rows) * (1 + len(self.keys)))

    async def many_paced(
        self, run: Run | None, rows: list[dict[Any, Any]], path: Path, position: Any
    ) -> list[dict[str, Any]] | EncodedList | None:
        """`many` for a long list, shaped in slices; None to leave it to the normal path. A list
        without relations comes encoded already (hub/encoding.py): each slice's objects are
        encoded and dropped before the next is shaped, in a request (`run`) whose answer the
        hub encodes; bare, it is a list of objects."""
        if not self.related and run is not None:
            return await run_paced(self._encoded(rows))
        if self.related and run is None:
            return None
        objects = await self.objects_paced(rows)
        if not objects or not self.related:
            return objects
        assert run is not None
        shaped: list[dict[str, Any]] = await pending(run, self, rows, objects, ListRows(path), position)
        return shaped

    def many(
        self, run: Run | None, rows: list[dict[Any, Any]], path: Path, position: Any
    ) -> list[dict[str, Any]] | Awaitable[Any] | None:
        """The completed list of `rows` (pending while relations load), or None to leave it to
        the normal path."""
        objects = self.objects(rows)
        if not objects or not self.related:
            return objects
        # Relations need the request's context; a schema executed without one has no `run`.
        return None if run is None else pending(run, self, rows, objects, ListRows(path), position)

    def one(
        self, run: Run | None, row: dict[Any, Any], path: Path, position: Any
    ) -> dict[str, Any] | Awaitable[Any] | None:
        """The completed object of one row (a by-key field, a to-one relation), or None."""
        values: list[Any] = []
        get = row.get
        for column, step in self.steps:
            if column is None:
                values.append(step)
                continue
            value = step(get(column))
            if value is Undefined:
                return None
            values.append(value)
        target = dict(zip(self.keys, values, strict=True))
        if not self.related:
            return target
        return None if run is None else pending(run, self, [row], [target], OneRow(path), position)

    def _raw(self, rows: list[dict[Any, Any]]) -> list[Sequence[Any]]:
        """The plain columns' stored values, column by column."""
        if self.getter is not None:
            try:
                return [*zip(*map(self.getter, rows), strict=True)]
            except KeyError:
                pass
        return [_column(rows, name) for name in self.names]


def _column(rows: list[dict[Any, Any]], name: str) -> list[Any]:
    """One column of `rows`, read in one C-level pass (an aggregate's key or measure object,
    per group); a row without it reads as null, as the default resolver reads it."""
    try:
        return [*map(itemgetter(name), rows)]
    except KeyError:
        return [row.get(name) for row in rows]


def _step(entry: Entry) -> tuple[str | None, Any]:
    if isinstance(entry, Leaf | Nested | NestedList):
        return entry.column, entry.one
    return None, entry.name if isinstance(entry, Typename) else None


def prepare(
    schema: GraphQLSchema,
    parent: GraphQLObjectType,
    grouped: GroupedFieldSet,
    default_resolver: Callable[..., Any],
    subfields: Subfields | None = None,
) -> Shaper | None:
    """A shaper for `grouped` on `parent`, or None if any field needs the normal path: a
    field with arguments or a resolver other than a relation's, a type checked per object.
    With `subfields`, a plain object field (read from the row, no resolver) is shaped too."""
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
        field = schema.get_field(parent, name)
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
            continue
        if (
            subfields is not None
            and isinstance(nullable, GraphQLObjectType)
            and not field.args
            and isinstance(definition, StrawberryField)
            and definition.is_basic_field
            and definition.default_resolver is default_resolver
            and getattr(field.resolve, "_is_default", False)
        ):
            inner = subfields(nullable, field_details)
            nested = None if inner is None else prepare(schema, nullable, inner, default_resolver, subfields)
            if nested is None or nested.related:
                return None
            entries.append(Nested(definition.python_name, nested, is_non_null_type(field.type)))
            continue
        items = None if subfields is None else _plain_list(field, default_resolver)
        if items is not None:
            assert subfields is not None and isinstance(definition, StrawberryField)
            inner = subfields(items, field_details)
            nested = None if inner is None else prepare(schema, items, inner, default_resolver, subfields)
            if nested is None or nested.related:
                return None
            entries.append(NestedList(definition.python_name, nested, is_non_null_type(field.type)))
            continue
        related = _related(key, field_details, field, definition)
        if related is None:
            return None
        entries.append(related)
    return Shaper(parent, keys, entries)


def _plain_list(field: GraphQLField, default_resolver: Callable[..., Any]) -> GraphQLObjectType | None:
    """The item type of `field` if it is a plain list of objects read from the row (no
    resolver, no arguments), else None."""
    definition = field.extensions.get(DEFINITION)
    nullable = field.type.of_type if is_non_null_type(field.type) else field.type
    if not isinstance(nullable, GraphQLList) or field.args:
        return None
    if not (
        isinstance(definition, StrawberryField)
        and definition.is_basic_field
        and definition.default_resolver is default_resolver
        and getattr(field.resolve, "_is_default", False)
    ):
        return None
    item = nullable.of_type.of_type if is_non_null_type(nullable.of_type) else nullable.of_type
    return item if isinstance(item, GraphQLObjectType) else None


def _related(key: str, field_details: FieldDetailsList, field: GraphQLField, definition: Any) -> Related | None:
    """The relation field `field` as a shaper completes it, or None if it is something else:
    a resolver the fast path does not know, one wrapped in field extensions, a non-null type.
    A relation list's arguments (filter, orderBy, first) are the hub's own: relation_load
    reads them from the field node, on this path as on the normal one."""
    resolver = definition.base_resolver if isinstance(definition, StrawberryField) else None
    function = None if resolver is None else resolver.wrapped_func
    of = RELATION_FIELDS.get(function) if isinstance(function, FunctionType) else None
    if of is None or definition.extensions or is_non_null_type(field.type):
        return None
    target = field.type.of_type if is_list_type(field.type) else field.type
    target = target.of_type if is_non_null_type(target) else target
    if not isinstance(target, GraphQLObjectType) or is_list_type(field.type) is not of.relation.many:
        return None
    return Related(key, field_details, field, target, of)


def _leaf(column: str, scalar: GraphQLLeafType, non_null: bool) -> Leaf:
    serialize = scalar.coerce_output_value
    total = scalar in TOTAL_SCALARS or any(serialize is known for known in TOTAL_SERIALIZERS)
    return Leaf(column, serialize, non_null, scalar in TEXT_SCALARS, total, SAME_VALUES.get(scalar))
