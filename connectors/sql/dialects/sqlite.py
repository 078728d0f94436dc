"""SQLite through aiosqlite: query_only, a statement deadline, case-sensitive substring tests,
reads in one trip to the driver's thread.

SQLite's LIKE ignores ASCII case, so matches use instr() and substr(), which compare bytes.
A statement timeout is a progress handler that interrupts the statement once its deadline,
set as it starts, has passed.

Text that is not UTF-8 is read as its bytes, which the connector reports as unreadable, rather
than failing the statement. Two limits come from SQLite's storage. Decimals are kept as floats: they are bound as floats
and read back quantized to the scale, so a stored value with more digits than the scale reads
rounded (and a cursor made from it no longer equals it). Date-times are kept as text and
compared as text, so they must be stored as SQLAlchemy writes them
('YYYY-MM-DD HH:MM:SS.ffffff'); other spellings compare wrongly.

aiosqlite runs each call on its connection's own thread, and SQLAlchemy's adapter makes about
four calls per statement (a cursor, execute, fetch, close), each a hand-off between threads that
waits for the GIL on both sides. A read whose statement SQLAlchemy would change nothing of goes
to aiosqlite's `execute_fetchall` instead (connectors/sql/direct.py): one hand-off.
"""

from __future__ import annotations

import decimal
import math
import time
from collections.abc import Awaitable, Hashable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection

from connectors.aggregates import Bucket
from connectors.base import ColumnSpec, Kind, Match
from connectors.sql.dialects import ConnectionSettings, SqlDialect, driver_error

# SQLite calls the progress handler every this many virtual machine steps: often enough to
# stop a statement within milliseconds of its deadline, seldom enough to cost nothing.
_PROGRESS_STEPS = 1000

# SQLite's result codes (sqlite3's `sqlite_errorname`, extended codes share the prefix) of a
# file it cannot read now: another connection holds a lock, the statement ran past its
# deadline, or the disk or memory failed it. What the log says of each.
_BUSY = {
    "SQLITE_BUSY": "database is locked",
    "SQLITE_LOCKED": "database table is locked",
    "SQLITE_INTERRUPT": "statement timeout",
    "SQLITE_IOERR": "disk I/O error",
    "SQLITE_FULL": "disk full",
    "SQLITE_NOMEM": "out of memory",
    "SQLITE_PROTOCOL": "locking protocol error",
}


class SqliteDecimal(sa.types.TypeDecorator[decimal.Decimal]):
    """A decimal column SQLite stores as a float: bound as a float, since sqlite3 cannot bind
    a Decimal, and returned as the float it is (the connector quantizes it to the scale)."""

    impl = sa.Float
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else float(value)


def _text(raw: bytes) -> str | bytes:
    # SQLite keeps whatever bytes it is given as TEXT; sqlite3's own decoding fails the whole
    # statement on one cell that is not UTF-8. Left as bytes, the cell reads as UNREADABLE.
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


async def _read_text_leniently(connection: Any) -> None:
    connection.text_factory = _text


class _Unparsed(sa.types.TypeDecorator[Any]):
    """A date or date-time column bound as SQLAlchemy binds it, and returned as SQLite keeps it
    (text): the connector's reader parses it, and a value that does not parse is one unreadable
    cell, where SQLAlchemy's parser would fail the whole statement."""

    impl: Any = sa.Date
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> None:
        return None


class SqliteDate(_Unparsed):
    impl = sa.Date
    cache_ok = True


class SqliteDateTime(_Unparsed):
    impl = sa.DateTime
    cache_ok = True


