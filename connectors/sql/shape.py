"""What a read becomes before any SQLAlchemy object exists: its shape and its values.

A shape is a hashable tuple of everything the SQL depends on: the columns, the filter's
structure, the order, whether a limit and an offset are present, and each substring test's
form. Every value (a compared value, an IN list, a LIKE pattern, the limit and offset) sits in a
numbered slot instead, and the values are returned apart, by slot name. Reads of one shape then
share one built statement (`sql_select`), and only their values change; a cursor's NULLs change
the filter `after_filter` makes, and with it the shape.

Values are converted with `filter_value` here, and malformed queries refused, so that what a
cached statement would never see is still checked on every read.
"""

from __future__ import annotations

from typing import Any, Final
from zoneinfo import ZoneInfo

from connectors.aggregates import AggregateQuery
from connectors.base import (
    And,
    Compare,
    Filter,
    In,
    IsNull,
    Kind,
    Like,
    Not,
    Or,
    Query,
    QueryError,
    TableSpec,
    after_filter,
    conjoin,
)
from connectors.sql.dialects import SqlDialect
from connectors.values import filter_value

Shape = tuple[Any, ...]
Values = dict[str, Any]

# The first item of each shape, naming what the rest holds.
FETCH: Final = "fetch"  # (FETCH, columns, filter | None, order, limit slot | None, offset slot | None)
# (GROUPED, columns, filter | None, order, group column, group limit slot, limit slot | None)
GROUPED: Final = "grouped"
COUNT: Final = "count"  # (COUNT, filter | None)
# (AGGREGATE, measures, group keys, filter | None, full order, limit slot | None, offset slot | None,
#  with the total row)
AGGREGATE: Final = "aggregate"
COMPARE: Final = "compare"  # (COMPARE, column, op, slot)
IN: Final = "in"  # (IN, column, slot): the slot holds a non-empty list
NOTHING: Final = "nothing"  # (NOTHING,): an IN of no values
LIKE: Final = "like"  # (LIKE, column, the dialect's form, slots)
IS_NULL: Final = "is_null"  # (IS_NULL, column, is_null)
AND: Final = "and"  # (AND, filters)
OR: Final = "or"  # (OR, filters)
NOT: Final = "not"  # (NOT, filter)


class QueryShapes:
    """Shapes the reads of one connector: its dialect decides the form of substring tests,
    its zone how date-time values compare."""

    def __init__(self, dialect: SqlDialect, zone: ZoneInfo) -> None:
        self._dialect = dialect
        self._zone = zone

    def fetch(self, query: Query) -> tuple[Shape, Values]:
        """The page of `query`, with one row more than its limit to tell whether more follow."""
        if (query.limit is not None and query.limit < 0) or query.offset < 0:
            raise QueryError("limit and offset must not be negative")
        order = query.full_order()
        where = query.where
        if query.after is not None:
            if query.offset:
                raise QueryError("page by `after` or by offset, not both")
            where = conjoin(where, after_filter(order, query.after))
        values: Values = {}
        shape = None if where is None else self._filter(query.table, where, values)
        group = query.per_group
        if group is not None:
            query.check_groups()
            query.table.column(group.column)
            per_group = _slot(values, group.limit)
            limit = None if query.limit is None else _slot(values, query.limit + 1)
            return (GROUPED, tuple(query.columns), shape, tuple(order), group.column, per_group, limit), values
        limit = None if query.limit is None else _slot(values, query.limit + 1)
        offset = _slot(values, query.offset) if query.offset else None
        # tuple(): a caller's lists would make the shape unhashable (a tuple is returned as is).
        return (FETCH, tuple(query.columns), shape, tuple(order), limit, offset), values

    def count(self, table: TableSpec, where: Filter | None) -> tuple[Shape, Values]:
        values: Values = {}
        return (COUNT, None if where is None else self._filter(table, where, values)), values

    def aggregate(self, query: AggregateQuery) -> tuple[Shape, Values]:
        """The groups of `query`, with one more than its limit to tell whether more follow (and
        the total's row before them, with `with_total`)."""
        query.check()
        values: Values = {}
        where = None if query.where is None else self._filter(query.table, query.where, values)
        extra = 2 if query.with_total else 1
        limit = None if query.limit is None else _slot(values, query.limit + extra)
        offset = _slot(values, query.offset) if query.offset else None
        order = query.full_order()
        return (AGGREGATE, query.measures, query.groups, where, order, limit, offset, query.with_total), values

    def _filter(self, table: TableSpec, where: Filter, values: Values) -> Shape:
        match where:
            case Compare(column, op, value):
                spec = table.column(column)
                if value is None:
                    raise QueryError(f"compare {column!r} with null using isNull")
                return (COMPARE, column, op, _slot(values, filter_value(spec, value, self._zone)))
            case In(column, listed):
                spec = table.column(column)
                converted = [filter_value(spec, v, self._zone) for v in listed]
                # SQL has no empty IN list; an empty set holds nothing, for NULL columns too.
                return (IN, column, _slot(values, converted)) if converted else (NOTHING,)
            case Like(column, match, text):
                if table.column(column).kind is not Kind.STRING or not isinstance(text, str):
                    raise QueryError(f"column {column!r} cannot be matched as text")
                form, bound = self._dialect.like_values(match, text)
                return (LIKE, column, form, tuple(_slot(values, v) for v in bound))
            case IsNull(column, is_null):
                table.column(column)
                return (IS_NULL, column, is_null)
            case And(items):
                return (AND, tuple(self._filter(table, item, values) for item in items))
            case Or(items):
                return (OR, tuple(self._filter(table, item, values) for item in items))
            case Not(item):
                return (NOT, self._filter(table, item, values))
        raise QueryError(f"unknown filter {where!r}")


def _slot(values: Values, value: Any) -> str:
    """`value` in the next slot; the slot's name, which its bound parameter takes."""
    name = f"v{len(values)}"
    values[name] = value
    return name
