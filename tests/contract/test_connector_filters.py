"""Filters mean the same on every backend, NULLs included: SQL's three-valued logic, where a
comparison with NULL is unknown, `Not` of unknown stays unknown, and only true rows return."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from connectors.base import And, Compare, In, IsNull, Like, Match, Not, Op, Or, QueryError

if TYPE_CHECKING:
    from tests.contract.conftest import Backend, Loaded

ALL = set(range(1, 15))
UTC = dt.UTC


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        (Op.EQ, 30, {1, 3, 11}),
        (Op.NE, 30, {2, 5, 6, 7, 9, 10, 12, 14}),
        (Op.LT, 25, {7, 10}),
        (Op.LTE, 25, {2, 6, 7, 10, 14}),
        (Op.GT, 41, {9}),
        (Op.GTE, 41, {5, 9, 12}),
    ],
)
async def test_comparisons_never_match_null_columns(people: Loaded, op: Op, value: int, expected: set[int]) -> None:
    assert set(await people.ids(Compare("age", op, value))) == expected


async def test_ne_excludes_rows_where_the_column_is_null(people: Loaded) -> None:
    ids = set(await people.ids(Compare("city", Op.NE, "Beijing")))
    assert ids == {2, 4, 5, 6, 8, 9, 12, 14}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        pytest.param(Compare("score", Op.GT, 2.25), {6, 8, 9, 11, 14}, id="float"),
        pytest.param(Compare("amount", Op.GTE, Decimal("5.00")), {1, 3, 5, 7, 8, 9, 14}, id="decimal"),
        pytest.param(Compare("amount", Op.EQ, Decimal("0.1")), {2}, id="decimal-scale"),
        pytest.param(Compare("amount", Op.EQ, 5), {7, 8}, id="decimal-int"),
        pytest.param(Compare("active", Op.EQ, True), {1, 3, 5, 7, 10, 12}, id="bool"),
        pytest.param(Compare("active", Op.NE, True), {2, 6, 8, 11, 14}, id="bool-ne"),
        pytest.param(Compare("born", Op.LT, dt.date(1980, 1, 1)), {5, 9, 12}, id="date"),
        pytest.param(Compare("seen", Op.GTE, dt.datetime(2024, 3, 1, 8)), {1, 2, 6, 7, 10, 14}, id="datetime"),
        pytest.param(Compare("photo", Op.EQ, b""), {3}, id="bytes-empty"),
        pytest.param(Compare("photo", Op.EQ, b"\xff"), {5}, id="bytes"),
    ],
)
async def test_every_kind_compares_by_value(people: Loaded, where: Compare, expected: set[int]) -> None:
    assert set(await people.ids(where)) == expected


async def test_aware_filter_values_compare_in_the_connectors_zone(people: Loaded) -> None:
    # 00:00 UTC is 08:00 in Asia/Shanghai, the zone the naive column is read in.
    midnight_utc = dt.datetime(2024, 3, 1, tzinfo=UTC)
    assert set(await people.ids(Compare("seen", Op.EQ, midnight_utc))) == {1, 7}
    assert set(await people.ids(Compare("seen", Op.GTE, midnight_utc))) == {1, 2, 6, 7, 10, 14}
    tokyo = dt.datetime(2024, 3, 1, 9, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert set(await people.ids(Compare("seen", Op.EQ, tokyo))) == {1, 7}


async def test_naive_columns_follow_the_declared_zone(backend: Backend) -> None:
    utc = await backend.load_people(timezone="UTC")
    assert set(await utc.ids(Compare("seen", Op.EQ, dt.datetime(2024, 3, 1, 8, tzinfo=UTC)))) == {1, 7}


async def test_in_matches_any_listed_value(people: Loaded) -> None:
    assert set(await people.ids(In("age", (18, 25)))) == {2, 6, 7, 10, 14}
    assert set(await people.ids(In("name", ("apple", "ZEBRA", "张三")))) == {1, 5}


async def test_in_with_no_values_matches_nothing_and_its_negation_everything(people: Loaded) -> None:
    assert await people.ids(In("age", ())) == []
    assert set(await people.ids(Not(In("age", ())))) == ALL


async def test_in_with_a_null_value_makes_a_miss_unknown(people: Loaded) -> None:
    assert set(await people.ids(In("age", (30, None)))) == {1, 3, 11}
    assert await people.ids(Not(In("age", (30, None)))) == []


@pytest.mark.parametrize(
    ("match", "text", "expected"),
    [
        (Match.CONTAINS, "%", {7}),
        (Match.CONTAINS, "_", {8}),
        (Match.CONTAINS, "/", {12}),
        (Match.STARTS_WITH, "a%", {7}),
        (Match.ENDS_WITH, "_b", {8}),
        (Match.CONTAINS, "a_", {8}),
    ],
)
async def test_contains_treats_percent_and_underscore_literally(
    people: Loaded, match: Match, text: str, expected: set[int]
) -> None:
    assert set(await people.ids(Like("name", match, text))) == expected


@pytest.mark.parametrize(
    ("match", "text", "expected"),
    [
        (Match.STARTS_WITH, "a", {1, 3, 7, 8, 9, 12}),
        (Match.STARTS_WITH, "A", {2}),
        (Match.CONTAINS, "pp", {1, 2, 3}),
        (Match.CONTAINS, "PP", set()),
        (Match.CONTAINS, "X", set()),
        (Match.ENDS_WITH, "le", {1, 2}),
        (Match.ENDS_WITH, "e ", {3}),
        (Match.ENDS_WITH, "apple", {1}),
        (Match.ENDS_WITH, "an apple", set()),
        (Match.CONTAINS, "张", {5}),
        (Match.ENDS_WITH, "四", {6}),
    ],
)
async def test_text_matches_are_case_sensitive_and_exact_about_spaces(
    people: Loaded, match: Match, text: str, expected: set[int]
) -> None:
    assert set(await people.ids(Like("name", match, text))) == expected


@pytest.mark.parametrize("match", list(Match))
async def test_matching_empty_text_matches_every_non_null_string(people: Loaded, match: Match) -> None:
    assert set(await people.ids(Like("name", match, ""))) == ALL - {11}


async def test_is_null_and_is_not_null(people: Loaded) -> None:
    assert await people.ids(IsNull("name")) == [11]
    assert set(await people.ids(IsNull("city"))) == {3, 10, 13}
    assert set(await people.ids(IsNull("city", is_null=False))) == ALL - {3, 10, 13}


async def test_and_or_combine_conditions(people: Loaded) -> None:
    adults_in_beijing = And((Compare("age", Op.GTE, 25), Like("city", Match.STARTS_WITH, "B")))
    assert set(await people.ids(adults_in_beijing)) == {1, 11}
    assert set(await people.ids(Or((Compare("age", Op.EQ, 18), IsNull("age"))))) == {4, 7, 8, 10, 13}
    assert set(await people.ids(And(()))) == ALL
    assert await people.ids(Or(())) == []


async def test_not_of_a_comparison_excludes_null_rows(people: Loaded) -> None:
    assert set(await people.ids(Not(Compare("age", Op.EQ, 30)))) == {2, 5, 6, 7, 9, 10, 12, 14}
    assert set(await people.ids(Not(In("age", (18, 25))))) == {1, 3, 5, 9, 11, 12}
    assert set(await people.ids(Not(Like("city", Match.CONTAINS, "jing")))) == {4, 5, 6, 8, 12, 14}
    assert set(await people.ids(Not(IsNull("age")))) == ALL - {4, 8, 13}


async def test_not_of_and_is_true_when_one_part_is_false_despite_a_null(people: Loaded) -> None:
    # A row with a NULL age and a city other than Shanghai makes the AND false, so NOT is true;
    # a NULL age in Shanghai makes it unknown, and the row stays out.
    where = Not(And((Compare("age", Op.GT, 20), Compare("city", Op.EQ, "Shanghai"))))
    assert set(await people.ids(where)) == {1, 2, 5, 6, 7, 9, 10, 11, 14}


async def test_not_of_or_is_unknown_when_no_part_is_true_and_one_is_null(people: Loaded) -> None:
    where = Not(Or((Compare("age", Op.EQ, 30), Compare("city", Op.EQ, "Beijing"))))
    assert set(await people.ids(where)) == {2, 5, 6, 9, 12, 14}


async def test_comparing_with_null_is_refused(people: Loaded) -> None:
    with pytest.raises(QueryError):
        await people.ids(Compare("age", Op.EQ, None))


@pytest.mark.parametrize(
    "where",
    [
        Compare("age", Op.EQ, "30"),
        Compare("name", Op.EQ, 1),
        In("seen", ("2024-03-01",)),
        Like("age", Match.CONTAINS, "3"),
    ],
    ids=["string-for-int", "int-for-string", "string-for-datetime", "like-on-int"],
)
async def test_values_of_the_wrong_kind_are_refused(people: Loaded, where: Compare | In | Like) -> None:
    with pytest.raises(QueryError):
        await people.ids(where)


async def test_count_counts_the_matching_rows(people: Loaded) -> None:
    assert await people.connector.count(people.table, None) == 14
    assert await people.connector.count(people.table, Compare("age", Op.NE, 30)) == 8
    assert await people.connector.count(people.table, Not(Or((Compare("age", Op.EQ, 30), IsNull("city"))))) == 7
