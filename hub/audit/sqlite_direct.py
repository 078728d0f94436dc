"""The trail's writes on SQLite, one trip to the driver's thread per statement.

aiosqlite runs every call on its connection's own thread, and SQLAlchemy's adapter makes four
such calls per statement (open a cursor, execute, fetch, close). A flush is three or four
statements, so a request waited for twelve thread hand-offs before its answer could leave; on
a loaded machine each costs the wait for a core, and they were most of the time of a small
aggregate (bench/aggregates_profile.py: about 15 of 23 ms per request, load average 8-9).

Here each statement is one call: its SQLAlchemy compilation for the connection's dialect (no
SQL is written by hand), with its values in the compiled order, run by aiosqlite's
`execute_fetchall` or `executemany` on the connection SQLAlchemy checked out, inside the
transaction SQLAlchemy began (the sqlite3 module opens it at the first write; SQLAlchemy
commits it). Only statements whose values need no conversion are run so: integers, strings
and bytes, as the trail's tables hold. Statement observers still see every statement.

The writer's flush on its own thread (hub/audit/sqlite_writer.py) inserts a table's rows as one
multi-row INSERT per run of rows (`multi_row_for`, `row_chunks`), and the PostgreSQL flush
(hub/audit/postgres_writer.py) runs its one statement as `compiled_for` compiles it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Insert
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

# (statement, its value keys) -> its SQL, its parameters' names in order, and its constants.
# The trail's statements are module constants, so their identity is stable.
Prepared = tuple[str, tuple[str, ...], dict[str, Any]]
_COMPILED: dict[tuple[int, tuple[str, ...]], Prepared] = {}


def compiled_for(dialect: Dialect, statement: ClauseElement, keys: tuple[str, ...]) -> Prepared:
    """`statement`'s SQL for `dialect` given values with these keys, compiled once."""
    cache_key = (id(statement), keys)
    found = _COMPILED.get(cache_key)
    if found is None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=list(keys)))
        order = compiled.positiontup or []
        # Constants of the statement (a WHERE id = 1) are bound parameters with values.
        defaults = {
            name: bind.value for name, bind in compiled.binds.items() if not bind.required and bind.value is not None
        }
        found = _COMPILED[cache_key] = (compiled.string, tuple(order), defaults)
    return found


def arguments_of(prepared: Prepared, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """The rows' values in the compiled order."""
    _, names, defaults = prepared
    if defaults:
        return [tuple({**defaults, **row}[name] for name in names) for row in rows]
    if len(names) == 1:
        return [(row[names[0]],) for row in rows]
    pick = itemgetter(*names)
    return [pick(row) for row in rows]


# Rows of one multi-row INSERT at most: a power of two, so a flush of any size is a few statements
# of a few shapes (each compiled once, and kept in the sqlite3 module's statement cache).
MAX_ROWS = 256
# SQLite's limit on a statement's parameters (SQLITE_MAX_VARIABLE_NUMBER): 32,766 since 3.32.
MAX_PARAMETERS = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
# (insert, value keys, rows) -> its SQL, and the (row, key) of each parameter in order.
MultiRow = tuple[str, tuple[tuple[int, str], ...]]
_MULTI: dict[tuple[int, tuple[str, ...], int], MultiRow] = {}


def multi_row_for(dialect: Dialect, statement: Insert, keys: tuple[str, ...], count: int) -> MultiRow:
    """`statement` as one INSERT of `count` rows with these keys (VALUES (...), (...), ...),
    compiled once by SQLAlchemy for `dialect`."""
    cache_key = (id(statement), keys, count)
    found = _MULTI.get(cache_key)
    if found is None:
        names = {f"r{row}_{key}": (row, key) for row in range(count) for key in keys}
        rows: list[dict[str, Any]] = [{key: bindparam(f"r{row}_{key}") for key in keys} for row in range(count)]
        compiled = statement.values(rows).compile(dialect=dialect)
        found = _MULTI[cache_key] = (compiled.string, tuple(names[name] for name in compiled.positiontup or []))
    return found


def row_chunks(rows: Sequence[Mapping[str, Any]]) -> Iterator[Sequence[Mapping[str, Any]]]:
    """`rows` cut into runs of powers of two (13 rows: 8, 4, 1), none past MAX_ROWS or past
    SQLite's parameters per statement: one multi-row INSERT each."""
    if not rows:
        return
    most = MAX_ROWS
    while most > 1 and most * len(rows[0]) > MAX_PARAMETERS:
        most //= 2
    start = 0
    while start < len(rows):
        size = min(most, 1 << ((len(rows) - start).bit_length() - 1))
        yield rows[start : start + size]
        start += size


class DirectSqlite:
    """Runs compiled statements on one checked-out aiosqlite connection."""

    def __init__(self, connection: AsyncConnection, driver: Any) -> None:
        self._connection = connection
        self._driver = driver

    @classmethod
    async def of(cls, connection: AsyncConnection) -> DirectSqlite | None:
        """The direct form for `connection`, or None where it is not aiosqlite."""
        if connection.dialect.name != "sqlite" or connection.dialect.driver != "aiosqlite":
            return None
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        if driver is None or not hasattr(driver, "execute_fetchall"):
            return None
        return cls(connection, driver)

    async def scalar(self, statement: ClauseElement, values: Mapping[str, Any]) -> Any:
        """The first column of the first row `statement` returns, or None."""
        sql, names, defaults = self._compile(statement, tuple(values))
        arguments = [{**defaults, **values}[name] for name in names]
        self._observe(sql, arguments)
        rows = await self._driver.execute_fetchall(sql, arguments)
        return rows[0][0] if rows else None

    async def many(self, statement: ClauseElement, rows: Sequence[Mapping[str, Any]]) -> None:
        """`statement` once per row (every row with the same keys)."""
        if not rows:
            return
        prepared = self._compile(statement, tuple(rows[0]))
        sql, arguments = prepared[0], arguments_of(prepared, rows)
        self._observe(sql, arguments)
        await self._driver.executemany(sql, arguments)

    def _compile(self, statement: ClauseElement, keys: tuple[str, ...]) -> Prepared:
        return compiled_for(self._connection.dialect, statement, keys)

    def _observe(self, sql: str, arguments: Any) -> None:
        engine = self._connection.sync_engine
        if engine.dispatch.before_cursor_execute:
            engine.dispatch.before_cursor_execute(None, None, sql, arguments, None, False)
