"""Pages: a limit and an offset, or a keyset cursor (`after`, the order values of the last row
seen). Paging through any order with any page size visits every row exactly once, in the
order of one unpaged read, duplicates and NULLs in the order columns included."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import ColumnSpec, Kind, OrderKey, Query, QueryError, Row, TableSpec

if TYPE_CHECKING:
    from tests.contract.conftest import Backend, Loaded

ORDERS = [
    [OrderKey("age")],
    [OrderKey("age", descending=True)],
    [OrderKey("city"), OrderKey("age", descending=True)],
    [OrderKey("name", descending=True)],
    [OrderKey("active"), OrderKey("amount", descending=True)],
    [OrderKey("seen", descending=True)],
    [OrderKey("born"), OrderKey("score")],
    [OrderKey("id", descending=True)],
]


async def walk_by_cursor(loaded: Loaded, order: Sequence[OrderKey], limit: int) -> list[Any]:
    """Every page of `order` by keyset, each cursor made from the last row's own values."""
    full = Query(loaded.table, (), order=tuple(order)).full_order()
    columns = tuple(dict.fromkeys([loaded.table.key, *(k.column for k in full)]))
    seen: list[Any] = []
    after: tuple[Any, ...] | None = None
    for _ in range(100):
        query = Query(loaded.table, columns, order=tuple(order), limit=limit, after=after)
        page = await loaded.connector.fetch(query)
        assert len(page.rows) <= limit
        seen.extend(row[loaded.table.key] for row in page.rows)
        if not page.has_more:
            return seen
        after = tuple(page.rows[-1][k.column] for k in full)
    raise AssertionError("paging did not end")


@pytest.mark.parametrize(
    "order", ORDERS, ids=lambda order: ",".join(f"{k.column}{'-' if k.descending else ''}" for k in order)
)
@pytest.mark.parametrize("limit", [1, 2, 5])
async def test_keyset_paging_visits_every_row_once_in_order(people: Loaded, order: list[OrderKey], limit: int) -> None:
    assert await walk_by_cursor(people, order, limit) == await people.ids(order=order)


@pytest.mark.parametrize("order", ORDERS[:4])
async def test_offset_paging_visits_every_row_once_in_order(people: Loaded, order: list[OrderKey]) -> None:
    pages = [await people.ids(order=order, limit=3, offset=offset) for offset in range(0, 15, 3)]
    assert [key for page in pages for key in page] == await people.ids(order=order)


async def test_limit_and_offset_cut_the_ordered_rows(people: Loaded) -> None:
    # By age: 7, 10, 2, 6, 14, 1, 3, 11, 5, 12, 9, 4, 8, 13
    assert await people.ids(order=[OrderKey("age")], limit=5, offset=3) == [6, 14, 1, 3, 11]
    assert await people.ids(order=[OrderKey("age")], limit=5, offset=12) == [8, 13]
    assert await people.ids(order=[OrderKey("age")], offset=11) == [4, 8, 13]


@pytest.mark.parametrize(
    ("limit", "offset", "count", "has_more"),
    [(13, 0, 13, True), (14, 0, 14, False), (5, 9, 5, False), (0, 0, 0, True), (None, 0, 14, False)],
)
async def test_has_more_tells_whether_rows_lie_past_the_limit(
    people: Loaded, limit: int | None, offset: int, count: int, has_more: bool
) -> None:
    page = await people.connector.fetch(Query(people.table, ("id",), limit=limit, offset=offset))
    assert (len(page.rows), page.has_more) == (count, has_more)


async def test_a_cursor_after_the_last_row_gives_an_empty_page(people: Loaded) -> None:
    page = await people.connector.fetch(
        Query(people.table, ("id",), order=(OrderKey("age"),), limit=5, after=(None, 13))
    )
    assert (page.rows, page.has_more) == ([], False)


@pytest.mark.parametrize(
    "query",
    [
        {"after": (30,), "order": (OrderKey("age"),)},
        {"after": (30, 1), "order": (OrderKey("age"),), "offset": 2},
        {"limit": -1},
        {"offset": -1},
    ],
    ids=["cursor-shorter-than-order", "cursor-and-offset", "negative-limit", "negative-offset"],
)
async def test_malformed_pages_are_refused(people: Loaded, query: dict[str, Any]) -> None:
    with pytest.raises(QueryError):
        await people.connector.fetch(Query(people.table, ("id",), **query))


# --- property: any rows, any order, any page size -----------------------------------------------

RANKS = TableSpec(
    "ranks",
    "id",
    {
        "id": ColumnSpec("id", Kind.INT),
        "grade": ColumnSpec("grade", Kind.INT),
        "label": ColumnSpec("label", Kind.STRING),
    },
)

rows_strategy = st.lists(
    st.tuples(st.sampled_from([None, 0, 1, 2]), st.sampled_from([None, "a", "A", "b", "a ", "", "张"])),
    max_size=12,
)
order_strategy = st.lists(
    st.builds(OrderKey, st.sampled_from(["grade", "label", "id"]), st.booleans()),
    min_size=1,
    max_size=3,
    unique_by=lambda key: key.column,
)


def expected_order(rows: list[Row], order: Sequence[OrderKey]) -> list[int]:
    """The oracle: stable sorts, last key first; NULLs last ascending, first descending."""
    full = Query(RANKS, (), order=tuple(order)).full_order()
    ordered = sorted(rows, key=lambda row: row["id"])
    for key in reversed(full):
        ordered.sort(key=lambda row, c=key.column: (1,) if row[c] is None else (0, row[c]), reverse=key.descending)
    return [row["id"] for row in ordered]


@pytest.fixture
async def ranks(backend: Backend) -> Loaded:
    return await backend.load(RANKS, [])


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=rows_strategy, order=order_strategy, limit=st.integers(1, 4))
async def test_paging_any_rows_by_any_order_matches_one_read(
    backend: Backend,
    ranks: Loaded,
    data: list[tuple[int | None, str | None]],
    order: list[OrderKey],
    limit: int,
) -> None:
    rows = [{"id": i, "grade": grade, "label": label} for i, (grade, label) in enumerate(data, 1)]
    await backend.replace(ranks, rows)
    whole = await ranks.ids(order=order)
    assert whole == expected_order(rows, order)
    assert await walk_by_cursor(ranks, order, limit) == whole
