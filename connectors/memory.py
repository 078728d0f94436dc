"""An in-memory connector: tables as lists of rows, answering queries as the SQL connector does.

It exists for tests and demos that need no database, so it follows SQL, not Python, wherever
the two differ. Filters use SQL's three-valued logic: a comparison, `In` or `Like` on a NULL
column is *unknown*, not false, and `Not` of unknown is still unknown; a row is returned only
when its filter is true. So `ne` never matches NULL rows, and neither does `Not(eq)`; only
`IsNull` is ever true of a NULL. `In` with no values is false for every row (SQL cannot write
it; the SQL connector sends FALSE), and `In` values that are NULL match nothing but make a miss
unknown, as in SQL. A comparison with a NULL value is refused: it could never be true.

Strings compare by code point, case-sensitively; NULLs sort last ascending and first
descending; every order ends with the key. A missing column in a stored row reads as NULL.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connectors.aggregates import (
    AggregateQuery,
    Groups,
    Measure,
    Measured,
    average,
    average_order,
    bucket_of,
    exact_sum,
    ordered,
)
from connectors.base import (
    UNREADABLE,
    And,
    ColumnSpec,
    Compare,
    Filter,
    In,
    IsNull,
    Kind,
    Like,
    Match,
    Not,
    Op,
    Or,
    OrderKey,
    Page,
    PerGroup,
    Query,
    QueryError,
    Row,
    TableSpec,
    after_filter,
    conjoin,
)
from connectors.batch import OnChunk, fetch_in_chunks
from connectors.values import filter_value, load_zone, reader

# True, False or None for SQL's unknown.
Truth = bool | None
Predicate = Callable[[Row], Truth]

_COMPARE: dict[Op, Callable[[Any, Any], bool]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LTE: operator.le,
    Op.GT: operator.gt,
    Op.GTE: operator.ge,
}

_MATCH: dict[Match, Callable[[str, str], bool]] = {
    Match.CONTAINS: lambda value, text: text in value,
    Match.STARTS_WITH: str.startswith,
    Match.ENDS_WITH: str.endswith,
}


class MemoryConnector:
    """Tables held in memory, keyed by table name; rows map column names to values. Naive
    date-times in the rows are wall-clock times in `timezone`, as in a database."""

    def __init__(self, tables: Mapping[str, Sequence[Row]], *, timezone: str = "Asia/Shanghai") -> None:
        # A snapshot: the caller may change its lists later without changing what is read here.
        self._tables = {name: [dict(row) for row in rows] for name, rows in tables.items()}
        self._zone = load_zone(timezone)

    async def fetch(self, query: Query) -> Page:
        table = query.table
        columns = _columns(table, query.columns)
        if (query.limit is not None and query.limit < 0) or query.offset < 0:
            raise QueryError("limit and offset must not be negative")
        order = query.full_order()
        where = query.where
        if query.after is not None:
            if query.offset:
                raise QueryError("page by `after` or by offset, not both")
            where = conjoin(where, after_filter(order, query.after))
        rows = self._sorted(table, self._matching(table, where), order)
        rows = rows[query.offset :]
        cut: tuple[Any, ...] = ()
        if query.per_group is not None:
            query.check_groups()
            rows, cut = self._per_group(table, rows, query.per_group, query.limit)
        has_more = False
        if query.limit is not None:
            has_more = len(rows) > query.limit
            rows = rows[: query.limit]
        projected = self._project(table, rows, columns)
        unreadable = frozenset(name for name in columns if any(row[name] is UNREADABLE for row in projected))
        return Page(projected, has_more, unreadable=unreadable, cut=cut)

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        return len(self._matching(table, where))

    async def aggregate(self, query: AggregateQuery) -> Groups:
        query.check()
        table = query.table
        rows = self._matching(table, query.where)
        groups: dict[tuple[Any, ...], list[Row]] = {}
        for row in rows:
            key: list[Any] = []
            for group in query.groups:
                value = self._stored(table.column(group.column), row)
                key.append(value if group.bucket is None or value is None else bucket_of(group.bucket, value))
            groups.setdefault(tuple(key), []).append(row)
        if not query.groups:  # one answer, over no rows too
            groups = {(): rows}
        total: Row | None = None
        if query.with_total:
            total = {item.label: self._measure(table, item, rows)[0] for item in query.measures}
        answers: list[Row] = []
        sort_values: list[Row] = []
        for values, members in groups.items():
            answer: Row = {}
            for group, value in zip(query.groups, values, strict=True):
                spec = table.column(group.column)
                answer[group.label] = (
                    value if group.bucket is not None or value is None else reader(spec, self._zone)(value)
                )
            sorts = dict(answer)
            for item in query.measures:
                answer[item.label], sorts[item.label] = self._measure(table, item, members)
            answers.append(answer)
            sort_values.append(sorts)
        result = ordered(query, answers, sort_values)[query.offset :]
        has_more = query.limit is not None and len(result) > query.limit
        return Groups(result if query.limit is None else result[: query.limit], has_more, total)

    def _measure(self, table: TableSpec, item: Measured, rows: list[Row]) -> tuple[Any, Any]:
        """The measure's value over `rows`, and what it sorts by."""
        if item.measure is Measure.COUNT:
            return len(rows), len(rows)
        assert item.column is not None
        spec = table.column(item.column)
        values = [v for v in (self._stored(spec, row) for row in rows) if v is not None]
        if item.measure is Measure.COUNT_DISTINCT:
            return len(set(values)), len(set(values))
        if item.measure in (Measure.MIN, Measure.MAX):
            if not values:
                return None, None
            found = min(values) if item.measure is Measure.MIN else max(values)
            return reader(spec, self._zone)(found), found
        total = exact_sum(spec.kind, spec.scale, sum(values)) if values else None
        if item.measure is Measure.SUM:
            return total, total
        return average(spec.kind, spec.scale, total, len(values)), average_order(total, len(values))

    async def fetch_by(
        self,
        table: TableSpec,
        column: str,
        values: Sequence[Any],
        columns: Sequence[str],
        *,
        where: Filter | None = None,
        per_value: int | None = None,
        limit: int | None = None,
        order: Sequence[OrderKey] = (),
        on_chunk: OnChunk | None = None,
    ) -> Page:
        return await fetch_in_chunks(
            self.fetch,
            self._zone,
            table,
            column,
            values,
            columns,
            where=where,
            per_value=per_value,
            limit=limit,
            order=order,
            on_chunk=on_chunk,
        )

    async def close(self) -> None:
        return None

    # --- reading -----------------------------------------------------------------------------

    def _rows(self, table: TableSpec) -> list[Row]:
        try:
            return self._tables[table.name]
        except KeyError:
            raise QueryError(f"unknown table {table.name!r}") from None

    def _matching(self, table: TableSpec, where: Filter | None) -> list[Row]:
        rows = self._rows(table)
        if where is None:
            return list(rows)
        test = self._predicate(table, where)
        return [row for row in rows if test(row) is True]

    def _sorted(self, table: TableSpec, rows: list[Row], order: Sequence[OrderKey]) -> list[Row]:
        # One stable sort per key, last key first, gives the order of all keys together;
        # reverse=True keeps ties stable and puts the NULLs (last ascending) first.
        ordered = list(rows)
        for key in reversed(order):
            spec = table.column(key.column)
            ordered.sort(key=lambda row: self._sort_key(spec, row), reverse=key.descending)
        return ordered

    def _per_group(
        self, table: TableSpec, rows: list[Row], group: PerGroup, limit: int | None
    ) -> tuple[list[Row], tuple[Any, ...]]:
        """The first `group.limit` rows of each group, in order, and the groups cut (as read).
        A group cut past the overall limit is not known to be cut, as in SQL."""
        spec = table.column(group.column)
        read = reader(spec, self._zone)
        seen: dict[Any, int] = {}
        # Per group, where its last kept row stands: a cut past the overall limit goes unseen.
        last: dict[Any, int] = {}
        kept: list[Row] = []
        cut: list[Any] = []
        for row in rows:
            value = self._stored(spec, row)
            place = seen[value] = seen.get(value, 0) + 1
            if place <= group.limit:
                kept.append(row)
                last[value] = len(kept)
            elif place == group.limit + 1 and (limit is None or last[value] <= limit):
                raw = row.get(spec.name)
                cut.append(raw if read is None else read(raw))
        return kept, tuple(cut)

    def _sort_key(self, spec: ColumnSpec, row: Row) -> tuple[Any, ...]:
        value = self._stored(spec, row)
        return (1,) if value is None else (0, value)

    def _stored(self, spec: ColumnSpec, row: Row) -> Any:
        return filter_value(spec, row.get(spec.name), self._zone)

    def _project(self, table: TableSpec, rows: list[Row], columns: Sequence[str]) -> list[Row]:
        read = [(name, reader(table.column(name), self._zone)) for name in columns]
        return [{name: fn(row.get(name)) for name, fn in read} for row in rows]

    # --- filters -----------------------------------------------------------------------------

    def _predicate(self, table: TableSpec, where: Filter) -> Predicate:
        """`where` as a function of a row, built once per query so that a wrong column or
        value fails before any row is read, as it does in SQL."""
        match where:
            case Compare(column, op, value):
                spec = table.column(column)
                if value is None:
                    raise QueryError(f"compare {column!r} with null using isNull")
                return self._compare(spec, _COMPARE[op], filter_value(spec, value, self._zone))
            case In(column, values):
                spec = table.column(column)
                return self._in(spec, [filter_value(spec, v, self._zone) for v in values])
            case Like(column, match, text):
                spec = table.column(column)
                if spec.kind is not Kind.STRING or not isinstance(text, str):
                    raise QueryError(f"column {column!r} cannot be matched as text")
                return self._compare(spec, _MATCH[match], text)
            case IsNull(column, is_null):
                spec = table.column(column)
                return lambda row: (self._stored(spec, row) is None) == is_null
            case And(items):
                return _all([self._predicate(table, item) for item in items])
            case Or(items):
                return _any([self._predicate(table, item) for item in items])
            case Not(item):
                inner = self._predicate(table, item)
                return lambda row: _negate(inner(row))
        raise QueryError(f"unknown filter {where!r}")

    def _compare(self, spec: ColumnSpec, test: Callable[[Any, Any], bool], value: Any) -> Predicate:
        def predicate(row: Row) -> Truth:
            stored = self._stored(spec, row)
            return None if stored is None else test(stored, value)

        return predicate

    def _in(self, spec: ColumnSpec, values: list[Any]) -> Predicate:
        # A set: a batch read's IN holds thousands of values (filter values are all hashable,
        # and equal ones hash alike, so membership is equality as before).
        present = frozenset(v for v in values if v is not None)
        has_null = any(v is None for v in values)

        def predicate(row: Row) -> Truth:
            if not values:
                return False
            stored = self._stored(spec, row)
            if stored is None:
                return None
            if stored in present:
                return True
            return None if has_null else False

        return predicate


def _columns(table: TableSpec, columns: Sequence[str]) -> tuple[str, ...]:
    for name in columns:
        table.column(name)
    return tuple(dict.fromkeys(columns))


def _negate(truth: Truth) -> Truth:
    return None if truth is None else not truth


def _all(predicates: list[Predicate]) -> Predicate:
    def predicate(row: Row) -> Truth:
        result: Truth = True
        for test in predicates:
            truth = test(row)
            if truth is False:
                return False
            if truth is None:
                result = None
        return result

    return predicate


def _any(predicates: list[Predicate]) -> Predicate:
    def predicate(row: Row) -> Truth:
        result: Truth = False
        for test in predicates:
            truth = test(row)
            if truth is True:
                return True
            if truth is None:
                result = None
        return result

    return predicate
