"""The aggregate read: measures over the rows a filter selects, optionally grouped, in one statement.

An `AggregateQuery` names its measures (count, count distinct, sum, average, minimum, maximum),
its group keys (a column, or a column's time bucket: the day, ISO week, month, quarter or year
that holds it, in the connection's time zone), a filter, an order over group keys and measures,
and a page of groups. Every label (of a group key or a measure) is unique; the answer's rows
map labels to values. With `with_total`, the same statement also gives the measures over every
row the filter selects (the answer's `total`), so that a caller wanting both the groups and
the whole never runs two statements.

The semantics every connector shares, pinned down by tests/contract/test_connector_aggregates.py:

- NULLs form their own group; count distinct, sum, average, minimum and maximum ignore NULLs;
  `count` counts rows. An empty set's sum, average, minimum and maximum are null, its count 0.
  Without group keys there is exactly one row, even over no rows.
- Strings group, count distinct and compare by code point, case-sensitively.
- Sums of decimals are exact, at the column's scale; sums of integers are integers. An average of
  decimals is the exact sum over the count of values, rounded half-even to the column's scale;
  of integers, that quotient as a float; of floats, a float. Buckets are dates (their first day).
- Groups are ordered by the order given, then by every group key ascending, so pages are
  stable; NULLs sort last ascending and first descending. An average orders by its unrounded
  value, so groups whose averages round alike may order by what rounding hid.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from connectors.base import Filter, Kind, QueryError, Row, TableSpec


class Measure(enum.Enum):
    COUNT = "count"  # rows; takes no column
    COUNT_DISTINCT = "countDistinct"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"


class Bucket(enum.Enum):
    """Calendar periods a date or date-time column groups by, each named by its first day."""

    DAY = "day"
    WEEK = "week"  # ISO weeks, from Monday
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


NUMERIC = frozenset({Kind.INT, Kind.FLOAT, Kind.DECIMAL})
# Kinds with an order a minimum means something in (booleans and bytes have none a user wants).
ORDERED = frozenset({Kind.INT, Kind.FLOAT, Kind.DECIMAL, Kind.STRING, Kind.DATE, Kind.DATETIME})
TEMPORAL = frozenset({Kind.DATE, Kind.DATETIME})

# Enough digits for any sum a department keeps (as connectors/values.py reads decimals).
_EXACT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Measured:
    """One measure of the answer, under `label`; `column` is None for COUNT."""

    label: str
    measure: Measure
    column: str | None = None


@dataclass(frozen=True)
class GroupKey:
    """One group key, under `label`: a column's value, or the bucket holding it."""

    label: str
    column: str
    bucket: Bucket | None = None


@dataclass(frozen=True)
class AggregateOrder:
    label: str
    descending: bool = False


@dataclass(frozen=True)
class AggregateQuery:
    table: TableSpec
    measures: tuple[Measured, ...]
    groups: tuple[GroupKey, ...] = ()
    where: Filter | None = None
    order: tuple[AggregateOrder, ...] = ()
    limit: int | None = None
    offset: int = 0
    # Whether the answer also holds the measures over every row (Groups.total); grouped only.
    with_total: bool = False

    def check(self) -> None:
        """Refuses a query the contract does not define, before any statement is built."""
        labels = [g.label for g in self.groups] + [m.label for m in self.measures]
        if len(set(labels)) != len(labels):
            raise QueryError("every group key and measure needs its own label")
        for group in self.groups:
            kind = self.table.column(group.column).kind
            if kind is Kind.BYTES:
                raise QueryError(f"column {group.column!r} cannot be a group key")
            if group.bucket is not None and kind not in TEMPORAL:
                raise QueryError(f"column {group.column!r} has no time buckets")
        for item in self.measures:
            if item.measure is Measure.COUNT:
                if item.column is not None:
                    raise QueryError("count counts rows and takes no column")
                continue
            if item.column is None:
                raise QueryError(f"{item.measure.value} needs a column")
            kind = self.table.column(item.column).kind
            if item.measure in (Measure.SUM, Measure.AVG) and kind not in NUMERIC:
                raise QueryError(f"column {item.column!r} is not a number")
            if item.measure in (Measure.MIN, Measure.MAX) and kind not in ORDERED:
                raise QueryError(f"column {item.column!r} has no order")
        ordered = [key.label for key in self.order]
        if len(set(ordered)) != len(ordered):
            raise QueryError("a label appears twice in the order")
        unknown = set(ordered) - set(labels)
        if unknown:
            raise QueryError(f"the order names no group key or measure {sorted(unknown)[0]!r}")
        if (self.limit is not None and self.limit < 0) or self.offset < 0:
            raise QueryError("limit and offset must not be negative")
        if self.with_total and not self.groups:
            raise QueryError("an aggregate without group keys is its own total")

    def full_order(self) -> tuple[AggregateOrder, ...]:
        """The order as run: then every group key not yet named, ascending."""
        named = {key.label for key in self.order}
        return (*self.order, *(AggregateOrder(g.label) for g in self.groups if g.label not in named))

    def measure(self, label: str) -> Measured | None:
        return next((m for m in self.measures if m.label == label), None)


