"""The SELECT of an aggregate read: GROUP BY, measures and buckets pushed into the database.

One statement: each group key (a column in the binary collation, or its bucket) and each
measure is a selected column, grouped by position, ordered by the same expressions, and paged.
An average is selected as its exact sum and its count of values; the connector divides (so
every backend rounds alike), and orders by the unrounded quotient. Constants inside grouped
expressions are written into the SQL, not bound: PostgreSQL would see two parameters in the
SELECT and the GROUP BY as two different expressions.

With the total (the measures over every row, wanted beside the groups), still one statement:
the grouped SELECT, each group numbered by its place in the order, UNION ALL the ungrouped
SELECT numbered 0, read as one subquery ordered by that number and paged. The same form on the
three dialects: SQLite has no GROUPING SETS, and MariaDB's WITH ROLLUP adds a subtotal per key
prefix, cannot tell its NULLs from a group of NULLs, and refuses an ORDER BY beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from connectors.aggregates import AggregateOrder, GroupKey, Measure, Measured
from connectors.base import Kind
from connectors.sql import shape as sql_shape
from connectors.sql.select import SelectBuilder
from connectors.sql.shape import Shape


class AggregateBuilder(SelectBuilder):
    """Builds aggregate statements of one table for one connection's dialect and collation."""

    def build(self, shape: Shape) -> sa.Select[Any]:
        if shape[0] == sql_shape.AGGREGATE:
            return self.aggregate(*shape[1:])
        return super().build(shape)

    def aggregate(
        self,
        measures: Sequence[Measured],
        groups: Sequence[GroupKey],
        where: Shape | None,
        order: Sequence[AggregateOrder],
        limit: str | None,
        offset: str | None,
        with_total: bool = False,
    ) -> sa.Select[Any]:
        keys = {group.label: self._group(group) for group in groups}
        selected: list[sa.ColumnElement[Any]] = list(keys.values())
        sorted_by: dict[str, sa.ColumnElement[Any]] = dict(keys)
        for item in measures:
            columns, sort = self._measure(item)
            selected.extend(columns)
            sorted_by[item.label] = sort
        condition = None if where is None else self._where(where)
        terms: list[sa.ColumnElement[Any]] = []
        for key in order:
            terms.extend(self._dialect.order(sorted_by[key.label], key.descending))
        if with_total:
            return self._with_total(selected, len(groups), condition, terms, limit, offset)
        statement = self._summarised(selected, len(groups), condition).order_by(*terms)
        return self._paged(statement, limit, offset)

    def _summarised(
        self, selected: Sequence[sa.ColumnElement[Any]], keys: int, condition: sa.ColumnElement[bool] | None
    ) -> sa.Select[Any]:
        statement = sa.select(*selected).select_from(self._table)
        if condition is not None:
            statement = statement.where(condition)
        if keys:
            statement = statement.group_by(*(sa.literal_column(str(i + 1)) for i in range(keys)))
        return statement

    def _with_total(
        self,
        selected: Sequence[sa.ColumnElement[Any]],
        keys: int,
        condition: sa.ColumnElement[bool] | None,
        terms: Sequence[sa.ColumnElement[Any]],
        limit: str | None,
        offset: str | None,
    ) -> sa.Select[Any]:
        """The groups and the total in one statement: the total's row first (place 0), then
        the groups by their place in the order; an offset skips groups only."""
        named = [column.label(f"c{i}") for i, column in enumerate(selected)]
        place = sa.func.row_number().over(order_by=list(terms)).label("hub_place")
        grouped = self._summarised([*named, place], keys, condition)
        # The total selects no group key: NULLs stand in their columns.
        whole = [sa.null().label(f"c{i}") for i in range(keys)] + named[keys:]
        total = self._summarised([*whole, sa.literal_column("0").label("hub_place")], 0, condition)
        answer = sa.union_all(grouped, total).subquery("answer")
        statement = sa.select(*answer.c).order_by(answer.c.hub_place)
        if offset is not None:
            skipped = sa.bindparam(offset, type_=sa.Integer())
            statement = statement.where(sa.or_(answer.c.hub_place == 0, answer.c.hub_place > skipped))
        return self._paged(statement, limit, None)

    def _paged(self, statement: sa.Select[Any], limit: str | None, offset: str | None) -> sa.Select[Any]:
        if limit is not None:
            statement = statement.limit(sa.bindparam(limit, type_=sa.Integer()))
        if offset is not None:
            statement = statement.offset(sa.bindparam(offset, type_=sa.Integer()))
        return statement

    def _group(self, group: GroupKey) -> sa.ColumnElement[Any]:
        spec = self._spec.column(group.column)
        if group.bucket is None:
            return self._compared(spec)
        return self._dialect.bucket(self._table.c[spec.name], spec.kind, group.bucket)

    def _measure(self, item: Measured) -> tuple[list[sa.ColumnElement[Any]], sa.ColumnElement[Any]]:
        """The columns selected for `item` and the expression it is ordered by."""
        if item.measure is Measure.COUNT:
            count = sa.func.count()
            return [count], count
        assert item.column is not None
        spec = self._spec.column(item.column)
        compared = self._compared(spec)
        if item.measure is Measure.COUNT_DISTINCT:
            distinct = sa.func.count(sa.distinct(compared))
            return [distinct], distinct
        if item.measure is Measure.MIN:
            low = sa.func.min(compared)
            return [low], low
        if item.measure is Measure.MAX:
            high = sa.func.max(compared)
            return [high], high
        column = self._table.c[spec.name]
        operand = self._dialect.summand(column, spec) if spec.kind is Kind.DECIMAL else column
        total: sa.ColumnElement[Any] = sa.func.sum(operand, type_=operand.type)
        if item.measure is Measure.SUM:
            return [total], total
        values = sa.func.count(column)
        # Multiplied by 1.0 first: SQLite divides integers as integers.
        quotient = total * sa.literal_column("1.0") / sa.func.nullif(values, sa.literal_column("0"))
        return [total, values], quotient
