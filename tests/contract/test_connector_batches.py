"""Batch fetches by value (`fetch_by`): the rows whose column is one of the values and that
match a row rule, ordered by that column then the key, bounded per value (the values cut are
named) and in all, across as many chunks as the values need, read as one statement over all
the values would read them."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import TYPE_CHECKING, Any

import pytest

from connectors.base import (
    BATCH_CHUNK,
    ColumnSpec,
    Compare,
    In,
    Kind,
    Op,
    OrderKey,
    Page,
    PerGroup,
    Query,
    QueryError,
    TableSpec,
    conjoin,
)

if TYPE_CHECKING:
    from tests.contract.conftest import Backend, Loaded

LEDGER = TableSpec("ledger", "id", {"id": ColumnSpec("id", Kind.INT), "code": ColumnSpec("code", Kind.STRING)})
LEDGER_IDS = [1, 2, BATCH_CHUNK, BATCH_CHUNK + 1, 2 * BATCH_CHUNK - 1]

ENTRIES = TableSpec(
    "entries",
    "id",
    {
        "id": ColumnSpec("id", Kind.INT),
        "code": ColumnSpec("code", Kind.STRING),
        "amount": ColumnSpec("amount", Kind.INT),
    },
)


def code(key: int) -> str:
    return f"c{key:06d}"


# Every code of two chunks, listed last first: chunk one holds c000000..c004999 once sorted.
TWO_CHUNKS = [code(key) for key in range(2 * BATCH_CHUNK - 1, -1, -1)]
LAST_OF_FIRST, FIRST_OF_SECOND = code(BATCH_CHUNK - 1), code(BATCH_CHUNK)
# id: code, amount. Groups of several rows on both sides of the chunk boundary, a NULL code
# and a code that is not asked for; loaded in reverse, so key order comes from the read.
_ENTRIES: dict[int, tuple[str | None, int]] = {
    1: (code(1), 10),
    2: (code(1), 20),
    3: (code(1), 30),
    4: (code(2), 40),
    5: (LAST_OF_FIRST, 50),
    6: (LAST_OF_FIRST, 60),
    7: (FIRST_OF_SECOND, 70),
    8: (FIRST_OF_SECOND, 80),
    9: (FIRST_OF_SECOND, 90),
    10: (code(2 * BATCH_CHUNK - 1), 100),
    11: (None, 110),
    12: ("other", 120),
}
ENTRY_ROWS = [{"id": key, "code": c, "amount": amount} for key, (c, amount) in reversed(_ENTRIES.items())]


async def entries(backend: Backend) -> Loaded:
    return await backend.load(ENTRIES, ENTRY_ROWS)


def ids(page: Page) -> list[int]:
    return [row["id"] for row in page.rows]


async def test_fetch_by_returns_matches_ordered_by_column_then_key(people: Loaded) -> None:
    values = ["上海", "Beijing", "beijing", "Beijing", None, "nowhere", "BEIJING"]
    page = await people.connector.fetch_by(people.table, "city", values, ["id", "city"])
    assert [(row["id"], row["city"]) for row in page.rows] == [
        (1, "Beijing"),
        (7, "Beijing"),
        (11, "Beijing"),
        (2, "beijing"),
        (9, "beijing"),
        (5, "上海"),
        (14, "上海"),
    ]
    assert (page.has_more, page.cut) == (False, ())


async def test_fetch_by_ints_with_duplicates_returns_each_row_once(people: Loaded) -> None:
    page = await people.connector.fetch_by(people.table, "age", [41, 18, 18, 41], ["id"])
    assert page.rows == [{"id": 7}, {"id": 10}, {"id": 5}, {"id": 12}]


async def test_fetch_by_aware_datetimes_matches_in_the_connector_zone(people: Loaded) -> None:
    page = await people.connector.fetch_by(people.table, "seen", [dt.datetime(2024, 3, 1, tzinfo=dt.UTC)], ["id"])
    assert page.rows == [{"id": 1}, {"id": 7}]


async def test_fetch_by_nothing_returns_nothing(people: Loaded) -> None:
    for values in ([], [None], [None, None]):
        page = await people.connector.fetch_by(people.table, "id", values, ["id"], per_value=1, limit=5)
        assert (page.rows, page.count, page.has_more, page.cut) == ([], 0, False, ())
        assert list(page.column("id")) == []


async def test_fetch_by_applies_the_row_rule_to_every_match(people: Loaded) -> None:
    rule = Compare("age", Op.GTE, 30)
    page = await people.connector.fetch_by(people.table, "city", ["beijing", "Beijing"], ["id"], where=rule)
    # Beijing: 1 (30), 7 (18), 11 (30); beijing: 2 (25), 9 (60).
    assert ids(page) == [1, 11, 9]


async def test_fetch_by_keeps_the_first_rows_of_each_value_and_names_the_values_cut(people: Loaded) -> None:
    values = ["上海", "beijing", "Shanghai", "Beijing"]
    page = await people.connector.fetch_by(people.table, "city", values, ["id", "city"], per_value=2)
    # By code point: Beijing (1 7 11), Shanghai (4 8 12), beijing (2 9), 上海 (5 14).
    assert ids(page) == [1, 7, 4, 8, 2, 9, 5, 14]
    assert set(page.cut) == {"Beijing", "Shanghai"}
    assert not page.has_more
    page = await people.connector.fetch_by(people.table, "city", values, ["id", "city"], per_value=1)
    assert ids(page) == [1, 4, 2, 5]
    assert set(page.cut) == set(values)


async def test_fetch_by_caps_the_rows_in_all_and_says_more_lay_past(people: Loaded) -> None:
    read = people.connector.fetch_by
    page = await read(people.table, "age", [30, 25, 18], ["id"], limit=4)
    # 18: 7 10; 25: 2 6 14; 30: 1 3 11.
    assert (ids(page), page.has_more) == ([7, 10, 2, 6], True)
    page = await read(people.table, "age", [30, 25, 18], ["id"], limit=8)
    assert (ids(page), page.has_more) == ([7, 10, 2, 6, 14, 1, 3, 11], False)
    page = await read(people.table, "age", [30, 25, 18], ["id"], limit=0)
    assert (ids(page), page.has_more) == ([], True)


async def test_fetch_by_over_two_chunks_bounds_each_value_and_names_cuts_in_both(backend: Backend) -> None:
    loaded = await entries(backend)
    seen: list[int] = []
    page = await loaded.connector.fetch_by(
        loaded.table, "code", TWO_CHUNKS, ["id", "code"], per_value=2, on_chunk=lambda chunk: seen.append(chunk.count)
    )
    assert ids(page) == [1, 2, 4, 5, 6, 7, 8, 10]
    assert set(page.cut) == {code(1), FIRST_OF_SECOND}
    assert not page.has_more
    # One page per chunk, each seen as it was read.
    assert seen == [5, 3]


async def test_fetch_by_cap_spanning_two_chunks_stops_where_one_statement_would(backend: Backend) -> None:
    loaded = await entries(backend)
    read = loaded.connector.fetch_by
    # The first chunk fills the cap exactly: the second is read to tell that more rows follow,
    # and its cut group, past the cap, is not known to be cut.
    page = await read(loaded.table, "code", TWO_CHUNKS, ["id", "code"], per_value=2, limit=5)
    assert (ids(page), page.has_more, set(page.cut)) == ([1, 2, 4, 5, 6], True, {code(1)})
    # Here the second chunk's cut group keeps its last row within the cap: it is named.
    page = await read(loaded.table, "code", TWO_CHUNKS, ["id", "code"], per_value=2, limit=7)
    assert (ids(page), page.has_more, set(page.cut)) == ([1, 2, 4, 5, 6, 7, 8], True, {code(1), FIRST_OF_SECOND})
    seen: list[int] = []
    page = await read(loaded.table, "code", TWO_CHUNKS, ["id"], limit=2, on_chunk=lambda c: seen.append(c.count))
    # Rows past the cap in the first chunk: no second chunk is read.
    assert (ids(page), page.has_more, seen) == ([1, 2], True, [2])


@pytest.mark.parametrize("rule", [None, Compare("amount", Op.NE, 20)], ids=["no-rule", "rule"])
async def test_fetch_by_over_two_chunks_reads_as_one_statement_over_all_values(backend: Backend, rule: Any) -> None:
    loaded = await entries(backend)
    columns = ("id", "code", "amount")
    for per_value, limit in itertools.product([None, 1, 2], [None, 0, 3, 5, 9]):
        got = await loaded.connector.fetch_by(
            loaded.table, "code", TWO_CHUNKS, columns, where=rule, per_value=per_value, limit=limit
        )
        group = None if per_value is None else PerGroup("code", per_value)
        where = conjoin(In("code", tuple(TWO_CHUNKS)), rule)
        one = Query(loaded.table, columns, where, (OrderKey("code"),), limit, per_group=group)
        expected = await loaded.connector.fetch(one)
        case = (per_value, limit)
        assert got.rows == expected.rows, case
        assert (got.has_more, set(got.cut)) == (expected.has_more, set(expected.cut)), case


async def test_malformed_batch_reads_are_refused(people: Loaded) -> None:
    read = people.connector.fetch_by
    with pytest.raises(QueryError):
        await read(people.table, "age", [30], ["id"], per_value=0)
    with pytest.raises(QueryError):
        await read(people.table, "age", [30], ["id"], limit=-1)
    with pytest.raises(QueryError):
        # The value column must be read for its rows to be bounded per value.
        await read(people.table, "age", [30], ["id"], per_value=1)
    with pytest.raises(QueryError):
        await read(people.table, "age", [30], ["id"], where=Compare("salary", Op.GT, 1))


async def test_fetch_by_more_values_than_a_chunk_keeps_one_order(backend: Backend) -> None:
    ledger = await backend.load(LEDGER, [{"id": key, "code": code(key)} for key in LEDGER_IDS])
    # Two chunks of codes, listed last first; matches fall into both chunks.
    values = [code(key) for key in range(2 * BATCH_CHUNK, 0, -1)]
    page = await ledger.connector.fetch_by(ledger.table, "code", values, ["id", "code"])
    assert page.rows == [{"id": key, "code": code(key)} for key in LEDGER_IDS]


async def test_fetch_by_keeps_each_values_first_rows_in_the_order_asked(people: Loaded) -> None:
    # A relation's list ordered by the caller: within each value, by the order, then the key.
    values = ["Beijing", "beijing", "Shanghai"]
    by_age = [OrderKey("age", descending=True)]
    page = await people.connector.fetch_by(people.table, "city", values, ["id", "city"], per_value=2, order=by_age)
    # Beijing: 1 (30), 7 (18), 11 (30); Shanghai: 4 (NULL), 8 (NULL), 12 (41); beijing: 2 (25), 9 (60).
    # Descending puts NULLs first; ties by key.
    assert ids(page) == [1, 11, 4, 8, 9, 2]
    assert set(page.cut) == {"Beijing", "Shanghai"}
    by_name = [OrderKey("name")]
    page = await people.connector.fetch_by(people.table, "city", values, ["id", "city"], per_value=1, order=by_name)
    # By code point: Beijing: "a%b" (7) < "apple" (1) < NULL (11); Shanghai: "" (4); beijing: "Apple" (2).
    assert ids(page) == [7, 4, 2]


async def test_fetch_by_in_an_order_over_two_chunks_reads_as_one_statement(backend: Backend) -> None:
    loaded = await entries(backend)
    by_amount = [OrderKey("amount", descending=True)]
    page = await loaded.connector.fetch_by(
        loaded.table, "code", TWO_CHUNKS, ["id", "code"], per_value=2, order=by_amount
    )
    # Per code, the largest amounts first: c1 (3 2), c2 (4), last of chunk one (6 5), first of
    # chunk two (9 8), last code (10).
    assert ids(page) == [3, 2, 4, 6, 5, 9, 8, 10]
    assert set(page.cut) == {code(1), FIRST_OF_SECOND}
