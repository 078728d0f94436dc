"""Values of each column `Kind`: the filter values a column accepts and the values a row holds.

Both connectors go through these functions, so that a filter means the same thing and a row
reads the same on every backend. A connector declares one time zone: naive date-times stored
in its database are wall-clock times there. Filters compare in that wall-clock time (an aware
filter value is converted to it) and rows come back as aware date-times in that zone.

Reading a row value never raises: whatever a department database holds in a column is either a
value of the column's kind or `UNREADABLE` (connectors/base.py), which the hub reports as
DATA_INTEGRITY at that cell.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.base import UNREADABLE, ColumnSpec, Kind, QueryError, Unreadable

Reader = Callable[[Any], Any]
# A whole column read, and whether any of its values is UNREADABLE.
ColumnReader = Callable[[Sequence[Any]], tuple[Sequence[Any], bool]]
NoneType = type(None)

# Enough digits for any amount a department keeps; the default context's 28 would make
# quantize() fail on wide NUMERIC columns instead of returning their value.
_DECIMALS = decimal.Context(prec=80)


def load_zone(name: str) -> ZoneInfo:
    """The zone of naive date-times; ValueError names a zone that does not exist."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def filter_value(spec: ColumnSpec, value: Any, zone: ZoneInfo) -> Any:
    """`value` in the form `spec`'s column compares with; QueryError when it is of another
    kind. None passes through: what a NULL means is for the caller to decide."""
    if value is None:
        return None
    try:
        return _FILTER[spec.kind](value, zone)
    except (TypeError, ValueError, ArithmeticError):
        raise QueryError(f"column {spec.name!r} takes {spec.kind.value} values") from None


def reader(spec: ColumnSpec, zone: ZoneInfo) -> Reader:
    """The function turning what a driver returns for `spec` into its kind: total, a value that
    is not one of the kind (or does not fit the column) becomes UNREADABLE, never an error."""
    kind = spec.kind
    if kind is Kind.DECIMAL:
        return _decimal_reader(spec.scale)
    if kind is Kind.DATETIME:
        return lambda value: None if value is None else _aware(value, zone)
    if kind is Kind.INT:
        return _int_reader(spec.bits)
    return _READ[kind]


def read_column(spec: ColumnSpec, zone: ZoneInfo, values: Sequence[Any]) -> Sequence[Any]:
    """A fetched column of `spec` read as `reader` reads each value, at once. A column whose
    values the driver already returned as the kind's own type (or null) is kept as it is: a
    large page then costs no call per value."""
    return column_reader(spec, zone)(values)[0]


