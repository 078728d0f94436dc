"""The SQL connector: one read-only SQLAlchemy async engine per department database.

Every call runs exactly one statement (one per chunk for `fetch_by`) on an AUTOCOMMIT
connection, so no BEGIN or ROLLBACK travels with it. Sessions are read-only and time-limited
by the database itself (see the dialect modules). Driver errors become `UnavailableError`
when the database did not answer and `QueryError` when it answered with a refusal; their
messages carry no SQL, URL or path, and bound values never reach a message or a log (the
log names the error's class and code; driver messages may quote citizens' values).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from connectors.base import (
    BATCH_CHUNK,
    ConnectorError,
    Filter,
    Page,
    Query,
    QueryError,
    Row,
    TableSpec,
    UnavailableError,
)
from connectors.dialect_mysql import MysqlDialect
from connectors.dialect_postgresql import PostgresDialect
from connectors.dialect_sqlite import SqliteDialect
from connectors.dialects import ConnectionSettings, SqlDialect, describe
from connectors.sql_select import SelectBuilder
from connectors.values import filter_value, load_zone, reader

logger = logging.getLogger(__name__)

Statement = Callable[[SelectBuilder], sa.Select[Any]]

# What a connection attempt raises when the database cannot be reached or refuses the login.
_NO_ANSWER = (sa.exc.DBAPIError, sa.exc.TimeoutError, OSError, TimeoutError)

_DIALECTS: dict[str, type[SqlDialect]] = {
    "postgresql": PostgresDialect,
    "mysql": MysqlDialect,
    "mariadb": MysqlDialect,
    "sqlite": SqliteDialect,
}


class SqlConnector:
    """A read-only connector over SQLite, PostgreSQL or MariaDB/MySQL.

    `timezone` is the zone of the database's naive date-times; `statement_timeout_ms` bounds
    each statement on the server; at most `pool_size` connections are held (SQLite in memory
    holds one).
    """

    def __init__(
        self,
        url: str | sa.URL,
        *,
        timezone: str = "Asia/Shanghai",
        statement_timeout_ms: int = 5000,
        pool_size: int = 5,
    ) -> None:
        if statement_timeout_ms <= 0 or pool_size <= 0:
            raise ValueError("statement_timeout_ms and pool_size must be positive")
        parsed = sa.make_url(url)
        try:
            self._dialect = _DIALECTS[parsed.get_backend_name()]()
        except KeyError:
            raise ValueError(f"unsupported database {parsed.get_backend_name()!r}") from None
        self._zone = load_zone(timezone)
        self._timeout_ms = statement_timeout_ms
        settings = ConnectionSettings(timezone, statement_timeout_ms, pool_size)
        self._engine = create_async_engine(
            parsed,
            isolation_level="AUTOCOMMIT",
            # Filter values are citizens' data: keep them out of error messages and logs.
            hide_parameters=True,
            **self._dialect.engine_options(parsed, settings),
        )
        self._dialect.install(self._engine, settings)

    @property
    def engine(self) -> AsyncEngine:
        """The engine, for instrumentation such as counting statements; reads go through
        the connector's methods."""
        return self._engine

    async def fetch(self, query: Query) -> Page:
        rows = await self._execute(query.table, lambda build: build.fetch(query))
        has_more = query.limit is not None and len(rows) > query.limit
        if has_more:
            rows = rows[: query.limit]
        return Page(self._rows(query.table, query.columns, rows), has_more)

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        rows = await self._execute(table, lambda build: build.count(where))
        return int(rows[0][0])

    async def fetch_by(self, table: TableSpec, column: str, values: Sequence[Any], columns: Sequence[str]) -> list[Row]:
        spec = table.column(column)
        for name in columns:
            table.column(name)
        # Sorted before chunking, so each chunk's rows follow the previous chunk's and the
        # concatenation is ordered by `column` as one statement would order it. NULL matches
        # nothing, as in SQL.
        keys = sorted({filter_value(spec, v, self._zone) for v in values if v is not None})
        found: list[Row] = []
        for start in range(0, len(keys), BATCH_CHUNK):
            chunk = keys[start : start + BATCH_CHUNK]
            rows = await self._execute(table, _by(column, chunk, columns))
            found.extend(self._rows(table, columns, rows))
        return found

    async def close(self) -> None:
        await self._engine.dispose()

    async def _execute(self, table: TableSpec, statement: Statement) -> Sequence[sa.Row[Any]]:
        try:
            return await self._run(table, statement)
        except sa.exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise self._refused(error) from None
        # The server dropped a pooled connection (a restart, an idle cut-off); SQLAlchemy has
        # emptied the pool. A read is safe to repeat, so one more try on a fresh connection
        # hides the restart, where pinging at every checkout would slow every request.
        try:
            return await self._run(table, statement)
        except sa.exc.DBAPIError as error:
            raise self._refused(error) from None

    async def _run(self, table: TableSpec, statement: Statement) -> Sequence[sa.Row[Any]]:
        """One statement on one connection; a failure to connect or to hear back is
        UnavailableError, and the database's own errors are left to the caller."""
        conn = self._engine.connect()
        try:
            await conn.start()
        except _NO_ANSWER as error:
            raise self._unavailable(error) from None
        try:
            # Built once connected: MariaDB and MySQL name their binary collation apart,
            # and which one answers is known only now.
            collation = self._dialect.collation(conn.dialect)
            built = statement(SelectBuilder(self._dialect, collation, self._zone, table))
            result = await conn.execute(built)
            rows: Sequence[sa.Row[Any]] = result.all()
            return rows
        except (sa.exc.TimeoutError, OSError, TimeoutError) as error:
            raise self._unavailable(error) from None
        finally:
            await conn.close()

    def _rows(self, table: TableSpec, columns: Sequence[str], rows: Sequence[sa.Row[Any]]) -> list[Row]:
        names = tuple(dict.fromkeys(columns))
        if not names:
            return [{} for _ in rows]
        readers = [reader(table.column(name), self._zone) for name in names]
        if not any(readers):
            return [dict(zip(names, row, strict=True)) for row in rows]
        return [
            {
                name: value if read is None else read(value)
                for name, read, value in zip(names, readers, row, strict=True)
            }
            for row in rows
        ]

    def _refused(self, error: sa.exc.DBAPIError) -> ConnectorError:
        """An error from running a statement: the database refused it, unless the connection
        broke or the statement ran out of time."""
        if error.connection_invalidated or self._dialect.is_timeout(error):
            return self._unavailable(error)
        logger.warning("the department database refused a query: %s", describe(error))
        return QueryError("the department database refused the query")

    def _unavailable(self, error: BaseException) -> UnavailableError:
        if self._dialect.is_timeout(error):
            logger.warning("a department database statement timed out")
            return UnavailableError(f"the department database did not answer within {self._timeout_ms} ms")
        logger.warning("a department database is unavailable: %s", describe(error))
        return UnavailableError("the department database is unavailable")


def _by(column: str, values: Sequence[Any], columns: Sequence[str]) -> Statement:
    """The statement of one chunk, bound to that chunk rather than to the loop's variable."""
    return lambda build: build.fetch_by(column, values, columns)