@dataclass
class Groups:
    """The answer's rows (label -> value), in order, and whether groups lie past the limit;
    with `with_total`, the measures over every row (its group keys absent), else None."""

    rows: list[Row]
    has_more: bool = False
    total: Row | None = None


# --- what every connector computes alike ------------------------------------------------------


def bucket_of(bucket: Bucket, value: dt.date) -> dt.date:
    """The first day of the bucket holding `value` (a wall-clock date-time is cut to its date)."""
    day = value.date() if isinstance(value, dt.datetime) else value
    if bucket is Bucket.DAY:
        return day
    if bucket is Bucket.WEEK:
        return day - dt.timedelta(days=day.weekday())
    if bucket is Bucket.MONTH:
        return day.replace(day=1)
    if bucket is Bucket.QUARTER:
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def exact_sum(kind: Kind, scale: int, total: Any) -> Any:
    """A sum as the contract gives it: an int, a float, or a decimal at `scale`."""
    if total is None:
        return None
    if kind is Kind.INT:
        return int(total)
    if kind is Kind.FLOAT:
        return float(total)
    return _EXACT.quantize(decimal.Decimal(total), _quantum(scale))


def exact_sums(kind: Kind, scale: int, totals: Sequence[Any]) -> list[Any]:
    """`exact_sum` of each of a column's sums, the rounding looked up once for the column:
    a grouped read has a sum per group, up to 10,000 of them."""
    if kind is not Kind.DECIMAL:
        return [exact_sum(kind, scale, total) for total in totals]
    quantize, quantum, exact = _EXACT.quantize, _quantum(scale), decimal.Decimal
    # Decimal(total) of a Decimal is the same value: skipped, as is the call per value.
    return [
        None if total is None else quantize(total if type(total) is exact else exact(total), quantum)
        for total in totals
    ]


def _quantum(scale: int) -> decimal.Decimal:
    """1 at the `scale`-th decimal place (0.01 for 2), made once per scale: a sum is rounded
    to it per group."""
    found = _QUANTA.get(scale)
    if found is None:
        found = _QUANTA[scale] = decimal.Decimal(1).scaleb(-scale)
    return found


_QUANTA: dict[int, decimal.Decimal] = {}


def average(kind: Kind, scale: int, total: Any, count: int) -> Any:
    """The average from an exact sum (as `exact_sum` gives it) and the number of values."""
    if total is None or not count:
        return None
    if kind is Kind.DECIMAL:
        quotient = _EXACT.divide(decimal.Decimal(total), decimal.Decimal(count))
        return _EXACT.quantize(quotient, _quantum(scale))
    # int / int is correctly rounded, so every backend's exact integer sum gives one float.
    return total / count


def average_order(total: Any, count: int) -> Fraction | float | None:
    """What an average sorts by: its unrounded value."""
    if total is None or not count:
        return None
    if isinstance(total, float):
        return total / count
    return Fraction(total) / count


def ordered(query: AggregateQuery, rows: Sequence[Row], sort_values: Sequence[Row]) -> list[Row]:
    """`rows` in the query's full order, `sort_values` holding what each row sorts by (NULLs
    last ascending, first descending); for connectors that order in Python."""
    paired = list(zip(rows, sort_values, strict=True))
    for key in reversed(query.full_order()):
        paired.sort(key=lambda pair: _sort_key(pair[1][key.label]), reverse=key.descending)
    return [row for row, _ in paired]


def _sort_key(value: Any) -> tuple[Any, ...]:
    return (1,) if value is None else (0, value)
