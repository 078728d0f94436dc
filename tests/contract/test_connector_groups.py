"""Reads limited per group (`Query.per_group`): each value of a column keeps its first rows in
the read's order, in one statement, and the groups that had more are named in `Page.cut`.

A relation's lists are read this way, one group per parent, so a parent with thousands of
related rows cannot make one request hold them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from connectors.base import In, OrderKey, Page, PerGroup, Query, QueryError

if TYPE_CHECKING:
    from tests.contract.conftest import Backend, Loaded, StatementLog


async def grouped(
    loaded: Loaded, column: str, limit: int, where: Any = None, overall: int | None = None, **page: Any
) -> Page:
    query = Query(
        loaded.table,
        ("id", column),
        where,
        (OrderKey(column),),
        overall,
        per_group=PerGroup(column, limit),
        **page,
    )
    return await loaded.connector.fetch(query)


def ids_by_group(page: Page, column: str) -> dict[Any, list[int]]:
    found: dict[Any, list[int]] = {}
    for row in page.rows:
        found.setdefault(row[column], []).append(row["id"])
    return found


@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_each_group_keeps_its_first_rows_in_key_order(
    people: Loaded, people_rows: dict[int, dict[str, Any]], limit: int
) -> None:
    page = await grouped(people, "age", limit)
    everyone: dict[Any, list[int]] = {}
    for key in sorted(people_rows):
        everyone.setdefault(people_rows[key]["age"], []).append(key)
    assert ids_by_group(page, "age") == {age: keys[:limit] for age, keys in everyone.items()}
    # Groups in the read's order (NULLs last), each group's rows by key.
    assert [row["age"] for row in page.rows] == sorted(
        (row["age"] for row in page.rows), key=lambda age: (age is None, age or 0)
    )
    assert set(page.cut) == {age for age, keys in everyone.items() if len(keys) > limit}
    assert not page.has_more


async def test_groups_with_fewer_rows_are_complete_and_not_cut(people: Loaded) -> None:
    page = await grouped(people, "age", 2, In("age", (18, 41, 60)))
    assert ids_by_group(page, "age") == {18: [7, 10], 41: [5, 12], 60: [9]}
    assert page.cut == ()


async def test_string_groups_are_told_apart_by_code_point(people: Loaded) -> None:
    # The tables' own collations fold case (and MariaDB's ignores trailing spaces): groups
    # must still be the exact values, as the filter matched them.
    page = await grouped(people, "city", 1, In("city", ("Beijing", "beijing", "上海")))
    assert ids_by_group(page, "city") == {"Beijing": [1], "beijing": [2], "上海": [5]}
    assert set(page.cut) == {"Beijing", "beijing", "上海"}
    page = await grouped(people, "name", 1, In("name", ("apple", "apple ", "Apple")))
    assert ids_by_group(page, "name") == {"Apple": [2], "apple": [1], "apple ": [3]}
    assert page.cut == ()


async def test_the_overall_limit_counts_the_rows_kept(people: Loaded) -> None:
    # Kept with 2 per age: 7 10 | 2 6 | 1 3 | 5 12 | 9 | 4 8 (NULL ages last).
    page = await grouped(people, "age", 2, overall=5)
    assert [row["id"] for row in page.rows] == [7, 10, 2, 6, 1]
    assert page.has_more
    # Ages 25 and 30 were cut; 30's last kept row lies past the limit, so its cut is unseen.
    assert set(page.cut) == {25}
    page = await grouped(people, "age", 2, overall=11)
    assert len(page.rows) == 11
    assert not page.has_more
    assert set(page.cut) == {25, 30, None}


async def test_a_read_limited_per_group_is_one_statement(sql_backend: Backend, statements: type[StatementLog]) -> None:
    loaded = await sql_backend.load_people()
    assert loaded.engine is not None
    log = statements(loaded.engine)
    await grouped(loaded, "age", 2, In("age", (25, 30)))
    await grouped(loaded, "age", 2, In("age", (25, 30, 41)))
    assert len(log) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"limit": 0},
        {"offset": 1},
        {"after": (25, 2)},
        {"columns": ("id",)},
    ],
)
async def test_malformed_reads_limited_per_group_are_refused(people: Loaded, change: dict[str, Any]) -> None:
    query = Query(
        people.table,
        change.get("columns", ("id", "age")),
        None,
        (OrderKey("age"),),
        offset=change.get("offset", 0),
        after=change.get("after"),
        per_group=PerGroup("age", change.get("limit", 2)),
    )
    with pytest.raises(QueryError):
        await people.connector.fetch(query)
