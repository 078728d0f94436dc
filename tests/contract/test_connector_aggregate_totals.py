"""Groups and their total in one aggregate read (`AggregateQuery.with_total`): the same groups
and the same total as the two reads apart, in one statement, on memory, SQLite, PostgreSQL and
MariaDB.

What to expect is the answer of each part asked alone (pinned to plain computations by
test_connector_aggregates.py), and, for the total, a plain computation here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from connectors.aggregates import AggregateOrder, AggregateQuery, Bucket, GroupKey, Measure, Measured
from connectors.base import Compare, In, Op, QueryError

if TYPE_CHECKING:
    from tests.contract.conftest import Backend, Loaded, StatementLog

COUNT = Measured("count", Measure.COUNT)
ASKED = (
    COUNT,
    Measured("sum_amount", Measure.SUM, "amount"),
    Measured("avg_amount", Measure.AVG, "amount"),
    Measured("avg_age", Measure.AVG, "age"),
    Measured("distinct_name", Measure.COUNT_DISTINCT, "name"),
    Measured("min_name", Measure.MIN, "name"),
    Measured("max_seen", Measure.MAX, "seen"),
)
CITY = (GroupKey("city", "city"),)


async def test_groups_with_their_total_are_the_two_answers_asked_apart(
    people: Loaded, people_rows: dict[int, dict[str, Any]]
) -> None:
    table, connector = people.table, people.connector
    both = await connector.aggregate(AggregateQuery(table, ASKED, CITY, with_total=True))
    groups = await connector.aggregate(AggregateQuery(table, ASKED, CITY))
    whole = await connector.aggregate(AggregateQuery(table, ASKED))
    assert both.rows == groups.rows
    # The NULL city is a group of its own, never taken for the total (whose keys are absent).
    assert [row["city"] for row in both.rows][-1] is None
    assert both.total == whole.rows[0]
    amounts = [row["amount"] for row in people_rows.values() if row["amount"] is not None]
    assert both.total is not None
    assert both.total["count"] == len(people_rows)
    assert both.total["sum_amount"] == sum(amounts)
    assert both.total["avg_amount"] == (sum(amounts) / len(amounts)).quantize(Decimal("0.01"))
    assert "city" not in both.total


async def test_the_total_covers_every_group_while_the_page_cuts_them(people: Loaded) -> None:
    order = (AggregateOrder("count", descending=True),)
    month = (*CITY, GroupKey("month", "seen", Bucket.MONTH))
    where = Compare("age", Op.GT, 20)

    def query(**page: Any) -> AggregateQuery:
        return AggregateQuery(people.table, ASKED, month, where, order, with_total=True, **page)

    everything = await people.connector.aggregate(query())
    first = await people.connector.aggregate(query(limit=3))
    rest = await people.connector.aggregate(query(offset=3))
    alone = await people.connector.aggregate(AggregateQuery(people.table, ASKED, (), where))
    assert first.rows + rest.rows == everything.rows
    assert first.has_more and len(first.rows) == 3
    assert not rest.has_more
    assert first.total == rest.total == everything.total == alone.rows[0]


async def test_an_empty_set_has_no_groups_and_a_total_of_zero(people: Loaded) -> None:
    answer = await people.connector.aggregate(AggregateQuery(people.table, ASKED, CITY, In("id", ()), with_total=True))
    assert answer.rows == []
    assert answer.total == {
        "count": 0,
        "sum_amount": None,
        "avg_amount": None,
        "avg_age": None,
        "distinct_name": 0,
        "min_name": None,
        "max_seen": None,
    }


async def test_groups_and_their_total_are_one_statement(sql_people: Loaded, statements: type[StatementLog]) -> None:
    assert sql_people.engine is not None
    log = statements(sql_people.engine)
    query = AggregateQuery(
        sql_people.table,
        ASKED,
        (*CITY, GroupKey("month", "seen", Bucket.MONTH)),
        Compare("age", Op.GT, 20),
        (AggregateOrder("avg_amount", descending=True),),
        limit=2,
        offset=1,
        with_total=True,
    )
    answer = await sql_people.connector.aggregate(query)
    assert answer.total is not None and len(answer.rows) == 2
    assert len(log) == 1
    assert "GROUP BY" in log.statements[0].upper()


async def test_a_total_without_group_keys_is_refused(backend: Backend) -> None:
    loaded = await backend.load_people()
    with pytest.raises(QueryError):
        await loaded.connector.aggregate(AggregateQuery(loaded.table, (COUNT,), with_total=True))
