"""The SQL connector builds one statement per query shape and reuses it with each read's values.

Reads run on SQLite against the contract suite's people table, and every answer is checked
against the memory connector reading the same rows: a statement reused with the wrong values,
or shared by two shapes that need different SQL, gives a wrong answer here.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.base import (
    ColumnSpec,
    Compare,
    Filter,
    In,
    IsNull,
    Kind,
    Like,
    Match,
    Op,
    OrderKey,
    Query,
    TableSpec,
)
from connectors.memory import MemoryConnector
from connectors.sql import SqlConnector
from connectors.sql.dialects.sqlite import SqliteDialect
from connectors.sql.shape import QueryShapes
from connectors.sql.statements import STATEMENT_CACHE_SIZE, Statements
from connectors.values import load_zone
from tests.contract.conftest import PEOPLE_ROWS, Backend


class People:
    """The people table read through the SQL connector and, as the oracle, the memory one."""

    def __init__(self, table: TableSpec, sql: SqlConnector) -> None:
        self.table = table
        self.sql = sql
        self.memory = MemoryConnector({table.name: PEOPLE_ROWS})
        # The statement objects SQLAlchemy was given, in order: a shape's first read only,
        # since the reads after it go to the driver directly (connectors/sql/direct.py).
        self.executed: list[object] = []
        # The SQL text of every read, direct or not.
        self.sent: list[str] = []
        sa.event.listen(sql.engine.sync_engine, "before_execute", self._seen)
        sa.event.listen(sql.engine.sync_engine, "before_cursor_execute", self._sent)

    def _seen(self, conn: object, statement: object, *args: object) -> None:
        self.executed.append(statement)

    def _sent(self, conn: object, cursor: object, sql: str, *args: object) -> None:
        self.sent.append(sql)

    async def check(
        self,
        where: Filter | None = None,
        order: Sequence[OrderKey] = (),
        columns: Sequence[str] = ("id", "name"),
        **page: Any,
    ) -> list[Any]:
        """The rows of the query through SQL, asserted equal to the memory connector's."""
        query = Query(self.table, tuple(columns), where, tuple(order), **page)
        got = await self.sql.fetch(query)
        expected = await self.memory.fetch(query)
        assert (got.rows, got.has_more) == (expected.rows, expected.has_more), query
        return got.rows

    @property
    def built(self) -> int:
        return len(self.sql.statements)


@pytest.fixture
async def people(tmp_path: Path) -> AsyncIterator[People]:
    backend = Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'people.db'}")
    try:
        loaded = await backend.load_people()
        assert isinstance(loaded.connector, SqlConnector)
        yield People(loaded.table, loaded.connector)
    finally:
        await backend.close()


async def test_repeated_lookup_shape_reuses_one_statement(people: People) -> None:
    for key in (1, 5, 14, 99, 3):
        rows = await people.check(Compare("id", Op.EQ, key), limit=1)
        assert [row["id"] for row in rows] == ([] if key == 99 else [key])
    assert people.built == 1
    # Built and compiled once: SQLAlchemy ran the first read, the driver the other four.
    assert (len(people.executed), len(people.sent), len(set(people.sent))) == (1, 5, 1)


async def test_string_lookups_with_other_values_reuse_the_statement(people: People) -> None:
    for name in ("apple", "Apple", "apple ", "张三", "nobody", ""):
        await people.check(Compare("name", Op.EQ, name))
    assert people.built == 1


async def test_in_lists_of_any_length_share_a_statement_and_an_empty_one_matches_nothing(people: People) -> None:
    for ages in ((18,), (18, 25, 60), (30, 41), (30, None)):
        await people.check(In("age", ages))
    assert people.built == 1
    assert await people.check(In("age", ())) == []
    assert people.built == 2


async def test_cursor_nulls_make_their_own_shape(people: People) -> None:
    order = (OrderKey("city"), OrderKey("age", descending=True))
    # A NULL in the cursor pages by IS NULL tests where a value pages by comparisons.
    cursors = [("Shanghai", None, 8), ("Beijing", 30, 11), (None, None, 13), (None, 18, 10), ("上海", 41, 5)]
    for after in cursors:
        await people.check(order=order, limit=3, after=after)
    # (value, NULL), (value, value), (NULL, NULL) and (NULL, value): four shapes.
    assert people.built == 4


async def test_limit_offset_and_neither_are_different_statements(people: People) -> None:
    order = (OrderKey("name"),)
    for page in ({}, {"limit": 2}, {"limit": 5}, {"limit": 2, "offset": 3}, {"limit": 4, "offset": 1}, {"offset": 2}):
        await people.check(order=order, **page)
    # none, limit (2 and 5), limit and offset (twice), offset only
    assert people.built == 4


