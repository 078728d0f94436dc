"""Values come back as their kinds on every backend: aware date-times in the connector's zone,
decimals at their column's scale, booleans as bool, only the columns asked for."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from connectors.base import Compare, Op, OrderKey, Query, QueryError

if TYPE_CHECKING:
    from tests.contract.conftest import Backend, Loaded

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_values_come_back_as_their_kinds(people: Loaded) -> None:
    [row] = await people.fetch(where=Compare("id", Op.EQ, 1))
    assert row == {
        "id": 1,
        "name": "apple",
        "city": "Beijing",
        "age": 30,
        "score": 1.5,
        "amount": Decimal("12.50"),
        "active": True,
        "born": dt.date(1990, 1, 2),
        "seen": dt.datetime(2024, 3, 1, 8, tzinfo=SHANGHAI),
        "photo": b"\x00\x01",
    }
    kinds = {name: type(value) for name, value in row.items()}
    assert kinds == {
        "id": int,
        "name": str,
        "city": str,
        "age": int,
        "score": float,
        "amount": Decimal,
        "active": bool,
        "born": dt.date,
        "seen": dt.datetime,
        "photo": bytes,
    }


async def test_nulls_come_back_as_none_for_every_kind(people: Loaded) -> None:
    [row] = await people.fetch(where=Compare("id", Op.EQ, 13))
    assert row == {"id": 13, "name": "😀"} | dict.fromkeys(
        ["city", "age", "score", "amount", "active", "born", "seen", "photo"]
    )


async def test_decimals_are_quantized_to_the_column_scale(people: Loaded) -> None:
    rows = await people.fetch(("id", "amount"), order=[OrderKey("amount")])
    expected = "-3.75 0.00 0.10 1.99 3.33 5.00 5.00 7.25 12.50 42.00 100.00 99999.99 None None"
    assert [str(row["amount"]) for row in rows] == expected.split()


async def test_datetimes_are_aware_in_the_connector_zone(people: Loaded) -> None:
    rows = {row["id"]: row["seen"] for row in await people.fetch(("id", "seen"))}
    assert rows[6] == dt.datetime(2024, 6, 30, 12, 0, 0, 123456, tzinfo=SHANGHAI)
    assert rows[6].utcoffset() == dt.timedelta(hours=8)
    assert rows[2].astimezone(dt.UTC) == dt.datetime(2024, 3, 1, 15, 30, tzinfo=dt.UTC)


async def test_another_zone_reads_the_same_wall_clock_in_that_zone(backend: Backend) -> None:
    utc = await backend.load_people(timezone="UTC")
    [row] = await utc.fetch(("seen",), Compare("id", Op.EQ, 1))
    assert row["seen"] == dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC)
    assert row["seen"].utcoffset() == dt.timedelta(0)


async def test_dates_are_dates_not_datetimes(people: Loaded) -> None:
    born = [row["born"] for row in await people.fetch(("born",)) if row["born"] is not None]
    assert born
    assert all(type(value) is dt.date for value in born)


async def test_booleans_are_bools(people: Loaded) -> None:
    active = [row["active"] for row in await people.fetch(("active",), order=[OrderKey("id")])]
    assert active == [True, False, True, None, True, False, True, False, None, True, False, True, None, False]
    assert all(value is None or type(value) is bool for value in active)


@pytest.mark.parametrize("columns", [("name",), ("age", "name"), ("seen", "id", "amount"), ()])
async def test_only_the_requested_columns_come_back(people: Loaded, columns: tuple[str, ...]) -> None:
    rows = await people.fetch(columns)
    assert len(rows) == 14
    assert all(tuple(row) == columns for row in rows)


async def test_unknown_columns_are_query_errors(people: Loaded) -> None:
    with pytest.raises(QueryError):
        await people.fetch(("id", "salary"))
    with pytest.raises(QueryError):
        await people.fetch(("id",), Compare("salary", Op.GT, 1))
    with pytest.raises(QueryError):
        await people.fetch(("id",), order=[OrderKey("salary")])
    with pytest.raises(QueryError):
        await people.connector.count(people.table, Compare("salary", Op.GT, 1))
    with pytest.raises(QueryError):
        await people.connector.fetch_by(people.table, "salary", [1], ["id"])
    with pytest.raises(QueryError):
        await people.connector.fetch_by(people.table, "id", [1], ["salary"])


async def test_a_table_missing_from_the_database_is_a_query_error(backend: Backend) -> None:
    people = await backend.load_people()
    missing = replace(people.table, name="contract_no_such_table")
    with pytest.raises(QueryError):
        await people.connector.fetch(Query(missing, ("id",)))
