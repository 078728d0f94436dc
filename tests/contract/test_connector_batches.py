"""Batch fetches by value (`fetch_by`): the rows whose column is one of the values, ordered by
that column then the key, across as many chunks as the values need."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from connectors.base import BATCH_CHUNK, ColumnSpec, Kind, TableSpec

if TYPE_CHECKING:
    from tests.contract.conftest import Backend, Loaded

LEDGER = TableSpec("ledger", "id", {"id": ColumnSpec("id", Kind.INT), "code": ColumnSpec("code", Kind.STRING)})
LEDGER_IDS = [1, 2, BATCH_CHUNK, BATCH_CHUNK + 1, 2 * BATCH_CHUNK - 1]


def code(key: int) -> str:
    return f"c{key:06d}"


async def test_fetch_by_returns_matches_ordered_by_column_then_key(people: Loaded) -> None:
    values = ["上海", "Beijing", "beijing", "Beijing", None, "nowhere", "BEIJING"]
    rows = await people.connector.fetch_by(people.table, "city", values, ["id", "city"])
    assert [(row["id"], row["city"]) for row in rows] == [
        (1, "Beijing"),
        (7, "Beijing"),
        (11, "Beijing"),
        (2, "beijing"),
        (9, "beijing"),
        (5, "上海"),
        (14, "上海"),
    ]


async def test_fetch_by_ints_with_duplicates_returns_each_row_once(people: Loaded) -> None:
    rows = await people.connector.fetch_by(people.table, "age", [41, 18, 18, 41], ["id"])
    assert rows == [{"id": 7}, {"id": 10}, {"id": 5}, {"id": 12}]


async def test_fetch_by_aware_datetimes_matches_in_the_connector_zone(people: Loaded) -> None:
    rows = await people.connector.fetch_by(people.table, "seen", [dt.datetime(2024, 3, 1, tzinfo=dt.UTC)], ["id"])
    assert rows == [{"id": 1}, {"id": 7}]


async def test_fetch_by_nothing_returns_nothing(people: Loaded) -> None:
    assert await people.connector.fetch_by(people.table, "id", [], ["id"]) == []
    assert await people.connector.fetch_by(people.table, "id", [None], ["id"]) == []


async def test_fetch_by_more_values_than_a_chunk_keeps_one_order(backend: Backend) -> None:
    ledger = await backend.load(LEDGER, [{"id": key, "code": code(key)} for key in LEDGER_IDS])
    # Two chunks of codes, listed last first; matches fall into both chunks.
    values = [code(key) for key in range(2 * BATCH_CHUNK, 0, -1)]
    rows = await ledger.connector.fetch_by(ledger.table, "code", values, ["id", "code"])
    assert rows == [{"id": key, "code": code(key)} for key in LEDGER_IDS]
