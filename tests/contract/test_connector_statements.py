"""Each call is one SQL statement (one per chunk of a batch), and it selects only the columns
asked for; counted with SQLAlchemy's before_cursor_execute event on the connector's engine."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from connectors.base import BATCH_CHUNK, Compare, Like, Match, Op, OrderKey, Page, Query

if TYPE_CHECKING:
    from tests.contract.conftest import Backend, Loaded, StatementLog

    Statements = type[StatementLog]


async def test_fetch_is_one_statement(sql_people: Loaded, statements: Statements) -> None:
    assert sql_people.engine is not None
    log = statements(sql_people.engine)
    query = Query(
        sql_people.table,
        ("id", "age"),
        Like("name", Match.CONTAINS, "a"),
        (OrderKey("age"),),
        limit=2,
        offset=1,
    )
    page = await sql_people.connector.fetch(query)
    assert len(log) == 1
    assert (len(page.rows), page.has_more) == (2, True)


async def test_a_keyset_page_is_one_statement(sql_people: Loaded, statements: Statements) -> None:
    assert sql_people.engine is not None
    log = statements(sql_people.engine)
    query = Query(
        sql_people.table,
        ("id",),
        order=(OrderKey("city"), OrderKey("age", True)),
        limit=3,
        after=("Shanghai", None, 8),
    )
    page = await sql_people.connector.fetch(query)
    assert [row["id"] for row in page.rows] == [12, 9, 2]
    assert len(log) == 1


async def test_count_is_one_statement(sql_people: Loaded, statements: Statements) -> None:
    assert sql_people.engine is not None
    log = statements(sql_people.engine)
    assert await sql_people.connector.count(sql_people.table, Compare("age", Op.GT, 20)) == 9
    assert len(log) == 1


async def test_fetch_by_is_one_statement_per_chunk(sql_backend: Backend, statements: Statements) -> None:
    people = await sql_backend.load_people()
    assert people.engine is not None
    log = statements(people.engine)
    await people.connector.fetch_by(people.table, "name", ["apple", "张三"], ["id"])
    assert len(log) == 1
    await people.connector.fetch_by(people.table, "id", list(range(BATCH_CHUNK + 1)), ["id"])
    assert len(log) == 3


async def test_fetch_by_with_a_rule_bound_and_cap_is_one_statement_per_chunk(
    sql_people: Loaded, statements: Statements
) -> None:
    assert sql_people.engine is not None
    log = statements(sql_people.engine)
    rule = Compare("age", Op.GT, 20)
    values = list(range(BATCH_CHUNK + 1))
    page = await sql_people.connector.fetch_by(
        sql_people.table, "id", values, ["id"], where=rule, per_value=1, limit=BATCH_CHUNK
    )
    assert (page.count, page.has_more) == (9, False)
    assert len(log) == 2


async def test_fetch_by_sends_no_statement_past_a_chunk_that_overflows_its_cap(
    sql_people: Loaded, statements: Statements
) -> None:
    assert sql_people.engine is not None
    log = statements(sql_people.engine)
    values = list(range(BATCH_CHUNK + 1))
    page = await sql_people.connector.fetch_by(sql_people.table, "id", values, ["id"], limit=2)
    assert (page.count, page.has_more) == (2, True)
    assert len(log) == 1


async def test_fetch_by_sends_no_statement_after_its_chunk_callback_raises(
    sql_people: Loaded, statements: Statements
) -> None:
    assert sql_people.engine is not None
    log = statements(sql_people.engine)

    def refuse(page: Page) -> None:
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        await sql_people.connector.fetch_by(
            sql_people.table, "id", list(range(BATCH_CHUNK + 1)), ["id"], on_chunk=refuse
        )
    assert len(log) == 1


async def test_fetch_by_no_values_sends_no_statement(sql_people: Loaded, statements: Statements) -> None:
    assert sql_people.engine is not None
    log = statements(sql_people.engine)
    page = await sql_people.connector.fetch_by(sql_people.table, "id", [None], ["id"], per_value=1, limit=3)
    assert (page.rows, page.has_more, page.cut) == ([], False, ())
    assert len(log) == 0


async def test_only_the_requested_columns_are_selected(sql_people: Loaded, statements: Statements) -> None:
    assert sql_people.engine is not None
    log = statements(sql_people.engine)
    await sql_people.fetch(("name", "age"), Compare("city", Op.EQ, "Beijing"), [OrderKey("seen")])
    await sql_people.connector.fetch_by(sql_people.table, "city", ["Beijing"], ["name", "age"])
    for statement in log.statements:
        select_list = statement.split("FROM")[0]
        named = {column for column in sql_people.table.columns if re.search(rf"\b{column}\b", select_list)}
        assert named == {"name", "age"}