class _Deadline:
    """When the running statement of one connection must stop; no deadline between statements,
    so the pool's own checks on a connection are never interrupted."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.at = math.inf

    def start(self) -> None:
        """A statement starts now."""
        self.at = time.monotonic() + self.timeout_s

    def expired(self) -> bool:
        return time.monotonic() > self.at


class SqliteDialect(SqlDialect):
    # aiosqlite takes positional values; `execute_fetchall` runs and fetches in one call.
    direct_reads = True

    def engine_options(self, url: sa.URL, settings: ConnectionSettings) -> dict[str, Any]:
        # An in-memory database lives in one connection (SQLAlchemy picks a StaticPool, which
        # has no size); a file gets a queue pool like the servers.
        if not url.database or url.database == ":memory:" or url.query.get("mode") == "memory":
            return {}
        options = super().engine_options(url, settings)
        # How long a statement waits for another connection's lock on the file (sqlite3's own
        # default is 5 s): no longer than the statement itself may run, after which the
        # department is busy ("database is locked"), not broken.
        options["connect_args"] = {"timeout": settings.statement_timeout_ms / 1000}
        return options

    def install(self, engine: AsyncEngine, settings: ConnectionSettings) -> None:
        timeout_s = settings.statement_timeout_ms / 1000

        def on_connect(dbapi_connection: Any, record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA query_only = ON")
            finally:
                cursor.close()
            deadline = _Deadline(timeout_s)
            record.info["deadline"] = deadline
            dbapi_connection.run_async(lambda conn: conn.set_progress_handler(deadline.expired, _PROGRESS_STEPS))
            dbapi_connection.run_async(_read_text_leniently)

        def on_execute(conn: Any, cursor: Any, statement: Any, *args: Any) -> None:
            # A direct read is announced without a connection, and starts its deadline itself
            # (`fetch_direct`).
            deadline = None if conn is None else conn.info.get("deadline")
            if deadline is not None:
                deadline.start()

        def on_checkin(dbapi_connection: Any, record: Any) -> None:
            deadline = record.info.get("deadline")
            if deadline is not None:
                deadline.at = math.inf

        sync_engine = engine.sync_engine
        event.listen(sync_engine, "connect", on_connect)
        event.listen(sync_engine, "before_cursor_execute", on_execute)
        event.listen(sync_engine, "checkin", on_checkin)

    def fetch_direct(
        self, connection: PoolProxiedConnection, sql: str, arguments: Sequence[Any]
    ) -> Awaitable[Sequence[Sequence[Any]]]:
        deadline = connection.info.get("deadline")
        if deadline is not None:
            deadline.start()
        driver = connection.driver_connection
        assert driver is not None
        rows: Awaitable[Sequence[Sequence[Any]]] = driver.execute_fetchall(sql, arguments)
        return rows

    def column_type(self, spec: ColumnSpec) -> sa.types.TypeEngine[Any]:
        if spec.kind is Kind.DECIMAL:
            return SqliteDecimal()
        if spec.kind is Kind.DATE:
            return SqliteDate()
        if spec.kind is Kind.DATETIME:
            return SqliteDateTime()
        return super().column_type(spec)

    def collation(self, dialect: Dialect) -> str:
        # Named even though it is SQLite's default: a column declared NOCASE would otherwise
        # compare without case.
        return "BINARY"

    def order(self, expr: sa.ColumnElement[Any], descending: bool) -> list[sa.ColumnElement[Any]]:
        # NULLS FIRST/LAST exist since SQLite 3.30 (2019).
        if descending:
            return [expr.desc().nulls_first()]
        return [expr.asc().nulls_last()]

    def like_values(self, match: Match, text: str) -> tuple[Hashable, tuple[Any, ...]]:
        if match is Match.CONTAINS or not text:
            return "instr", (text,)
        # substr() counts characters (code points) as len() does; from the end when negative.
        if match is Match.STARTS_WITH:
            return "prefix", (text, len(text))
        return "suffix", (text, -len(text))

    def like(self, expr: sa.ColumnElement[Any], form: Hashable, names: Sequence[str]) -> sa.ColumnElement[bool]:
        # Every function here returns NULL for a NULL column, so NOT keeps SQL's unknown.
        text = sa.bindparam(names[0], type_=sa.String())
        if form == "instr":
            return sa.func.instr(expr, text) > 0
        # The prefix's length, or where the suffix starts (counted from the end).
        number = sa.bindparam(names[1], type_=sa.Integer())
        if form == "prefix":
            return sa.func.substr(expr, 1, number) == text
        return sa.func.substr(expr, number) == text

    # Decimals are floats here: a sum of floats is not exact, a sum of integers is.
    scaled_sums = True

    def summand(self, column: sa.ColumnElement[Any], spec: ColumnSpec) -> sa.ColumnElement[Any]:
        # Each value as an integer count of its smallest unit (cents at scale 2).
        units = column * sa.literal_column(str(10**spec.scale))
        return sa.cast(sa.func.round(units), sa.BigInteger())

    def bucket(self, column: sa.ColumnElement[Any], kind: Kind, bucket: Bucket) -> sa.ColumnElement[Any]:
        # Dates and date-times are text here, which date() reads; the answer is text too. The
        # day is taken first: date-time arithmetic rounds to milliseconds, which would carry
        # 23:59:59.9996 into the next day.
        day = sa.func.date(column, type_=sa.String())

        def date(*modifiers: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
            return sa.func.date(day, *modifiers, type_=sa.String())

        if bucket is Bucket.DAY:
            return day
        if bucket is Bucket.WEEK:  # to the Sunday ending the ISO week, then back to its Monday
            return date(sa.literal_column("'weekday 0'"), sa.literal_column("'-6 days'"))
        if bucket is Bucket.MONTH:
            return date(sa.literal_column("'start of month'"))
        if bucket is Bucket.YEAR:
            return date(sa.literal_column("'start of year'"))
        month = sa.cast(sa.func.strftime(sa.literal_column("'%m'"), day), sa.Integer())
        # Cast to text: SQLite's || binds tighter than %.
        months = sa.cast((month - sa.literal_column("1")) % sa.literal_column("3"), sa.String())
        back = sa.literal_column("'-'").concat(months)
        return date(sa.literal_column("'start of month'"), back.concat(sa.literal_column("' months'")))

    def is_timeout(self, error: BaseException) -> bool:
        return super().is_timeout(error) or "interrupted" in str(driver_error(error))

    def busy(self, error: BaseException) -> str | None:
        name = getattr(driver_error(error), "sqlite_errorname", None)
        if isinstance(name, str):
            for prefix, reason in _BUSY.items():
                if name.startswith(prefix):
                    return reason
        return super().busy(error)
