"""Aggregate reads (`Connector.aggregate`): measures per group in one statement, with the same
answer on memory, SQLite, PostgreSQL and MariaDB.

The expected values are worked out here from the rows loaded, by plain Python, never by asking
another backend.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from connectors.aggregates import AggregateOrder, AggregateQuery, Bucket, GroupKey, Groups, Measure, Measured
from connectors.base import ColumnSpec, Compare, Filter, In, Kind, Op, QueryError, TableSpec

if TYPE_CHECKING:
    from tests.contract.conftest import Backend, Loaded, StatementLog

SHANGHAI = ZoneInfo("Asia/Shanghai")
COUNT = Measured("count", Measure.COUNT)


async def aggregate(
    loaded: Loaded,
    measures: tuple[Measured, ...] = (COUNT,),
    groups: tuple[GroupKey, ...] = (),
    where: Filter | None = None,
    order: tuple[AggregateOrder, ...] = (),
    **page: Any,
) -> Groups:
    query = AggregateQuery(loaded.table, measures, groups, where, order, **page)
    return await loaded.connector.aggregate(query)


def measures(*specs: tuple[Measure, str]) -> tuple[Measured, ...]:
    return tuple(Measured(f"{measure.value}_{column}", measure, column) for measure, column in specs)


async def test_whole_table_measures_match_a_plain_computation(
    people: Loaded, people_rows: dict[int, dict[str, Any]]
) -> None:
    asked = measures(
        (Measure.COUNT_DISTINCT, "city"),
        (Measure.COUNT_DISTINCT, "age"),
        (Measure.SUM, "amount"),
        (Measure.AVG, "amount"),
        (Measure.SUM, "age"),
        (Measure.AVG, "age"),
        (Measure.SUM, "score"),
        (Measure.MIN, "age"),
        (Measure.MAX, "age"),
        (Measure.MIN, "name"),
        (Measure.MAX, "name"),
        (Measure.MIN, "seen"),
        (Measure.MAX, "born"),
        (Measure.MIN, "amount"),
    )
    answer = await aggregate(people, (COUNT, *asked))
    rows = list(people_rows.values())

    def present(column: str) -> list[Any]:
        return [row[column] for row in rows if row[column] is not None]

    amounts, ages = present("amount"), present("age")
    assert answer.rows == [
        {
            "count": 14,
            "countDistinct_city": len(set(present("city"))),
            "countDistinct_age": len(set(ages)),
            "sum_amount": sum(amounts),
            "avg_amount": (sum(amounts) / len(amounts)).quantize(Decimal("0.01")),
            "sum_age": sum(ages),
            "avg_age": sum(ages) / len(ages),
            "sum_score": sum(present("score")),
            "min_age": 18,
            "max_age": 60,
            "min_name": "",
            "max_name": "😀",
            "min_seen": dt.datetime(2022, 2, 2, 2, 2, 2, tzinfo=SHANGHAI),
            "max_born": dt.date(2010, 10, 10),
            "min_amount": Decimal("-3.75"),
        }
    ]
    assert not answer.has_more


async def test_groups_are_case_sensitive_and_nulls_form_their_own_group_last(people: Loaded) -> None:
    answer = await aggregate(
        people, (COUNT, *measures((Measure.SUM, "amount"), (Measure.AVG, "amount"))), (GroupKey("city", "city"),)
    )
    assert answer.rows == [
        {"city": "Beijing", "count": 3, "sum_amount": Decimal("19.49"), "avg_amount": Decimal("6.50")},
        {"city": "Shanghai", "count": 3, "sum_amount": Decimal("4.58"), "avg_amount": Decimal("1.53")},
        {"city": "beijing", "count": 2, "sum_amount": Decimal("7.35"), "avg_amount": Decimal("3.68")},
        {"city": "上海", "count": 2, "sum_amount": Decimal("100041.99"), "avg_amount": Decimal("50021.00")},
        # The only amount here is NULL: sums and averages ignore it, and there is nothing left.
        {"city": "北京", "count": 1, "sum_amount": None, "avg_amount": None},
        # Row 13's NULL amount is ignored: the average is over the two amounts present.
        {"city": None, "count": 3, "sum_amount": Decimal("100.00"), "avg_amount": Decimal("50.00")},
    ]


async def test_an_empty_set_counts_zero_and_sums_to_null(people: Loaded) -> None:
    nothing = In("id", ())
    asked = measures(
        (Measure.SUM, "amount"), (Measure.AVG, "age"), (Measure.MIN, "name"), (Measure.COUNT_DISTINCT, "city")
    )
    answer = await aggregate(people, (COUNT, *asked), where=nothing)
    assert answer.rows == [{"count": 0, "sum_amount": None, "avg_age": None, "min_name": None, "countDistinct_city": 0}]
    grouped = await aggregate(people, (COUNT,), (GroupKey("city", "city"),), where=nothing)
    assert grouped.rows == []


async def test_filters_apply_before_grouping(people: Loaded) -> None:
    answer = await aggregate(people, (COUNT,), (GroupKey("active", "active"),), where=Compare("age", Op.GTE, 30))
    # Ages 30+: ids 1 (True), 3 (True), 5 (True), 9 (None), 11 (False), 12 (True).
    assert answer.rows == [
        {"active": False, "count": 1},
        {"active": True, "count": 4},
        {"active": None, "count": 1},
    ]


MONEY = TableSpec(
    "money",
    "id",
    {
        "id": ColumnSpec("id", Kind.INT),
        "box": ColumnSpec("box", Kind.STRING),
        "amount": ColumnSpec("amount", Kind.DECIMAL, scale=2),
        "rate": ColumnSpec("rate", Kind.DECIMAL, scale=4),
    },
)


async def test_money_sums_exactly_and_averages_round_half_even(backend: Backend) -> None:
    rows = [{"id": i, "box": "dimes", "amount": Decimal("0.10"), "rate": Decimal("0.0001")} for i in range(1, 1001)]
    rows += [
        # 0.125 -> 0.12 and 0.135 -> 0.14 (half to even), where half up would give 0.13 and 0.14.
        {"id": 2001, "box": "even-down", "amount": Decimal("0.12"), "rate": None},
        {"id": 2002, "box": "even-down", "amount": Decimal("0.13"), "rate": None},
        {"id": 2003, "box": "even-up", "amount": Decimal("0.13"), "rate": None},
        {"id": 2004, "box": "even-up", "amount": Decimal("0.14"), "rate": None},
        {"id": 2005, "box": "large", "amount": Decimal("9999999999999.99"), "rate": Decimal("1.2345")},
        {"id": 2006, "box": "large", "amount": Decimal("9999999999999.99"), "rate": Decimal("1.2346")},
        {"id": 2007, "box": "large", "amount": Decimal("0.01"), "rate": None},
    ]
    loaded = await backend.load(MONEY, rows)
    asked = measures((Measure.SUM, "amount"), (Measure.AVG, "amount"), (Measure.SUM, "rate"), (Measure.AVG, "rate"))
    answer = await aggregate(loaded, asked, (GroupKey("box", "box"),))
    assert answer.rows == [
        # A thousand float 0.1s add up to 99.9999999999986; the sum must be exact.
        {"box": "dimes", "sum_amount": Decimal("100.00"), "avg_amount": Decimal("0.10"),
         "sum_rate": Decimal("0.1000"), "avg_rate": Decimal("0.0001")},
        {"box": "even-down", "sum_amount": Decimal("0.25"), "avg_amount": Decimal("0.12"),
         "sum_rate": None, "avg_rate": None},
        {"box": "even-up", "sum_amount": Decimal("0.27"), "avg_amount": Decimal("0.14"),
         "sum_rate": None, "avg_rate": None},
        {"box": "large", "sum_amount": Decimal("19999999999999.99"), "avg_amount": Decimal("6666666666666.66"),
         "sum_rate": Decimal("2.4691"), "avg_rate": Decimal("1.2346")},
    ]  # fmt: skip


EVENTS = TableSpec(
    "events",
    "id",
    {
        "id": ColumnSpec("id", Kind.INT),
        "at": ColumnSpec("at", Kind.DATETIME),
        "on": ColumnSpec("on", Kind.DATE),
    },
)

_T = dt.datetime
# Naive wall-clock times in Asia/Shanghai, on both sides of midnight at the ends of periods.
_EVENTS = {
    1: _T(2023, 12, 31, 23, 59, 59, 999999),  # a Sunday, the last moment of 2023
    2: _T(2024, 1, 1, 0, 0, 0),  # a Monday
    3: _T(2024, 3, 31, 23, 59, 59),  # a Sunday ending Q1
    4: _T(2024, 4, 1, 0, 0, 0),  # the Monday starting Q2
    5: _T(2024, 4, 1, 0, 0, 1),
    6: None,
}


@pytest.mark.parametrize(
    ("bucket", "expected"),
    [
        (Bucket.DAY, {"2023-12-31": [1], "2024-01-01": [2], "2024-03-31": [3], "2024-04-01": [4, 5]}),
        (Bucket.WEEK, {"2023-12-25": [1], "2024-01-01": [2], "2024-03-25": [3], "2024-04-01": [4, 5]}),
        (Bucket.MONTH, {"2023-12-01": [1], "2024-01-01": [2], "2024-03-01": [3], "2024-04-01": [4, 5]}),
        (Bucket.QUARTER, {"2023-10-01": [1], "2024-01-01": [2, 3], "2024-04-01": [4, 5]}),
        (Bucket.YEAR, {"2023-01-01": [1], "2024-01-01": [2, 3, 4, 5]}),
    ],
)
async def test_buckets_cut_at_midnight_in_the_connections_zone(
    backend: Backend, bucket: Bucket, expected: dict[str, list[int]]
) -> None:
    rows = [{"id": k, "at": v, "on": None if v is None else v.date()} for k, v in _EVENTS.items()]
    loaded = await backend.load(EVENTS, rows)
    wanted = [{"period": dt.date.fromisoformat(day), "count": len(ids)} for day, ids in expected.items()]
    for column in ("at", "on"):
        answer = await aggregate(loaded, (COUNT,), (GroupKey("period", column, bucket),))
        # The NULL moment is its own group, after every period.
        assert answer.rows == [*wanted, {"period": None, "count": 1}], column


async def test_groups_order_by_measures_and_page_with_ties_broken_by_the_group_keys(people: Loaded) -> None:
    order = (AggregateOrder("count", descending=True),)
    city = (GroupKey("city", "city"),)
    first = await aggregate(people, (COUNT,), city, order=order, limit=4)
    # Three groups of 3 (Beijing, Shanghai, NULL: NULLs last among equals), then beijing, 上海.
    assert first.rows == [
        {"city": "Beijing", "count": 3},
        {"city": "Shanghai", "count": 3},
        {"city": None, "count": 3},
        {"city": "beijing", "count": 2},
    ]
    assert first.has_more
    rest = await aggregate(people, (COUNT,), city, order=order, limit=4, offset=4)
    assert rest.rows == [{"city": "上海", "count": 2}, {"city": "北京", "count": 1}]
    assert not rest.has_more


async def test_groups_order_by_an_average_and_a_group_key_descending(people: Loaded) -> None:
    asked = measures((Measure.AVG, "age"))
    answer = await aggregate(
        people, asked, (GroupKey("city", "city"),), order=(AggregateOrder("avg_age", descending=True),)
    )
    # Averages: beijing 42.5, 上海 33, Beijing 26, 北京 25, Shanghai 41 (one age), NULL 24.
    assert [(row["city"], row["avg_age"]) for row in answer.rows] == [
        ("beijing", 42.5),
        ("Shanghai", 41.0),
        ("上海", 33.0),
        ("Beijing", 26.0),
        ("北京", 25.0),
        (None, 24.0),
    ]
    by_city = await aggregate(people, (COUNT,), (GroupKey("city", "city"),), order=(AggregateOrder("city", True),))
    assert [row["city"] for row in by_city.rows] == [None, "北京", "上海", "beijing", "Shanghai", "Beijing"]


async def test_two_group_keys_and_count_distinct_of_bytes(people: Loaded) -> None:
    answer = await aggregate(
        people,
        (COUNT, *measures((Measure.COUNT_DISTINCT, "photo"))),
        (GroupKey("active", "active"), GroupKey("born", "born", Bucket.YEAR)),
        where=In("id", (1, 3, 5, 7, 10, 13)),
    )
    assert answer.rows == [
        {"active": True, "born": dt.date(1970, 1, 1), "count": 1, "countDistinct_photo": 1},
        {"active": True, "born": dt.date(1990, 1, 1), "count": 1, "countDistinct_photo": 1},
        {"active": True, "born": dt.date(2010, 1, 1), "count": 1, "countDistinct_photo": 0},
        {"active": True, "born": None, "count": 2, "countDistinct_photo": 1},
        {"active": None, "born": None, "count": 1, "countDistinct_photo": 0},
    ]


async def test_an_aggregate_is_one_statement(sql_people: Loaded, statements: type[StatementLog]) -> None:
    assert sql_people.engine is not None
    log = statements(sql_people.engine)
    asked = measures((Measure.AVG, "amount"), (Measure.COUNT_DISTINCT, "name"), (Measure.MAX, "seen"))
    await aggregate(
        sql_people,
        (COUNT, *asked),
        (GroupKey("city", "city"), GroupKey("month", "seen", Bucket.MONTH)),
        where=Compare("age", Op.GT, 20),
        order=(AggregateOrder("avg_amount"),),
        limit=3,
        offset=1,
    )
    assert len(log) == 1
    assert "GROUP BY" in log.statements[0].upper()


@pytest.mark.parametrize(
    "query",
    [
        AggregateQuery(MONEY, measures((Measure.SUM, "box"))),
        AggregateQuery(MONEY, (Measured("n", Measure.COUNT, "box"),)),
        AggregateQuery(MONEY, (Measured("n", Measure.SUM),)),
        AggregateQuery(MONEY, (COUNT,), (GroupKey("box", "box", Bucket.DAY),)),
        AggregateQuery(MONEY, (COUNT,), (GroupKey("count", "box"),)),
        AggregateQuery(MONEY, (COUNT,), order=(AggregateOrder("box"),)),
        AggregateQuery(MONEY, (COUNT,), (GroupKey("x", "nope"),)),
        AggregateQuery(MONEY, (COUNT,), limit=-1),
    ],
    ids=["sum-of-text", "count-with-column", "sum-without-column", "bucket-of-text", "label-twice",
         "order-unknown", "unknown-column", "negative-limit"],
)  # fmt: skip
async def test_malformed_aggregates_are_refused(backend: Backend, query: AggregateQuery) -> None:
    loaded = await backend.load(MONEY, [])
    with pytest.raises(QueryError):
        await loaded.connector.aggregate(
            AggregateQuery(loaded.table, query.measures, query.groups, query.where, query.order, query.limit)
        )
