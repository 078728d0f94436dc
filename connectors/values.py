"""Values of each column `Kind`: the filter values a column accepts and the values a row holds.

Both connectors go through these functions, so that a filter means the same thing and a row
reads the same on every backend. A connector declares one time zone: naive date-times stored
in its database are wall-clock times there. Filters compare in that wall-clock time (an aware
filter value is converted to it) and rows come back as aware date-times in that zone.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.base import ColumnSpec, Kind, QueryError

Reader = Callable[[Any], Any]
ColumnReader = Callable[[Sequence[Any]], Sequence[Any]]
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


def reader(spec: ColumnSpec, zone: ZoneInfo) -> Reader | None:
    """The function turning what a driver returns for `spec` into its kind; None where the
    driver's value already is (so large reads skip a call per value)."""
    kind = spec.kind
    if kind is Kind.DECIMAL:
        return _decimal_reader(spec.scale)
    if kind is Kind.DATETIME:
        return lambda value: None if value is None else _aware(value, zone)
    return _READ.get(kind)


def read_column(spec: ColumnSpec, zone: ZoneInfo, values: Sequence[Any]) -> Sequence[Any]:
    """A fetched column of `spec` read as `reader` reads each value, at once. A column whose
    values the driver already returned as the kind's own type (or null) is kept as it is: a
    large page then costs no call per value."""
    read = column_reader(spec, zone)
    return values if read is None else read(values)


def column_reader(spec: ColumnSpec, zone: ZoneInfo) -> ColumnReader | None:
    """`read_column` for `spec`, made once: the function reading a whole fetched column, or
    None where the driver's values are always the kind's own (strings). A connector keeps
    these per statement, so a one-row read does not work out each column's reader again."""
    kind = spec.kind
    read = reader(spec, zone)
    if read is None:
        return None
    own = _OWN_TYPES.get(kind, frozenset())
    if kind is Kind.DECIMAL:
        exponent = decimal.Decimal(1).scaleb(-spec.scale)
        quantize = _DECIMALS.quantize  # as Decimal.quantize(exponent, context=...), without keywords

        def decimals(values: Sequence[Any]) -> Sequence[Any]:
            kinds = set(map(type, values))
            kinds.discard(NoneType)
            if kinds <= _DECIMAL_TYPE:
                return [None if v is None else quantize(v, exponent) for v in values]
            return [*map(read, values)]

        return decimals
    if kind is Kind.DATETIME:
        # `_aware` inlined: naive wall-clock times take the zone, aware ones move to its clock.
        # combine() makes the same value as replace(tzinfo=zone) (fold included) several times
        # faster: replace() parses its keywords on every call.
        combine = dt.datetime.combine

        def moments(values: Sequence[Any]) -> Sequence[Any]:
            kinds = set(map(type, values))
            kinds.discard(NoneType)
            if kinds <= _DATETIME_TYPE:
                return [
                    None if v is None else combine(v, v.time(), zone) if v.tzinfo is None else v.astimezone(zone)
                    for v in values
                ]
            return [*map(read, values)]

        return moments

    def others(values: Sequence[Any]) -> Sequence[Any]:
        kinds = set(map(type, values))
        kinds.discard(NoneType)
        return values if kinds <= own else [*map(read, values)]

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


def _decimal_reader(scale: int) -> Reader:
    exponent = decimal.Decimal(1).scaleb(-scale)

    def read(value: Any) -> decimal.Decimal | None:
        if value is None:
            return None
        if isinstance(value, float):  # SQLite keeps decimals as floats
            value = repr(value)
        return decimal.Decimal(value).quantize(exponent, context=_DECIMALS)

    return read


def _aware(value: Any, zone: ZoneInfo) -> dt.datetime:
    moment: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)


def _read_int(value: Any) -> int | None:
    return value if value is None or type(value) is int else int(value)


def _read_float(value: Any) -> float | None:
    return value if value is None or type(value) is float else float(value)


def _read_bool(value: Any) -> bool | None:
    # MariaDB keeps booleans as TINYINT(1) and SQLite as 0/1.
    return None if value is None else bool(value)


def _read_date(value: Any) -> dt.date | None:
    if value is None or type(value) is dt.date:
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(value)


def _read_bytes(value: Any) -> bytes | None:
    return value if value is None or type(value) is bytes else bytes(value)


_DECIMAL_TYPE = frozenset({decimal.Decimal})
_DATETIME_TYPE = frozenset({dt.datetime})
# The types each kind's reader returns unchanged (exact types: a bool is not an INT's int).
_OWN_TYPES: dict[Kind, frozenset[type]] = {
    Kind.INT: frozenset({int}),
    Kind.FLOAT: frozenset({float}),
    Kind.BOOL: frozenset({bool}),
    Kind.DATE: frozenset({dt.date}),
    Kind.BYTES: frozenset({bytes}),
}

_READ: dict[Kind, Reader] = {
    Kind.INT: _read_int,
    Kind.FLOAT: _read_float,
    Kind.BOOL: _read_bool,
    Kind.DATE: _read_date,
    Kind.BYTES: _read_bytes,
}