def column_reader(spec: ColumnSpec, zone: ZoneInfo) -> ColumnReader:
    """`read_column` for `spec`, made once: the function reading a whole fetched column, and
    telling whether any of its values came out UNREADABLE. A connector keeps these per
    statement, so a one-row read does not work out each column's reader again. Only a column
    that takes the per-value path can hold an UNREADABLE value, so only that one is searched."""
    kind = spec.kind
    read = reader(spec, zone)
    own = _OWN_TYPES.get(kind, frozenset())

    def each(values: Sequence[Any]) -> tuple[Sequence[Any], bool]:
        out = [*map(read, values)]
        return out, UNREADABLE in out

    if kind is Kind.DECIMAL:
        exponent = decimal.Decimal(1).scaleb(-spec.scale)
        quantize = _DECIMALS.quantize  # as Decimal.quantize(exponent, context=...), without keywords

        def decimals(values: Sequence[Any]) -> tuple[Sequence[Any], bool]:
            kinds = set(map(type, values))
            kinds.discard(NoneType)
            # Zeros and nulls are finite: filter(None) skips them, NaN and infinities are true.
            if kinds <= _DECIMAL_TYPE and all(map(_FINITE, filter(None, values))):
                try:
                    return [None if v is None else quantize(v, exponent) for v in values], False
                except ArithmeticError:
                    pass  # more digits than the context holds: read one by one
            return each(values)

        return decimals
    if kind is Kind.DATETIME:
        # `_aware` inlined: naive wall-clock times take the zone, aware ones move to its clock.
        # combine() makes the same value as replace(tzinfo=zone) (fold included) several times
        # faster: replace() parses its keywords on every call.
        combine = dt.datetime.combine

        def moments(values: Sequence[Any]) -> tuple[Sequence[Any], bool]:
            kinds = set(map(type, values))
            kinds.discard(NoneType)
            if kinds <= _DATETIME_TYPE:
                try:
                    return [
                        None if v is None else combine(v, v.time(), zone) if v.tzinfo is None else v.astimezone(zone)
                        for v in values
                    ], False
                except (OverflowError, ValueError):
                    pass  # a moment the zone's clock cannot show (near the ends of the calendar)
            return each(values)

        return moments
    if kind is Kind.FLOAT:

        def floats(values: Sequence[Any]) -> tuple[Sequence[Any], bool]:
            kinds = set(map(type, values))
            kinds.discard(NoneType)
            if kinds <= own and all(map(math.isfinite, filter(None, values))):
                return values, False
            return each(values)

        return floats

    def others(values: Sequence[Any]) -> tuple[Sequence[Any], bool]:
        kinds = set(map(type, values))
        kinds.discard(NoneType)
        if kinds <= own:
            return values, False
        return each(values)

    if kind is Kind.INT:
        low, high = -(1 << (spec.bits - 1)), (1 << (spec.bits - 1)) - 1

        def ints(values: Sequence[Any]) -> tuple[Sequence[Any], bool]:
            kinds = set(map(type, values))
            nulls = NoneType in kinds
            kinds.discard(NoneType)
            if kinds <= own:
                # The driver's ints may be wider than the column's kind: min and max say at once.
                present = [v for v in values if v is not None] if nulls else values
                if not present or (low <= min(present) and max(present) <= high):
                    return values, False
            return each(values)

        return ints
    return others


# --- filter values --------------------------------------------------------------------------


def _string(value: Any, zone: ZoneInfo) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value


def _int(value: Any, zone: ZoneInfo) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError
    return value


def _float(value: Any, zone: ZoneInfo) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise TypeError
    return float(value)


def _decimal(value: Any, zone: ZoneInfo) -> decimal.Decimal:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, float):
        value = repr(value)  # the shortest text of a float is the number a person meant
    if not isinstance(value, decimal.Decimal | int | str):
        raise TypeError
    number = decimal.Decimal(value)
    if not number.is_finite():
        raise ValueError
    return number


def _bool(value: Any, zone: ZoneInfo) -> bool:
    if not isinstance(value, bool):
        raise TypeError
    return value


def _date(value: Any, zone: ZoneInfo) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise TypeError
    return value


def _local(value: Any, zone: ZoneInfo) -> dt.datetime:
    # The database keeps naive wall-clock times of the connector's zone, so that is what a
    # filter compares; an aware value is the same instant read on that zone's clock.
    if not isinstance(value, dt.datetime):
        raise TypeError
    if value.tzinfo is None:
        return value
    return value.astimezone(zone).replace(tzinfo=None)


def _bytes(value: Any, zone: ZoneInfo) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError
    return bytes(value)


_FILTER: dict[Kind, Callable[[Any, ZoneInfo], Any]] = {
    Kind.STRING: _string,
    Kind.INT: _int,
    Kind.FLOAT: _float,
    Kind.DECIMAL: _decimal,
    Kind.BOOL: _bool,
    Kind.DATE: _date,
    Kind.DATETIME: _local,
    Kind.BYTES: _bytes,
}


# --- row values -----------------------------------------------------------------------------
# Each reader is total: a value a department database can hold either reads as the kind, or
# is UNREADABLE. None of them raises, so one bad cell never costs its row or its page.


