"""Strings compare and sort by Unicode code point, case-sensitively, on every backend, whatever
collation the column was declared in: 'a' differs from 'A' and from 'a ', and '' is a value."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from connectors.base import Compare, In, Op, OrderKey

if TYPE_CHECKING:
    from tests.contract.conftest import Loaded

# By code point: '' < 'A..Z' < 'a%b' < 'a/b' < 'a_b' < 'apple' < 'apple ' < 'axb' < 张 (U+5F20)
# < 李 (U+674E) < Ａ (U+FF21) < 😀 (U+1F600, beyond the 16-bit range), and NULL last.
NAME_ORDER = [4, 2, 10, 7, 12, 8, 1, 3, 9, 5, 6, 14, 13, 11]


async def test_strings_sort_by_code_point_with_nulls_last(people: Loaded) -> None:
    assert await people.ids(order=[OrderKey("name")]) == NAME_ORDER


async def test_descending_string_order_is_the_exact_reverse(people: Loaded) -> None:
    assert await people.ids(order=[OrderKey("name", descending=True)]) == NAME_ORDER[::-1]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("apple", [1]), ("Apple", [2]), ("apple ", [3]), ("", [4]), ("张三", [5]), ("😀", [13]), ("APPLE", [])],
)
async def test_string_equality_is_exact(people: Loaded, value: str, expected: list[int]) -> None:
    assert await people.ids(Compare("name", Op.EQ, value)) == expected
    assert await people.ids(In("name", (value,))) == expected


async def test_string_inequality_keeps_other_cases_and_spacings(people: Loaded) -> None:
    assert set(await people.ids(Compare("name", Op.NE, "apple"))) == set(NAME_ORDER) - {1, 11}


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        (Op.GT, "apple", {3, 9, 5, 6, 14, 13}),
        (Op.GTE, "apple", {1, 3, 9, 5, 6, 14, 13}),
        (Op.LT, "a", {4, 2, 10}),
        (Op.LTE, "", {4}),
        (Op.GTE, "张三", {5, 6, 14, 13}),
        (Op.LT, "Ａ", {4, 2, 10, 7, 12, 8, 1, 3, 9, 5, 6}),
    ],
)
async def test_string_ranges_follow_code_points(people: Loaded, op: Op, value: str, expected: set[int]) -> None:
    assert set(await people.ids(Compare("name", op, value))) == expected
