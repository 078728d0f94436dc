"""A column of sums rounded at once (`exact_sums`) gives what rounding each (`exact_sum`) gives."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from connectors.aggregates import exact_sum, exact_sums
from connectors.base import Kind

COLUMNS: list[tuple[Kind, int, list[Any]]] = [
    # Decimals as drivers return them: at the column's scale, past it, short of it, None.
    (Kind.DECIMAL, 2, [Decimal("12.34"), Decimal("0.125"), Decimal("0.135"), Decimal("7"), None]),
    # Other types a driver may give for a decimal sum (SQLite's integers and floats).
    (Kind.DECIMAL, 2, [5, 2.675, -1, None]),
    (Kind.DECIMAL, 0, [Decimal("2.5"), Decimal("3.5"), Decimal("-2.5")]),
    (Kind.INT, 0, [Decimal("12"), 7, None]),
    (Kind.FLOAT, 0, [Decimal("1.5"), 2, None]),
]


@pytest.mark.parametrize(("kind", "scale", "totals"), COLUMNS)
def test_a_column_of_sums_rounds_as_each_sum_alone(kind: Kind, scale: int, totals: list[Any]) -> None:
    got = exact_sums(kind, scale, totals)
    want = [exact_sum(kind, scale, total) for total in totals]
    assert got == want
    assert [type(value) for value in got] == [type(value) for value in want]
    # Decimals keep their exponent too (the answer's string is "0.12", not "0.120").
    assert [str(value) for value in got] == [str(value) for value in want]


def test_decimal_sums_are_rounded_half_even_at_the_scale() -> None:
    assert [str(v) for v in exact_sums(Kind.DECIMAL, 2, [Decimal("0.125"), Decimal("0.135"), Decimal("1")])] == [
        "0.12",
        "0.14",
        "1.00",
    ]