def _decimal_reader(scale: int) -> Reader:
    exponent = decimal.Decimal(1).scaleb(-scale)

    def read(value: Any) -> decimal.Decimal | Unreadable | None:
        if value is None:
            return None
        if isinstance(value, float):  # SQLite keeps decimals as floats
            value = repr(value)
        elif isinstance(value, bool) or not isinstance(value, decimal.Decimal | int | str):
            return UNREADABLE
        try:
            number = decimal.Decimal(value)
            if not number.is_finite():
                return UNREADABLE
            return number.quantize(exponent, context=_DECIMALS)
        except ArithmeticError:  # not a number, or more digits than any amount has
            return UNREADABLE

    return read


def _aware(value: Any, zone: ZoneInfo) -> dt.datetime | Unreadable:
    try:
        if isinstance(value, str):
            moment = dt.datetime.fromisoformat(value)
        elif isinstance(value, dt.datetime):
            moment = value
        else:
            return UNREADABLE
        return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
    except (ValueError, OverflowError):
        return UNREADABLE


_DIGITS = re.compile(r"[+-]?[0-9]+")


def _int_reader(bits: int) -> Reader:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def read(value: Any) -> int | Unreadable | None:
        if value is None:
            return None
        if type(value) is not int:
            if not _integral(value):
                return UNREADABLE
            value = int(value)
        return value if low <= value <= high else UNREADABLE

    return read


def _integral(value: Any) -> bool:
    """Whether `value`, not an int, stands for a whole number a driver may hand an INT column:
    a bool or int subclass, a whole float or decimal, or decimal digits (SQLite keeps text)."""
    if isinstance(value, int):
        return True
    if isinstance(value, float | decimal.Decimal):
        return math.isfinite(value) and value == int(value)
    return isinstance(value, str) and len(value) < 30 and _DIGITS.fullmatch(value) is not None


def _read_float(value: Any) -> float | Unreadable | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, float | int | decimal.Decimal):
        return UNREADABLE
    try:
        number = float(value)
    except OverflowError:
        return UNREADABLE
    return number if math.isfinite(number) else UNREADABLE


def _read_bool(value: Any) -> bool | Unreadable | None:
    # MariaDB keeps booleans as TINYINT(1) and SQLite as 0/1.
    if value is None or type(value) is bool:
        return value
    return bool(value) if isinstance(value, int) else UNREADABLE


def _read_date(value: Any) -> dt.date | Unreadable | None:
    if value is None or type(value) is dt.date:
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:  # MariaDB's zero date '0000-00-00' among others
            return UNREADABLE
    return UNREADABLE


def _read_bytes(value: Any) -> bytes | str | Unreadable | None:
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    # Text where bytes are stored (SQLite keeps what it is given): the hub's cipher reads the
    # text form of a stored value, and refuses anything else cleanly.
    return value if isinstance(value, str) else UNREADABLE


def _read_string(value: Any) -> str | Unreadable | None:
    if value is None or type(value) is str:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return UNREADABLE
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a number SQLite kept in a column without text affinity
    return UNREADABLE


_DECIMAL_TYPE = frozenset({decimal.Decimal})
_DATETIME_TYPE = frozenset({dt.datetime})
_FINITE = decimal.Decimal.is_finite
# The types each kind's reader returns unchanged (exact types: a bool is not an INT's int).
_OWN_TYPES: dict[Kind, frozenset[type]] = {
    Kind.STRING: frozenset({str}),
    Kind.INT: frozenset({int}),
    Kind.FLOAT: frozenset({float}),
    Kind.BOOL: frozenset({bool}),
    Kind.DATE: frozenset({dt.date}),
    Kind.BYTES: frozenset({bytes}),
}

_READ: dict[Kind, Reader] = {
    Kind.STRING: _read_string,
    Kind.FLOAT: _read_float,
    Kind.BOOL: _read_bool,
    Kind.DATE: _read_date,
    Kind.BYTES: _read_bytes,
}
