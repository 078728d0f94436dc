"""The SELECT a shape (`shape`) becomes: its columns, filter, order and page as SQLAlchemy
expressions, every value a named bound parameter for the read's values to fill.

Strings compare and sort in the dialect's binary collation. Equality and IN on strings also
keep a test on the bare column: the bare test lets an index in the column's own collation find
candidates (a superset, since bytes that are equal are equal in any collation), and the
collated test keeps only exact matches.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from connectors.base import ColumnSpec, Kind, Op, OrderKey, TableSpec
from connectors.sql import shape as sql_shape
from connectors.sql.dialects import SqlDialect
from connectors.sql.shape import Shape

_COMPARE: dict[Op, Callable[[sa.ColumnElement[Any], Any], sa.ColumnElement[bool]]] = {
    Op.EQ: lambda expr, value: expr == value,
    Op.NE: lambda expr, value: expr != value,
    Op.LT: lambda expr, value: expr < value,
    Op.LTE: lambda expr, value: expr <= value,
    Op.GT: lambda expr, value: expr > value,
    Op.GTE: lambda expr, value: expr >= value,
}


class SelectBuilder:
    """Builds the statements of one table for one connection's dialect and collation."""

    def __init__(self, dialect: SqlDialect, collation: str, table: TableSpec) -> None:
        self._dialect = dialect
        self._collation = collation
        self._spec = table
        self._table = sa.table(table.name, *(sa.column(c.name, dialect.column_type(c)) for c in table.columns.values()))

    def build(self, shape: Shape) -> sa.Select[Any]:
        match shape:
            case (sql_shape.FETCH, columns, where, order, limit, offset):
                return self._fetch(columns, where, order, limit, offset)
            case (sql_shape.GROUPED, columns, where, order, column, per_group, limit):
                return self._grouped(columns, where, order, column, per_group, limit)
            case (sql_shape.COUNT, where):
                statement = sa.select(sa.func.count()).select_from(self._table)
                return statement if where is None else statement.where(self._where(where))
        raise AssertionError(f"not a statement shape: {shape!r}")

    def _fetch(
        self,
        columns: Sequence[str],
        where: Shape | None,
        order: Sequence[OrderKey],
        limit: str | None,
        offset: str | None,
    ) -> sa.Select[Any]:
        statement = self._select(columns).order_by(*self._order(order))
        if where is not None:
            statement = statement.where(self._where(where))
        if limit is not None:
            statement = statement.limit(sa.bindparam(limit, type_=sa.Integer()))
        if offset is not None:
            statement = statement.offset(sa.bindparam(offset, type_=sa.Integer()))
        return statement

    def _grouped(
        self,
        columns: Sequence[str],
        where: Shape | None,
        order: Sequence[OrderKey],
        column: str,
        per_group: str,
        limit: str | None,
    ) -> sa.Select[Any]:
        """The first rows of each group of `column`, numbered in the read's order by a window
        over the filtered rows; the selected columns are followed by the row's number in its
        group and whether a row follows it there (1 or NULL), so the connector tells a cut
        group from a full one without reading the rows past the bound."""
        names = tuple(dict.fromkeys(columns))
        inner_names = tuple(dict.fromkeys([*names, *(key.column for key in order)]))
        terms = self._order(order)
        group = self._compared(self._spec.column(column))
        number = sa.func.row_number().over(partition_by=group, order_by=terms).label("hub_row_number")
        following = sa.func.lead(sa.literal_column("1")).over(partition_by=group, order_by=terms).label("hub_following")
        inner = sa.select(*(self._table.c[self._spec.column(name).name] for name in inner_names), number, following)
        if where is not None:
            inner = inner.where(self._where(where))
        numbered = inner.subquery("numbered")
        outer_terms: list[sa.ColumnElement[Any]] = []
        for key in order:
            spec = self._spec.column(key.column)
            expr: sa.ColumnElement[Any] = numbered.c[spec.name]
            if spec.kind is Kind.STRING:
                expr = sa.collate(expr, self._collation)
            outer_terms.extend(self._dialect.order(expr, key.descending))
        bound = sa.bindparam(per_group, type_=sa.Integer())
        statement = (
            sa.select(*(numbered.c[name] for name in names), numbered.c.hub_row_number, numbered.c.hub_following)
            .where(numbered.c.hub_row_number <= bound)
            .order_by(*outer_terms)
        )
        if limit is not None:
            statement = statement.limit(sa.bindparam(limit, type_=sa.Integer()))
        return statement

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

    def _where(self, shape: Shape) -> sa.ColumnElement[bool]:
        match shape:
            case (sql_shape.COMPARE, column, op, name):
                spec = self._spec.column(column)
                bare = self._table.c[spec.name]
                # Always a bound parameter: SQLAlchemy would turn True and False into IS
                # tests, which have no order.
                bound = sa.bindparam(name, type_=bare.type)
                if op is Op.EQ and spec.kind is Kind.STRING:
                    return sa.and_(bare == bound, self._compared(spec) == bound)
                return _COMPARE[op](self._compared(spec), bound)
            case (sql_shape.IN, column, name):
                return self._in(self._spec.column(column), name)
            case (sql_shape.NOTHING,):
                return sa.false()
            case (sql_shape.LIKE, column, form, names):
                return self._dialect.like(self._compared(self._spec.column(column)), form, names)
            case (sql_shape.IS_NULL, column, is_null):
                expr = self._table.c[self._spec.column(column).name]
                return expr.is_(None) if is_null else expr.is_not(None)
            case (sql_shape.AND, items):
                return sa.and_(*(self._where(item) for item in items)) if items else sa.true()
            case (sql_shape.OR, items):
                return sa.or_(*(self._where(item) for item in items)) if items else sa.false()
            case (sql_shape.NOT, item):
                return sa.not_(self._where(item))
        raise AssertionError(f"not a filter shape: {shape!r}")

    def _in(self, spec: ColumnSpec, name: str) -> sa.ColumnElement[bool]:
        compared = self._compared(spec)
        if spec.kind is Kind.STRING:
            return self._dialect.in_([self._table.c[spec.name], compared], name)
        return self._dialect.in_([compared], name)
