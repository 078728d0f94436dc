"""Order: NULLs last ascending and first descending (the exact reverse), ties broken by the
key, so that every read of the same query returns the same rows in the same order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.base import OrderKey

if TYPE_CHECKING:
    from tests.contract.conftest import Loaded

# age 18: 7, 10; 25: 2, 6, 14; 30: 1, 3, 11; 41: 5, 12; 60: 9; NULL: 4, 8, 13
AGE_ORDER = [7, 10, 2, 6, 14, 1, 3, 11, 5, 12, 9, 4, 8, 13]


async def test_ascending_order_puts_nulls_last_and_ties_in_key_order(people: Loaded) -> None:
    assert await people.ids(order=[OrderKey("age")]) == AGE_ORDER


async def test_descending_order_puts_nulls_first(people: Loaded) -> None:
    # The column's order is reversed; ties still follow the key, which is ascending.
    nulls_then_oldest = [4, 8, 13, 9, 5, 12, 1, 3, 11, 2, 6, 14, 7, 10]
    assert await people.ids(order=[OrderKey("age", descending=True)]) == nulls_then_oldest


async def test_mixed_directions_order_each_key_in_turn(people: Loaded) -> None:
    order = [OrderKey("city"), OrderKey("age", descending=True)]
    # Beijing < Shanghai < beijing < 上海 < 北京 < NULL; within each, age descending, NULL first.
    assert await people.ids(order=order) == [1, 11, 7, 4, 8, 12, 9, 2, 5, 14, 6, 13, 3, 10]


async def test_an_order_by_the_key_itself_is_used_as_given(people: Loaded) -> None:
    assert await people.ids(order=[OrderKey("id", descending=True)]) == list(range(14, 0, -1))


async def test_no_order_means_key_order(people: Loaded) -> None:
    assert await people.ids() == list(range(1, 15))


async def test_decimals_sort_by_value(people: Loaded) -> None:
    by_amount = [4, 10, 2, 11, 12, 7, 8, 9, 1, 14, 3, 5, 6, 13]
    assert await people.ids(order=[OrderKey("amount")]) == by_amount


async def test_booleans_sort_false_first_then_true_then_null(people: Loaded) -> None:
    by_active_then_score_down = [11, 14, 6, 8, 2, 3, 1, 7, 12, 5, 10, 13, 9, 4]
    order = [OrderKey("active"), OrderKey("score", descending=True)]
    assert await people.ids(order=order) == by_active_then_score_down


async def test_datetimes_and_dates_sort_by_time(people: Loaded) -> None:
    latest_first = [3, 8, 12, 13, 6, 14, 10, 2, 1, 7, 11, 5, 4, 9]
    assert await people.ids(order=[OrderKey("seen", descending=True)]) == latest_first
    oldest_first = [9, 5, 12, 2, 11, 1, 14, 6, 4, 8, 10, 3, 7, 13]
    assert await people.ids(order=[OrderKey("born")]) == oldest_first
