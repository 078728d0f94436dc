"""The SELECT a query becomes: its columns, filter, order and page as SQLAlchemy expressions.

Strings compare and sort in the dialect's binary collation. Equality and IN on strings also
keep a test on the bare column: the bare test lets an index in the column's own collation find
candidates (a superset, since bytes that are equal are equal in any collation), and the
collated test keeps only exact matches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from connectors.base import (
    And,
    ColumnSpec,
    Compare,
    Filter,
    In,
    IsNull,
    Kind,
    Like,
    Not,
    Op,
    Or,
    OrderKey,
    Query,
    QueryError,
    TableSpec,
    after_filter,
    conjoin,
)
from connectors.dialects import SqlDialect
from connectors.values import filter_value

_COMPARE: dict[Op, Callable[[sa.ColumnElement[Any], Any], sa.ColumnElement[bool]]] = {
    Op.EQ: lambda expr, value: expr == value,
    Op.NE: lambda expr, value: expr != value,
    Op.LT: lambda expr, value: expr < value,
    Op.LTE: lambda expr, value: expr <= value,
    Op.GT: lambda expr, value: expr > value,
    Op.GTE: lambda expr, value: expr >= value,
}


class SelectBuilder:
    """Builds the statements of one table for one connection's dialect."""

    def __init__(self, dialect: SqlDialect, collation: str, zone: ZoneInfo, table: TableSpec) -> None:
        self._dialect = dialect
        self._collation = collation
        self._zone = zone
        self._spec = table
        self._table = sa.table(table.name, *(sa.column(c.name, dialect.column_type(c)) for c in table.columns.values()))

    def fetch(self, query: Query) -> sa.Select[Any]:
        """The page of `query`, with one row more than its limit to tell whether more follow."""
        if (query.limit is not None and query.limit < 0) or query.offset < 0:
            raise QueryError("limit and offset must not be negative")
        order = query.full_order()
        where = query.where
        if query.after is not None:
            if query.offset:
                raise QueryError("page by `after` or by offset, not both")
            where = conjoin(where, after_filter(order, query.after))
        statement = self._select(query.columns).order_by(*self._order(order))
        if where is not None:
            statement = statement.where(self.where(where))
        if query.limit is not None:
            statement = statement.limit(query.limit + 1)
        if query.offset:
            statement = statement.offset(query.offset)
        return statement

    def count(self, where: Filter | None) -> sa.Select[Any]:
        statement = sa.select(sa.func.count()).select_from(self._table)
        return statement if where is None else statement.where(self.where(where))

    def fetch_by(self, column: str, values: Sequence[Any], columns: Sequence[str]) -> sa.Select[Any]:
        """Rows whose `column` is one of `values` (given as `filter_value` returns them)."""
        order = (OrderKey(column), OrderKey(self._spec.key))
        return self._select(columns).where(self._in(self._spec.column(column), values)).order_by(*self._order(order))

    def _select(self, columns: Sequence[str]) -> sa.Select[Any]:
        names = tuple(dict.fromkeys(columns))
        if not names:  # SQL cannot select nothing; a constant reads no column
            return sa.select(sa.literal(1)).select_from(self._table)
        return sa.select(*(self._table.c[self._spec.column(name).name] for name in names))

    def _order(self, order: Sequence[OrderKey]) -> list[sa.ColumnElement[Any]]:
        terms: list[sa.ColumnElement[Any]] = []
        for key in order:
            terms.extend(self._dialect.order(self._compared(self._spec.column(key.column)), key.descending))
        return terms

    def _compared(self, spec: ColumnSpec) -> sa.ColumnElement[Any]:
        """The column as filters and orders see it: strings in the binary collation."""
        column = self._table.c[spec.name]
        return sa.collate(column, self._collation) if spec.kind is Kind.STRING else column

    # --- filters -----------------------------------------------------------------------------

    def where(self, where: Filter) -> sa.ColumnElement[bool]:
        match where:
            case Compare(column, op, value):
                spec = self._spec.column(column)
                if value is None:
                    raise QueryError(f"compare {column!r} with null using isNull")
                bare = self._table.c[spec.name]
                # Always a bound parameter: SQLAlchemy would turn True and False into IS
                # tests, which have no order.
                bound = sa.bindparam(None, filter_value(spec, value, self._zone), type_=bare.type)
                if op is Op.EQ and spec.kind is Kind.STRING:
                    return sa.and_(bare == bound, self._compared(spec) == bound)
                return _COMPARE[op](self._compared(spec), bound)
            case In(column, values):
                spec = self._spec.column(column)
                return self._in(spec, [filter_value(spec, v, self._zone) for v in values])
            case Like(column, match, text):
                spec = self._spec.column(column)
                if spec.kind is not Kind.STRING or not isinstance(text, str):
                    raise QueryError(f"column {column!r} cannot be matched as text")
                return self._dialect.like(self._compared(spec), match, text)
            case IsNull(column, is_null):
                expr = self._table.c[self._spec.column(column).name]
                return expr.is_(None) if is_null else expr.is_not(None)
            case And(items):
                return sa.and_(*(self.where(item) for item in items)) if items else sa.true()
            case Or(items):
                return sa.or_(*(self.where(item) for item in items)) if items else sa.false()
            case Not(item):
                return sa.not_(self.where(item))
        raise QueryError(f"unknown filter {where!r}")

    def _in(self, spec: ColumnSpec, values: Sequence[Any]) -> sa.ColumnElement[bool]:
        # SQL has no empty IN list; an empty set holds nothing, for NULL columns too.
        if not values:
            return sa.false()
        compared = self._compared(spec)
        if spec.kind is Kind.STRING:
            return self._dialect.in_([self._table.c[spec.name], compared], values)
        return self._dialect.in_([compared], values)
