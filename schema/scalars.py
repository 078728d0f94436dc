"""Python types of catalog field types, and the filter inputs of each scalar kind.

Filter inputs are fixed types shared by every entity: one per scalar kind, so the SDL stays
small and apps learn one filter vocabulary.
"""

import dataclasses
import datetime
import decimal
from typing import Any

import strawberry
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition

from hub.catalog.manifest import FieldType

PYTHON_TYPE: dict[FieldType, Any] = {
    FieldType.ID: strawberry.ID,
    FieldType.STRING: str,
    FieldType.INT: int,
    FieldType.FLOAT: float,
    FieldType.DECIMAL: decimal.Decimal,
    FieldType.BOOLEAN: bool,
    FieldType.DATE: datetime.date,
    FieldType.DATETIME: datetime.datetime,
}


def _aware(value: object) -> datetime.datetime:
    """strawberry's DateTime, refusing a value without an offset: "2026-01-01" would otherwise
    be read in some zone the caller never named (each department's naive columns have their
    own), so a filter would silently cut at another hour than the caller meant."""
    moment = DateTimeDefinition.parse_value(value)  # type: ignore[misc]
    assert isinstance(moment, datetime.datetime)
    if moment.tzinfo is None:
        raise StrawberryInputCoercionError(
            f'Value cannot represent a DateTime: "{str(value)[:40]}". '
            "It needs an offset, as in 2026-01-01T00:00:00+08:00 or 2026-01-01T00:00:00Z."
        )
    return moment


# The DateTime scalar of the schema (builder.py's scalar_overrides): the SDL is unchanged.
AWARE_DATETIME: ScalarDefinition = dataclasses.replace(DateTimeDefinition, parse_value=_aware)


@strawberry.input(description="Conditions on a text value. Strings compare by code point, case-sensitively.")
class StringFilter:
    eq: str | None = None
    ne: str | None = None
    in_: list[str] | None = strawberry.field(default=None, name="in")
    lt: str | None = None
    lte: str | None = None
    gt: str | None = None
    gte: str | None = None
    contains: str | None = strawberry.field(default=None, description="`%` and `_` match themselves.")
    startsWith: str | None = None
    endsWith: str | None = None
    isNull: bool | None = None


@strawberry.input(description="Conditions on a whole number.")
class IntFilter:
    eq: int | None = None
    ne: int | None = None
    in_: list[int] | None = strawberry.field(default=None, name="in")
    lt: int | None = None
    lte: int | None = None
    gt: int | None = None
    gte: int | None = None
    isNull: bool | None = None


@strawberry.input(description="Conditions on a floating-point number.")
class FloatFilter:
    eq: float | None = None
    ne: float | None = None
    in_: list[float] | None = strawberry.field(default=None, name="in")
    lt: float | None = None
    lte: float | None = None
    gt: float | None = None
    gte: float | None = None
    isNull: bool | None = None


@strawberry.input(description="Conditions on a decimal amount (money), given as a string.")
class DecimalFilter:
    eq: decimal.Decimal | None = None
    ne: decimal.Decimal | None = None
    in_: list[decimal.Decimal] | None = strawberry.field(default=None, name="in")
    lt: decimal.Decimal | None = None
    lte: decimal.Decimal | None = None
    gt: decimal.Decimal | None = None
    gte: decimal.Decimal | None = None
    isNull: bool | None = None


@strawberry.input(description="Conditions on a calendar date.")
class DateFilter:
    eq: datetime.date | None = None
    ne: datetime.date | None = None
    in_: list[datetime.date] | None = strawberry.field(default=None, name="in")
    lt: datetime.date | None = None
    lte: datetime.date | None = None
    gt: datetime.date | None = None
    gte: datetime.date | None = None
    isNull: bool | None = None


@strawberry.input(description="Conditions on a moment in time (ISO-8601 with an offset).")
class DateTimeFilter:
    eq: datetime.datetime | None = None
    ne: datetime.datetime | None = None
    in_: list[datetime.datetime] | None = strawberry.field(default=None, name="in")
    lt: datetime.datetime | None = None
    lte: datetime.datetime | None = None
    gt: datetime.datetime | None = None
    gte: datetime.datetime | None = None
    isNull: bool | None = None


@strawberry.input(description="Conditions on a true/false value.")
class BooleanFilter:
    eq: bool | None = None
    ne: bool | None = None
    isNull: bool | None = None


@strawberry.input(
    description="Conditions on a value encrypted at rest: equality through its blind index (ID numbers compare "
    "upper-cased, mobile numbers as 11 digits), and presence. Fields without a blind index take isNull only."
)
class EncryptedFilter:
    eq: str | None = None
    ne: str | None = None
    in_: list[str] | None = strawberry.field(default=None, name="in")
    isNull: bool | None = None


FILTER_INPUT: dict[FieldType, type] = {
    FieldType.ID: StringFilter,
    FieldType.STRING: StringFilter,
    FieldType.INT: IntFilter,
    FieldType.FLOAT: FloatFilter,
    FieldType.DECIMAL: DecimalFilter,
    FieldType.BOOLEAN: BooleanFilter,
    FieldType.DATE: DateFilter,
    FieldType.DATETIME: DateTimeFilter,
}


@strawberry.type(description="Where a page ends and whether another follows.")
class PageInfo:
    hasNextPage: bool
    endCursor: str | None