async def test_each_substring_test_reuses_its_statement_with_other_texts(people: People) -> None:
    texts = ("a", "pp", "%", "_b", "a/", "", "张", "le")
    for match, text in itertools.product(Match, texts):
        await people.check(Like("name", match, text))
    # SQLite's forms: instr() for contains and for any empty text, substr() for a prefix,
    # substr() from the end for a suffix.
    assert people.built == 3


async def test_counts_and_batches_reuse_their_statements(people: People) -> None:
    for age in (18, 30, 99):
        assert await people.sql.count(people.table, Compare("age", Op.GTE, age)) == await people.memory.count(
            people.table, Compare("age", Op.GTE, age)
        )
    for names in (["apple"], ["apple", "Zebra", "张三"], ["nobody", "a%b"]):
        page = await people.sql.fetch_by(people.table, "name", names, ["id", "name"])
        assert page.rows == (await people.memory.fetch_by(people.table, "name", names, ["id", "name"])).rows
    assert people.built == 2


async def test_the_connectors_cache_stays_within_its_bound(people: People) -> None:
    # Every ordered choice of columns is a shape of its own.
    names = list(people.table.columns)
    shapes = itertools.chain.from_iterable(itertools.permutations(names, n) for n in range(1, 4))
    for columns in itertools.islice(shapes, STATEMENT_CACHE_SIZE + 20):
        await people.sql.fetch(Query(people.table, columns, IsNull("id", False), limit=1))
    assert people.built == STATEMENT_CACHE_SIZE
    # The most recent shape is still there: reading it again runs the same statement, on the
    # driver directly as its first read allowed (a statement built anew would go through
    # SQLAlchemy again).
    executed = len(people.executed)
    await people.sql.fetch(Query(people.table, columns, IsNull("id", False), limit=1))
    assert len(people.executed) == executed
    assert people.sent[-1] == people.sent[-2]
    assert people.built == STATEMENT_CACHE_SIZE


# --- the cache itself, without a database -----------------------------------------------------

TABLE = TableSpec("t", "id", {"id": ColumnSpec("id", Kind.INT), "name": ColumnSpec("name", Kind.STRING)})
SHAPER = QueryShapes(SqliteDialect(), load_zone("UTC"))


def shape_of(where: Filter) -> Any:
    return SHAPER.fetch(Query(TABLE, ("id",), where))[0]


def test_the_least_recently_used_statement_is_forgotten_first() -> None:
    statements = Statements(SqliteDialect(), size=2)
    first, second, third = (shape_of(Compare("id", op, 1)) for op in (Op.EQ, Op.LT, Op.GT))
    kept = statements.get(TABLE, "BINARY", first)
    statements.get(TABLE, "BINARY", second)
    assert statements.get(TABLE, "BINARY", first) is kept  # used again: now the most recent
    statements.get(TABLE, "BINARY", third)  # forgets `second`
    assert len(statements) == 2
    assert statements.get(TABLE, "BINARY", first) is kept


def test_another_collation_or_table_of_the_same_name_gets_its_own_statement() -> None:
    statements = Statements(SqliteDialect())
    shape = shape_of(Compare("name", Op.EQ, "x"))
    binary = statements.get(TABLE, "BINARY", shape)
    assert statements.get(TABLE, "NOCASE", shape) is not binary
    assert "NOCASE" in str(statements.get(TABLE, "NOCASE", shape).statement)
    # An equal copy of the table shares the statement; a table of the same name whose
    # column is of another kind does not (an INT is compared without a collation).
    copy = TableSpec("t", "id", dict(TABLE.columns))
    assert statements.get(copy, "BINARY", shape) is statements.get(TABLE, "BINARY", shape)
    other = TableSpec("t", "id", {**TABLE.columns, "name": ColumnSpec("name", Kind.INT)})
    built = statements.get(other, "BINARY", shape)
    assert built is not binary
    assert "COLLATE" not in str(built.statement)


def test_values_are_never_part_of_the_shape() -> None:
    shape, values = SHAPER.fetch(Query(TABLE, ("id",), Compare("name", Op.EQ, "secret"), limit=5, offset=2))
    assert "secret" not in repr(shape)
    # The value, one row more than the limit (to tell whether more follow), the offset.
    assert sorted(map(repr, values.values())) == sorted(map(repr, ["secret", 6, 2]))
