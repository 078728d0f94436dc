"""The SQL connector: one read-only SQLAlchemy async engine per department database.

Every call runs exactly one statement (one per chunk for `fetch_by`) on an AUTOCOMMIT
connection, so no BEGIN or ROLLBACK travels with it. Sessions are read-only and time-limited
by the database itself (see the dialect modules). A statement is built once per query shape
(`sql_shape`, `sql_statements`) and run again with each read's values; on PostgreSQL and
SQLite, reads of a shape after its first go to the driver directly (`sql_direct`). Driver errors become
`UnavailableError` when the database did not answer and `QueryError` when it answered with a refusal; their
messages carry no SQL, URL or path, and bound values never reach a message or a log (the
log names the error's class and code; driver messages may quote citizens' values). A database
that cannot run a statement now (a lock held by another writer, a timeout, a shortage) is
unavailable too: the department's outage, not the hub's bug.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from decimal import Decimal
from itertools import repeat
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from connectors.aggregates import AggregateQuery, Groups, Measure, average, exact_sums
from connectors.base import (
    ColumnSpec,
    ConnectorError,
    Filter,
    Kind,
    OrderKey,
    Page,
    Query,
    QueryError,
    Row,
    TableSpec,
    UnavailableError,
)
from connectors.batch import OnChunk, fetch_in_chunks
from connectors.pacing import SLICE_ROWS, Steps, run_paced, run_steps
from connectors.sql.dialects import CONNECT_TIMEOUT_S, ConnectionSettings, SqlDialect, describe
from connectors.sql.dialects.mysql import MysqlDialect
from connectors.sql.dialects.postgresql import PostgresDialect
from connectors.sql.dialects.sqlite import SqliteDialect
from connectors.sql.direct import DirectForm, direct_form, fetch_direct
from connectors.sql.shape import QueryShapes, Shape, Values
from connectors.sql.statements import STATEMENT_CACHE_SIZE, Built, Statements
from connectors.values import ColumnReader, column_reader, load_zone, reader

logger = logging.getLogger(__name__)

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
        # asyncio's semaphore is fair (first come, first served) and binds no loop until used.
        self._slots = asyncio.Semaphore(pool_size)
        self._engine = create_async_engine(
            parsed,
            isolation_level="AUTOCOMMIT",
            # Filter values are citizens' data: keep them out of error messages and logs.
            hide_parameters=True,
            # Every connection is AUTOCOMMIT and read-only, so no transaction is ever open to
            # roll back when a read ends; SQLAlchemy would still call the driver's rollback(),
            # which on MariaDB is a round trip and on SQLite a hop to its thread (asyncpg skips
            # it itself). Skipped only where the driver confirms autocommit (every dialect
            # here can), which pool_reset_on_return=None would not check.
            skip_autocommit_rollback=True,
            **self._dialect.engine_options(parsed, settings),
        )
        self._dialect.install(self._engine, settings)
        self._shapes = QueryShapes(self._dialect, self._zone)
        self._statements = Statements(self._dialect)
        # The binary collation strings compare in, known from the first connection on.
        self._collation: str | None = None
        # (table name, columns) -> the table, and how each column of such a read is read.
        self._readers: dict[tuple[str, tuple[str, ...]], tuple[TableSpec, list[tuple[str, ColumnReader]]]] = {}

    @property
    def engine(self) -> AsyncEngine:
        """The engine, for instrumentation such as counting statements; reads go through
        the connector's methods."""
        return self._engine

    @property
    def statements(self) -> Statements:
        """The statements built so far, by shape, for instrumentation."""
        return self._statements

    async def fetch(self, query: Query) -> Page:
        rows = await self._execute(query.table, *self._shapes.fetch(query))
        has_more = query.limit is not None and len(rows) > query.limit
        if has_more:
            rows = rows[: query.limit]
        cut = () if query.per_group is None else self._cut(query, rows)
        steps = self._columns(query.table, query.columns, rows)
        # A large page's values are read a slice at a time, other requests served between.
        columns, unreadable = run_steps(steps) if len(rows) <= SLICE_ROWS else await run_paced(steps)
        return Page.of_columns(columns, len(rows), has_more, unreadable, cut)

    async def count(self, table: TableSpec, where: Filter | None) -> int:
        rows = await self._execute(table, *self._shapes.count(table, where))
        return int(rows[0][0])

    async def aggregate(self, query: AggregateQuery) -> Groups:
        rows = await self._execute(query.table, *self._shapes.aggregate(query))
        total: Row | None = None
        if query.with_total:
            # The total's row comes first (sql_aggregate ranks it before every group).
            everything, rows = self._aggregated(query, rows[:1])[0], rows[1:]
            total = {item.label: everything[item.label] for item in query.measures}
        has_more = query.limit is not None and len(rows) > query.limit
        if has_more:
            rows = rows[: query.limit]
        return Groups(self._aggregated(query, rows), has_more, total)

    def _aggregated(self, query: AggregateQuery, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        """The rows of an aggregate statement as label -> value, read column by column
        (sql_aggregate selects the group keys, then each measure: an average as its sum and its
        count of values)."""
        if not rows:
            return []
        table, zone = query.table, self._zone
        columns = iter([*zip(*rows, strict=True)])
        out: dict[str, list[Any]] = {}
        for group in query.groups:
            spec = table.column(group.column)
            kind = spec if group.bucket is None else ColumnSpec(spec.name, Kind.DATE)
            out[group.label] = [*map(reader(kind, zone), next(columns))]
        for item in query.measures:
            raw = next(columns)
            if item.measure in (Measure.COUNT, Measure.COUNT_DISTINCT):
                out[item.label] = [*map(int, raw)]
                continue
            assert item.column is not None
            spec = table.column(item.column)
            if item.measure in (Measure.MIN, Measure.MAX):
                out[item.label] = [*map(reader(spec, zone), raw)]
                continue
            if spec.kind is Kind.DECIMAL and self._dialect.scaled_sums:
                raw = tuple(None if v is None else Decimal(v).scaleb(-spec.scale) for v in raw)
            totals = exact_sums(spec.kind, spec.scale, raw)
            if item.measure is Measure.SUM:
                out[item.label] = totals
            else:
                counts = next(columns)
                out[item.label] = [
                    average(spec.kind, spec.scale, t, int(n)) for t, n in zip(totals, counts, strict=True)
                ]
        labels = list(out)
        # Each row's dict made from its values and the labels in C, with no frame per row.
        return [*map(dict, map(zip, repeat(labels), zip(*out.values(), strict=True)))]

    async def fetch_by(
        self,
        table: TableSpec,
        column: str,
        values: Sequence[Any],
        columns: Sequence[str],
        *,
        where: Filter | None = None,
        per_value: int | None = None,
        limit: int | None = None,
        order: Sequence[OrderKey] = (),
        on_chunk: OnChunk | None = None,
    ) -> Page:
        # Each chunk is a `fetch` of an IN list: one statement per chunk, and every chunk
        # shares the statement of its shape (the list is one expanding or array parameter).
        return await fetch_in_chunks(
            self.fetch,
            self._zone,
            table,
            column,
            values,
            columns,
            where=where,
            per_value=per_value,
            limit=limit,
            order=order,
            on_chunk=on_chunk,
        )

    async def close(self) -> None:
        await self._engine.dispose()

    async def _execute(self, table: TableSpec, shape: Shape, values: Values) -> Sequence[Sequence[Any]]:
        try:
            return await self._run(table, shape, values)
        except sa.exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise self._refused(error) from None
        # The server dropped a pooled connection (a restart, an idle cut-off); SQLAlchemy has
        # emptied the pool. A read is safe to repeat, so one more try on a fresh connection
        # hides the restart, where pinging at every checkout would slow every request.
        try:
            return await self._run(table, shape, values)
        except sa.exc.DBAPIError as error:
            raise self._refused(error) from None

    async def _run(self, table: TableSpec, shape: Shape, values: Values) -> Sequence[Sequence[Any]]:
        """One statement on one connection; a failure to connect or to hear back is
        UnavailableError, and the database's own errors are left to the caller."""
        # Requests queue for a connection in arrival order. The pool's own queue lets a newly
        # arriving request take a connection ahead of one that has waited, which under load
        # left a few requests waiting seconds (bench W6: p99 ~900 ms at a 15 ms median).
        if self._slots.locked():
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await self._slots.acquire()
            except TimeoutError as error:
                raise self._unavailable(error) from None
        else:
            # A free slot and nobody waiting: taken at once, without arming a timer.
            await self._slots.acquire()
        try:
            # One trip into SQLAlchemy's greenlet for the checkout, the statement, its rows and
            # the checkin, where AsyncConnection makes three (start, execute, close): about a
            # seventh of a by-key read's CPU on PostgreSQL and MariaDB (bench/statements.py).
            return await greenlet_spawn(self._read, table, shape, values)
        except (sa.exc.TimeoutError, OSError, TimeoutError) as error:
            raise self._unavailable(error) from None
        finally:
            self._slots.release()

    def _read(self, table: TableSpec, shape: Shape, values: Values) -> Sequence[Sequence[Any]]:
        """The rows of one statement on one pooled connection; run by `greenlet_spawn`, so the
        driver's awaits go back to the event loop. A failure to connect is UnavailableError."""
        if self._collation is not None:
            built = self._statements.get(table, self._collation, shape)
            if built.direct:
                return self._read_direct(built.direct, table, shape, values)
        return self._read_through_sqlalchemy(table, shape, values)

    def _read_through_sqlalchemy(self, table: TableSpec, shape: Shape, values: Values) -> Sequence[Sequence[Any]]:
        try:
            conn = self._engine.sync_engine.connect()
        except _NO_ANSWER as error:
            raise self._unavailable(error) from None
        with conn:
            # Found once connected: MariaDB and MySQL name their binary collation apart,
            # and which one answers is known only now (the same on every later connection).
            self._collation = self._dialect.collation(conn.dialect)
            built = self._statements.get(table, self._collation, shape)
            rows = self._values(conn.execute(built.statement, values), built, conn.dialect)
            # The first read of a statement shows whether the driver's rows need SQLAlchemy;
            # where they do not, later reads of it go to the driver directly (sql_direct).
            if built.direct is None and self._dialect.direct_reads and built.processed is not None:
                built.direct = False if built.processed[1] else (direct_form(built.statement, conn.dialect) or False)
            return rows

    def _read_direct(self, form: DirectForm, table: TableSpec, shape: Shape, values: Values) -> Sequence[Sequence[Any]]:
        engine = self._engine.sync_engine
        try:
            connection = engine.raw_connection()
        except _NO_ANSWER as error:
            raise self._unavailable(error) from None
        try:
            return fetch_direct(engine, self._dialect, connection, form, values)
        except Exception as error:
            if self._dialect.busy(error) is not None:
                raise self._unavailable(error) from None
            # Anything else (a refusal, a dropped connection) is read again through
            # SQLAlchemy, whose errors the connector already tells apart and retries: a read
            # is safe to repeat, and such failures are rare enough not to need a second map.
            return self._read_through_sqlalchemy(table, shape, values)

    def _values(self, result: sa.CursorResult[Any], built: Built, dialect: Dialect) -> Sequence[Sequence[Any]]:
        """The rows of `result` as positional sequences. Where SQLAlchemy would change no value
        (as on asyncpg, for every kind a manifest declares on its own column type), the driver's
        rows as they are: a large page then costs no Row object per row, nor the collector's
        time to walk them. Otherwise SQLAlchemy's rows, processed."""
        cursor = result.cursor
        description = None if cursor is None else cursor.description
        if description is None:
            return result.all()
        reported = tuple(column[1] for column in description)
        # Decided once per cached statement and the types the driver reported: asking each
        # column's type costs more than a one-row read.
        known = built.processed
        if known is None or known[0] != reported:
            known = built.processed = (reported, _processes(built.statement, description, dialect))
        if known[1]:
            return result.all()
        rows: Sequence[Sequence[Any]] = cursor.fetchall()
        result.close()
        return rows

    def _cut(self, query: Query, rows: Sequence[Sequence[Any]]) -> tuple[Any, ...]:
        """The groups of a per-group read that had more rows: those whose last row returned
        (numbered at the bound) has a row after it. The number and that mark follow the
        selected columns (sql_select `_grouped`)."""
        group = query.per_group
        assert group is not None
        readers = self._readers_of(query.table, query.columns)
        place = next(i for i, (name, _) in enumerate(readers) if name == group.column)
        number, following = len(readers), len(readers) + 1
        raw = [row[place] for row in rows if row[number] == group.limit and row[following] is not None]
        values, _ = readers[place][1](raw)
        return tuple(values)

    def _columns(
        self, table: TableSpec, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> Steps[tuple[dict[str, Sequence[Any]], frozenset[str]]]:
        """The rows' values column by column, each read as its kind, and the columns holding
        an UNREADABLE value. A statement of no columns reads a constant, which is no column."""
        readers = self._readers_of(table, columns)
        # One pass per column: transposing with zip(*rows) would hold an iterator per row at
        # once, enough objects for the collector to promote and later walk in full.
        out: dict[str, Sequence[Any]] = {}
        unreadable: list[str] = []
        for i, (name, read) in enumerate(readers):
            if len(rows) <= SLICE_ROWS:
                out[name], bad = read([*map(itemgetter(i), rows)])
            else:
                out[name], bad = yield from _read_sliced(read, rows, i)
            if bad:
                unreadable.append(name)
        return out, frozenset(unreadable)

    def _readers_of(self, table: TableSpec, columns: Sequence[str]) -> list[tuple[str, ColumnReader]]:
        """The column readers of a selection, made once per table and columns: working them
        out cost a one-row read more than reading its values."""
        key = (table.name, tuple(columns))
        found = self._readers.get(key)
        if found is not None and (found[0] is table or found[0] == table):
            return found[1]
        readers = [(name, column_reader(table.column(name), self._zone)) for name in dict.fromkeys(columns)]
        if len(self._readers) >= STATEMENT_CACHE_SIZE:
            self._readers.clear()
        self._readers[key] = (table, readers)
        return readers

    def _refused(self, error: sa.exc.DBAPIError) -> ConnectorError:
        """An error from running a statement: the database refused it, unless the connection
        broke or the database could not run it now (out of time, a lock, a shortage)."""
        if error.connection_invalidated or self._dialect.busy(error) is not None:
            return self._unavailable(error)
        logger.warning("the department database refused a query: %s", describe(error))
        return QueryError("the department database refused the query")

    def _unavailable(self, error: BaseException) -> UnavailableError:
        # Logged by the hub, which knows the department and the entity read (hub.access.read);
        # the reason travels with the error and never reaches a caller.
        reason = f"{describe(error)}: {self._dialect.busy(error) or 'unreachable'}"
        logger.debug("a department database is unavailable: %s", reason)
        if self._dialect.is_timeout(error):
            return UnavailableError(f"the department database did not answer within {self._timeout_ms} ms", reason)
        return UnavailableError("the department database is unavailable", reason)


def _read_sliced(read: ColumnReader, rows: Sequence[Sequence[Any]], i: int) -> Steps[tuple[list[Any], bool]]:
    """Column `i` of `rows` read a slice at a time."""
    values: list[Any] = []
    bad = False
    for start in range(0, len(rows), SLICE_ROWS):
        part, part_bad = read([*map(itemgetter(i), rows[start : start + SLICE_ROWS])])
        values.extend(part)
        bad = bad or part_bad
        yield
    return values, bad


def _processes(statement: sa.Select[Any], description: Sequence[Sequence[Any]], dialect: Dialect) -> bool:
    """Whether SQLAlchemy would change any value of the statement's rows: a selected column whose
    type has a result processor for the type the driver reported."""
    columns = statement.selected_columns
    if len(columns) != len(description):
        return True
    return any(
        column.type.dialect_impl(dialect).result_processor(dialect, reported[1]) is not None
        for column, reported in zip(columns, description, strict=True)
    )
